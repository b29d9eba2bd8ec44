#include "infergate/gateway/health.h"

#include <boost/json/object.hpp>

namespace infergate::gateway {

void add_health_routes(Router& router, std::vector<ReadinessCheck> checks,
                       infra::MetricsRegistry& metrics, std::function<bool()> draining) {
  router.add(http::verb::get, "/healthz",
             [](Request& req, RequestContext&) -> boost::asio::awaitable<Response> {
               co_return json_response(http::status::ok, {{"status", "ok"}}, req.version());
             });

  router.add(http::verb::get, "/readyz",
             [checks = std::move(checks), draining = std::move(draining)](
                 Request& req, RequestContext&) -> boost::asio::awaitable<Response> {
               boost::json::object results;
               std::string problems;
               for (const auto& c : checks) {
                 std::optional<std::string> err = co_await c.check();
                 boost::json::object r;
                 r["ok"] = !err.has_value();
                 if (err) {
                   r["error"] = *err;
                   problems += (problems.empty() ? "" : "; ") + c.name + ": " + *err;
                 }
                 results[c.name] = std::move(r);
               }
               if (draining && draining()) {
                 problems += std::string(problems.empty() ? "" : "; ") + "server is shutting down";
               }
               if (problems.empty()) {
                 co_return json_response(http::status::ok, {{"status", "ready"}, {"checks", results}},
                                         req.version());
               }
               auto body = error_body("Not ready: " + problems, "server_error", "not_ready");
               body["status"] = "not_ready";
               body["checks"] = std::move(results);
               co_return json_response(http::status::service_unavailable, body, req.version());
             });

  router.add(http::verb::get, "/metrics",
             [&metrics](Request& req, RequestContext&) -> boost::asio::awaitable<Response> {
               Response res{http::status::ok, req.version()};
               res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
               res.body() = metrics.render();
               co_return res;
             });
}

}  // namespace infergate::gateway
