// Usage reports from the usage ledger: token and request counts and cost, filtered by tenant,
// key and model over [start, end), in time buckets (1h or 1d in a time zone, or one bucket for
// the whole range) and grouped by any of tenant, key and model. Cost is exact: each request is
// priced by the price versions in force when it started, in its tenant's currency (rows are
// always split by currency). Keyset pagination. Stateless.
#pragma once

#include <boost/json/object.hpp>
#include <pqxx/transaction>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "infergate/billing/decimal.h"

namespace infergate::billing {

struct UsageQuery {
  std::optional<std::string> tenant;  // id or name
  std::optional<std::string> api_key_id, model;
  std::int64_t start_us = 0, end_us = 0;  // [start, end), Unix microseconds
  std::optional<std::string> bucket;      // "1h" | "1d"; none = one bucket for the range
  std::optional<std::string> timezone;    // IANA; default the tenant's, else UTC
  bool by_tenant = false, by_key = false, by_model = false;
  std::optional<std::string> cursor;
  int limit = 100;
};

struct UsageRow {
  std::int64_t bucket_start_us = 0, bucket_end_us = 0;
  std::optional<std::string> tenant_id, api_key_id, model;  // set where grouped by
  std::string currency;
  std::int64_t requests = 0, completed = 0, cancelled = 0, failed = 0, refused = 0;
  std::int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
  std::int64_t unpriced_tokens = 0;  // tokens no price version covered (not in `cost`)
  Decimal cost;
};

struct UsagePage {
  std::string timezone;  // the one the buckets were cut in
  std::vector<UsageRow> rows;
  std::optional<std::string> next_cursor;
};

// Throws BillingError: invalid (end not after start, unknown bucket, unknown time zone `tz`,
// bad cursor, limit), not_found (tenant, key; a key of another tenant than `tenant` counts as
// unknown).
UsagePage usage_report(pqxx::work& tx, const UsageQuery& q);

// Parses "tenant,key,model" (any subset, any order) into the query. Throws BillingError
// (param group_by).
void parse_group_by(const std::string& text, UsageQuery& q);

boost::json::object to_json(const UsageRow& r);
// CSV with a header line; columns as in docs/api.md.
std::string usage_csv(const std::vector<UsageRow>& rows);

}  // namespace infergate::billing
