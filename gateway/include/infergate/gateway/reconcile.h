// What the usage ledger says each tenant used in its current day and month (billing time
// zone), for `infergate reconcile` to restore the quota counters in Redis.
#pragma once

#include <pqxx/connection>

#include <optional>
#include <string>
#include <vector>

#include "infergate/gateway/admission.h"

namespace infergate::gateway {

struct LedgerUsage {
  std::string tenant_id, tenant_name;
  QuotaPeriods periods;
  std::int64_t used_day = 0, used_month = 0;  // prompt + completion tokens of every status
};

// All tenants, or the one whose id or name is `tenant`.
std::vector<LedgerUsage> ledger_usage(pqxx::connection& conn,
                                      const std::optional<std::string>& tenant);

}  // namespace infergate::gateway
