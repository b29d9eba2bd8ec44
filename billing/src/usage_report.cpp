#include "infergate/billing/usage_report.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <pqxx/pqxx>

#include "infergate/billing/billing_error.h"
#include "infergate/billing/csv.h"
#include "infergate/billing/timestamp.h"
#include "sql_fragments.h"

namespace infergate::billing {
namespace {

using Kind = BillingError::Kind;
namespace json = boost::json;

// The sort key of a row, as the opaque cursor: hex of a JSON array.
struct Cursor {
  std::int64_t bucket_us = 0;
  std::string tenant, key, model, currency;
};

std::string encode_cursor(const Cursor& c) {
  const std::string text =
      json::serialize(json::array{c.bucket_us, c.tenant, c.key, c.model, c.currency});
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char ch : text) {
    out += hex[ch >> 4];
    out += hex[ch & 15];
  }
  return out;
}

Cursor decode_cursor(const std::string& s) {
  auto bad = [] {
    return BillingError(Kind::invalid, "cursor",
                        "'cursor' is not a next_cursor from a previous page of this report.");
  };
  if (s.size() % 2 != 0 || s.size() > 4096) throw bad();
  std::string text;
  for (std::size_t i = 0; i < s.size(); i += 2) {
    auto v = [&](char h) {
      if (h >= '0' && h <= '9') return h - '0';
      if (h >= 'a' && h <= 'f') return h - 'a' + 10;
      throw bad();
    };
    text += static_cast<char>(v(s[i]) * 16 + v(s[i + 1]));
  }
  json::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_array() || v.as_array().size() != 5 || !v.as_array()[0].is_int64())
    throw bad();
  const auto& a = v.as_array();
  for (std::size_t i = 1; i < 5; ++i)
    if (!a[i].is_string()) throw bad();
  return Cursor{a[0].as_int64(), std::string(a[1].as_string()), std::string(a[2].as_string()),
                std::string(a[3].as_string()), std::string(a[4].as_string())};
}

std::string resolve_tenant(pqxx::work& tx, const std::string& ref, std::string* timezone) {
  auto r = tx.exec_params("SELECT id, billing_timezone FROM tenants WHERE id = $1 OR name = $1 ORDER BY id = $1 DESC LIMIT 1",
                          ref);
  if (r.empty()) throw BillingError(Kind::not_found, "tenant", "No tenant '" + ref + "'.");
  *timezone = r[0][1].as<std::string>();
  return r[0][0].as<std::string>();
}

}  // namespace

void parse_group_by(const std::string& text, UsageQuery& q) {
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    const std::string part = text.substr(pos, comma - pos);
    if (part == "tenant") {
      q.by_tenant = true;
    } else if (part == "key") {
      q.by_key = true;
    } else if (part == "model") {
      q.by_model = true;
    } else {
      throw BillingError(Kind::invalid, "group_by",
                         "'group_by' takes a comma-separated list of tenant, key, model; got '" +
                             part.substr(0, 32) + "'.");
    }
    pos = comma + 1;
  }
}

