// Operational endpoints: GET /healthz (the process is up), GET /readyz (every dependency
// reachable and not draining; 503 naming what is not) and GET /metrics (Prometheus text).
#pragma once

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "infergate/gateway/router.h"
#include "infergate/infra/metrics.h"

namespace infergate::gateway {

struct ReadinessCheck {
  std::string name;  // "postgres", "redis"
  // nullopt when healthy, else what is wrong. Must bound its own time.
  std::function<boost::asio::awaitable<std::optional<std::string>>()> check;
};

void add_health_routes(Router& router, std::vector<ReadinessCheck> checks,
                       infra::MetricsRegistry& metrics, std::function<bool()> draining);

}  // namespace infergate::gateway
