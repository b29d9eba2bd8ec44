#include "infergate/gateway/reconcile.h"

#include <pqxx/pqxx>

namespace infergate::gateway {

std::vector<LedgerUsage> ledger_usage(pqxx::connection& conn,
                                      const std::optional<std::string>& tenant) {
  pqxx::read_transaction tx(conn);
  auto rows = tx.exec_params(
      "SELECT t.id, t.name, to_char(now() AT TIME ZONE t.billing_timezone, 'YYYY-MM-DD'), "
      "to_char(now() AT TIME ZONE t.billing_timezone, 'YYYY-MM'), "
      "(extract(epoch FROM p.day_end) * 1000)::bigint, "
      "(extract(epoch FROM p.month_end) * 1000)::bigint, "
      "coalesce((SELECT sum(u.prompt_tokens + u.completion_tokens) FROM usage_events u "
      "  WHERE u.tenant_id = t.id AND u.started_at >= p.day_start AND u.started_at < p.day_end), "
      "  0)::bigint, "
      "coalesce((SELECT sum(u.prompt_tokens + u.completion_tokens) FROM usage_events u "
      "  WHERE u.tenant_id = t.id AND u.started_at >= p.month_start "
      "  AND u.started_at < p.month_end), 0)::bigint "
      "FROM tenants t CROSS JOIN LATERAL ("
      "  SELECT date_trunc('day', now() AT TIME ZONE t.billing_timezone) "
      "           AT TIME ZONE t.billing_timezone AS day_start, "
      "         (date_trunc('day', now() AT TIME ZONE t.billing_timezone) + interval '1 day') "
      "           AT TIME ZONE t.billing_timezone AS day_end, "
      "         date_trunc('month', now() AT TIME ZONE t.billing_timezone) "
      "           AT TIME ZONE t.billing_timezone AS month_start, "
      "         (date_trunc('month', now() AT TIME ZONE t.billing_timezone) + interval '1 month') "
      "           AT TIME ZONE t.billing_timezone AS month_end) p "
      // One tenant by id or name, the id first (as everywhere an id or a name is taken).
      "WHERE $1::text IS NULL OR t.id = (SELECT id FROM tenants WHERE id = $1 OR name = $1 "
      "                                  ORDER BY id = $1 DESC LIMIT 1) "
      "ORDER BY t.id",
      tenant);
  std::vector<LedgerUsage> out;
  for (const auto& r : rows) {
    LedgerUsage u;
    u.tenant_id = r[0].as<std::string>();
    u.tenant_name = r[1].as<std::string>();
    u.periods.day = r[2].as<std::string>();
    u.periods.month = r[3].as<std::string>();
    u.periods.day_end_ms = r[4].as<std::int64_t>();
    u.periods.month_end_ms = r[5].as<std::int64_t>();
    u.used_day = r[6].as<std::int64_t>();
    u.used_month = r[7].as<std::int64_t>();
    out.push_back(std::move(u));
  }
  return out;
}

}  // namespace infergate::gateway