UsagePage usage_report(pqxx::work& tx, const UsageQuery& q) {
  if (q.end_us <= q.start_us)
    throw BillingError(Kind::invalid, "end", "'end' must be after 'start' (end is exclusive).");
  if (q.bucket && *q.bucket != "1h" && *q.bucket != "1d")
    throw BillingError(Kind::invalid, "bucket", "'bucket' must be 1h or 1d.");
  if (q.limit < 1 || q.limit > 10000)
    throw BillingError(Kind::invalid, "limit", "'limit' must be between 1 and 10000.");
  std::optional<std::string> tenant_id;
  std::string tz = "UTC";
  if (q.tenant) tenant_id = resolve_tenant(tx, *q.tenant, &tz);
  if (q.timezone) {
    if (!tx.exec_params1("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)",
                         *q.timezone)[0]
             .as<bool>())
      throw BillingError(Kind::invalid, "tz",
                         "'tz' must be an IANA time zone such as Europe/Berlin, got '" +
                             q.timezone->substr(0, 64) + "'.");
    tz = *q.timezone;
  }
  if (q.api_key_id &&
      tx.exec_params("SELECT 1 FROM api_keys WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2)",
                     *q.api_key_id, tenant_id)
          .empty())
    throw BillingError(Kind::not_found, "key", "No API key '" + *q.api_key_id + "'" +
                                                   (tenant_id ? " of this tenant." : "."));
  std::optional<Cursor> after;
  if (q.cursor) after = decode_cursor(*q.cursor);

  // $1 start, $2 end, $3 tenant, $4 key, $5 model, $6 tz, $7..$11 cursor, $12 limit
  std::string bucket = sql::ts("$1"), bucket_end = sql::ts("$2");
  if (q.bucket) {
    const std::string unit = *q.bucket == "1h" ? "hour" : "day";
    bucket = "date_trunc('" + unit + "', e.started_at, $6)";
    bucket_end = unit == "hour" ? "(bucket + interval '1 hour')"
                                : "((bucket AT TIME ZONE $6 + interval '1 day') AT TIME ZONE $6)";
  }
  const std::string g_tenant = q.by_tenant ? "e.tenant_id" : "''";
  const std::string g_key = q.by_key ? "coalesce(e.api_key_id, '')" : "''";
  const std::string g_model = q.by_model ? "e.model" : "''";
  auto price = [&](const char* cls) {
    return sql::price_in_force("e.model", std::string("'") + cls + "'", "t.currency",
                               "e.started_at");
  };
  const std::string query =
      "WITH agg AS (SELECT " + bucket + " AS bucket, " + g_tenant + " AS g_tenant, " + g_key +
      " AS g_key, " + g_model +
      " AS g_model, t.currency, count(*) AS requests, "
      "count(*) FILTER (WHERE e.status = 'completed') AS completed, "
      "count(*) FILTER (WHERE e.status = 'cancelled') AS cancelled, "
      "count(*) FILTER (WHERE e.status = 'failed') AS failed, "
      "count(*) FILTER (WHERE e.status = 'refused') AS refused, "
      "sum(e.prompt_tokens) AS prompt, sum(e.completion_tokens) AS completion, "
      "sum(e.cached_tokens) AS cached, "
      // cached tokens without a cached_input price in force are billed as input (sql_fragments.h)
      "sum(CASE WHEN pi.id IS NULL THEN " + sql::billed_input_qty("e", "pc") + " ELSE 0 END + "
      "CASE WHEN po.id IS NULL THEN e.completion_tokens ELSE 0 END) AS unpriced, "
      "sum(coalesce(" + sql::billed_input_qty("e", "pc") + " * pi.price_per_million, 0) + "
      "coalesce(" + sql::billed_cached_qty("e", "pc") + " * pc.price_per_million, 0) + "
      "coalesce(e.completion_tokens * po.price_per_million, 0)) AS cost_per_million "
      "FROM usage_events e JOIN tenants t ON t.id = e.tenant_id "
      "LEFT JOIN LATERAL " + price("input") + " pi ON true "
      "LEFT JOIN LATERAL " +
      sql::price_in_force("e.model", "'cached_input'", "t.currency", "e.started_at", sql::has_cached("e")) +
      " pc ON true "
      "LEFT JOIN LATERAL " + price("output") + " po ON true "
      "WHERE e.started_at >= " + sql::ts("$1") + " AND e.started_at < " + sql::ts("$2") +
      " AND ($3::text IS NULL OR e.tenant_id = $3) AND ($4::text IS NULL OR e.api_key_id = $4)"
      " AND ($5::text IS NULL OR e.model = $5) AND $6::text IS NOT NULL "
      "GROUP BY 1, 2, 3, 4, 5) "
      "SELECT " + sql::us("bucket") + ", " + sql::us(bucket_end) +
      ", g_tenant, g_key, g_model, currency, requests, completed, cancelled, failed, refused, "
      "prompt, completion, cached, unpriced, cost_per_million::text FROM agg "
      "WHERE $7::bigint IS NULL OR (" + sql::us("bucket") +
      ", g_tenant, g_key, g_model, currency) > ($7::bigint, $8, $9, $10, $11) "
      "ORDER BY bucket, g_tenant, g_key, g_model, currency LIMIT $12";
  std::optional<std::int64_t> c_bucket;
  std::optional<std::string> c_tenant, c_key, c_model, c_currency;
  if (after) {
    c_bucket = after->bucket_us;
    c_tenant = after->tenant;
    c_key = after->key;
    c_model = after->model;
    c_currency = after->currency;
  }
  pqxx::result r = tx.exec_params(query, q.start_us, q.end_us, tenant_id, q.api_key_id, q.model,
                                  tz, c_bucket, c_tenant, c_key, c_model, c_currency, q.limit + 1);
  UsagePage page;
  page.timezone = tz;
  Cursor last;
  for (const auto& row : r) {
    if (static_cast<int>(page.rows.size()) == q.limit) {
      page.next_cursor = encode_cursor(last);
      break;
    }
    UsageRow u;
    u.bucket_start_us = row[0].as<std::int64_t>();
    u.bucket_end_us = row[1].as<std::int64_t>();
    last = Cursor{u.bucket_start_us, row[2].as<std::string>(), row[3].as<std::string>(),
                  row[4].as<std::string>(), row[5].as<std::string>()};
    if (q.by_tenant) u.tenant_id = last.tenant;
    if (q.by_key) u.api_key_id = last.key;
    if (q.by_model) u.model = last.model;
    u.currency = last.currency;
    std::int64_t* counts[] = {&u.requests,      &u.completed,         &u.cancelled,
                              &u.failed,        &u.refused,           &u.prompt_tokens,
                              &u.completion_tokens, &u.cached_tokens, &u.unpriced_tokens};
    for (int i = 0; i < 9; ++i) *counts[i] = row[6 + i].as<std::int64_t>();
    u.cost = Decimal::parse(row[15].as<std::string>()).shift_left(6);
    page.rows.push_back(std::move(u));
  }
  return page;
}

json::object to_json(const UsageRow& r) {
  json::object o{{"bucket_start", format_rfc3339_us(r.bucket_start_us)},
                 {"bucket_end", format_rfc3339_us(r.bucket_end_us)}};
  if (r.tenant_id) o["tenant_id"] = *r.tenant_id;
  if (r.api_key_id) o["api_key_id"] = r.api_key_id->empty() ? json::value(nullptr)
                                                            : json::value(*r.api_key_id);
  if (r.model) o["model"] = *r.model;
  o["requests"] = r.requests;
  o["requests_by_status"] = json::object{{"completed", r.completed},
                                         {"cancelled", r.cancelled},
                                         {"failed", r.failed},
                                         {"refused", r.refused}};
  o["prompt_tokens"] = r.prompt_tokens;
  o["completion_tokens"] = r.completion_tokens;
  o["cached_tokens"] = r.cached_tokens;
  o["total_tokens"] = r.prompt_tokens + r.completion_tokens;
  o["currency"] = r.currency;
  o["cost"] = r.cost.to_string();
  o["unpriced_tokens"] = r.unpriced_tokens;
  return o;
}

std::string usage_csv(const std::vector<UsageRow>& rows) {
  std::string out = csv_row({"bucket_start", "bucket_end", "tenant_id", "api_key_id", "model",
                             "requests", "completed", "cancelled", "failed", "refused",
                             "prompt_tokens", "completion_tokens", "cached_tokens", "total_tokens",
                             "currency", "cost", "unpriced_tokens"});
  for (const auto& r : rows) {
    out += csv_row({format_rfc3339_us(r.bucket_start_us), format_rfc3339_us(r.bucket_end_us),
                    r.tenant_id.value_or(""), r.api_key_id.value_or(""), r.model.value_or(""),
                    std::to_string(r.requests), std::to_string(r.completed),
                    std::to_string(r.cancelled), std::to_string(r.failed),
                    std::to_string(r.refused), std::to_string(r.prompt_tokens),
                    std::to_string(r.completion_tokens), std::to_string(r.cached_tokens),
                    std::to_string(r.prompt_tokens + r.completion_tokens), r.currency,
                    r.cost.to_string(), std::to_string(r.unpriced_tokens)});
  }
  return out;
}

}  // namespace infergate::billing
