#include "infergate/gateway/accounts.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <pqxx/pqxx>

#include <algorithm>
#include <regex>

#include "infergate/gateway/api_key.h"
#include "infergate/infra/ids.h"

namespace infergate::gateway::accounts {
namespace {

namespace json = boost::json;
using Kind = AccountError::Kind;

// Timestamps leave Postgres as RFC 3339 UTC with milliseconds.
std::string ts(const std::string& column) {
  return "to_char(" + column + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";
}

const std::string kPlanColumns =
    "id, name, requests_per_minute, tokens_per_minute, max_concurrent_requests, tokens_per_day, "
    "tokens_per_month, array_to_json(allowed_tiers)::text, scheduling_weight, " +
    ts("created_at") + ", " + ts("updated_at");

const std::string kTenantColumns = "id, name, plan_id, status, billing_timezone, currency, "
                                   "limit_overrides::text, " +
                                   ts("created_at") + ", " + ts("updated_at");

const std::string kKeyColumns = "id, tenant_id, name, array_to_json(scopes)::text, display_prefix, "
                                "limit_overrides::text, " +
                                ts("created_at") + ", " + ts("expires_at") + ", " +
                                ts("revoked_at");

std::optional<std::int64_t> opt_int(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<std::int64_t>();
}

std::optional<std::string> opt_str(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<std::string>();
}

std::vector<std::string> str_array(const std::string& json_text) {
  std::vector<std::string> out;
  json::value v = json::parse(json_text);
  if (v.is_array())
    for (const auto& e : v.as_array()) out.emplace_back(e.as_string());
  return out;
}

std::string pg_array(const std::vector<std::string>& v) {
  // Built as JSON and cast in SQL (json -> text[]), so no hand-rolled array quoting.
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return json::serialize(a);
}

Plan plan_from(const pqxx::row& r) {
  Plan p;
  p.id = r[0].as<std::string>();
  p.name = r[1].as<std::string>();
  p.limits.requests_per_minute = opt_int(r[2]);
  p.limits.tokens_per_minute = opt_int(r[3]);
  p.limits.max_concurrent_requests = opt_int(r[4]);
  p.limits.tokens_per_day = opt_int(r[5]);
  p.limits.tokens_per_month = opt_int(r[6]);
  p.allowed_tiers = str_array(r[7].as<std::string>());
  p.scheduling_weight = r[8].as<int>();
  p.created_at = r[9].as<std::string>();
  p.updated_at = r[10].as<std::string>();
  return p;
}

Tenant tenant_from(const pqxx::row& r) {
  Tenant t;
  t.id = r[0].as<std::string>();
  t.name = r[1].as<std::string>();
  t.plan_id = r[2].as<std::string>();
  t.status = r[3].as<std::string>();
  t.billing_timezone = r[4].as<std::string>();
  t.currency = r[5].as<std::string>();
  t.limit_overrides = json::parse(r[6].as<std::string>()).as_object();
  t.created_at = r[7].as<std::string>();
  t.updated_at = r[8].as<std::string>();
  return t;
}

ApiKey key_from(const pqxx::row& r) {
  ApiKey k;
  k.id = r[0].as<std::string>();
  k.tenant_id = opt_str(r[1]);
  k.name = r[2].as<std::string>();
  k.scopes = str_array(r[3].as<std::string>());
  k.display_prefix = r[4].as<std::string>();
  k.limit_overrides = json::parse(r[5].as<std::string>()).as_object();
  k.created_at = r[6].as<std::string>();
  k.expires_at = opt_str(r[7]);
  k.revoked_at = opt_str(r[8]);
  return k;
}

void check_name(const std::string& name, const std::string& field) {
  if (name.empty()) throw AccountError(Kind::invalid, field, field + " must not be empty");
  if (name.size() > 64)
    throw AccountError(Kind::invalid, field, field + " is longer than 64 characters");
  static const std::regex ok("^[A-Za-z0-9][A-Za-z0-9._-]*$");
  if (!std::regex_match(name, ok))
    throw AccountError(Kind::invalid, field,
                       field + " may contain only letters, digits, '.', '_' and '-', and must "
                               "start with a letter or digit");
}

void check_limit(const std::optional<std::int64_t>& v, const std::string& field) {
  if (v && *v < 0)
    throw AccountError(Kind::invalid, field, field + " must be a non-negative integer or null");
}

json::value limit_json(const std::optional<std::int64_t>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

json::value opt_json(const std::optional<std::string>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

json::array str_json(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

}  // namespace

const std::vector<std::string>& limit_names() {
  static const std::vector<std::string> names{"requests_per_minute", "tokens_per_minute",
                                              "max_concurrent_requests", "tokens_per_day",
                                              "tokens_per_month"};
  return names;
}

void validate_overrides(const json::object& overrides, const std::string& field) {
  const auto& names = limit_names();
  for (const auto& kv : overrides) {
    std::string key(kv.key());
    if (std::find(names.begin(), names.end(), key) == names.end())
      throw AccountError(Kind::invalid, field + "." + key,
                         "unknown limit '" + key +
                             "' (known: requests_per_minute, tokens_per_minute, "
                             "max_concurrent_requests, tokens_per_day, tokens_per_month)");
    const auto& v = kv.value();
    if (v.is_null()) continue;
    if (!v.is_int64() && !v.is_uint64())
      throw AccountError(Kind::invalid, field + "." + key,
                         field + "." + key + " must be a non-negative integer or null");
    if (v.is_int64() && v.as_int64() < 0)
      throw AccountError(Kind::invalid, field + "." + key,
                         field + "." + key + " must be a non-negative integer or null");
  }
}

void audit(pqxx::work& tx, const std::string& actor, const std::string& action,
           const std::string& target_type, const std::string& target_id,
           const json::value& before, const json::value& after) {
  auto text = [](const json::value& v) -> std::optional<std::string> {
    if (v.is_null()) return std::nullopt;
    return json::serialize(v);
  };
  tx.exec_params(
      "INSERT INTO admin_audit (actor, action, target_type, target_id, before, after) "
      "VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb)",
      actor, action, target_type, target_id, text(before), text(after));
}

Plan create_plan(pqxx::work& tx, const NewPlan& p, const std::string& actor) {
  check_name(p.name, "name");
  check_limit(p.limits.requests_per_minute, "requests_per_minute");
  check_limit(p.limits.tokens_per_minute, "tokens_per_minute");
  check_limit(p.limits.max_concurrent_requests, "max_concurrent_requests");
  check_limit(p.limits.tokens_per_day, "tokens_per_day");
  check_limit(p.limits.tokens_per_month, "tokens_per_month");
  if (p.scheduling_weight < 1 || p.scheduling_weight > 1000)
    throw AccountError(Kind::invalid, "scheduling_weight",
                       "scheduling_weight must be between 1 and 1000");
  for (const auto& tier : p.allowed_tiers) check_name(tier, "allowed_tiers");
  if (find_plan(tx, p.name))
    throw AccountError(Kind::conflict, "name", "a plan named '" + p.name + "' already exists");
  const std::string id = "plan_" + infra::random_hex(8);
  pqxx::row r;
  try {
    r = tx.exec_params1(
      "INSERT INTO plans (id, name, requests_per_minute, tokens_per_minute, "
      "max_concurrent_requests, tokens_per_day, tokens_per_month, allowed_tiers, "
      "scheduling_weight) VALUES ($1, $2, $3, $4, $5, $6, $7, "
      "ARRAY(SELECT json_array_elements_text($8::json)), $9) RETURNING " +
          kPlanColumns,
      id, p.name, p.limits.requests_per_minute, p.limits.tokens_per_minute,
      p.limits.max_concurrent_requests, p.limits.tokens_per_day, p.limits.tokens_per_month,
      pg_array(p.allowed_tiers), p.scheduling_weight);
  } catch (const pqxx::unique_violation&) {  // created concurrently since the check above
    throw AccountError(Kind::conflict, "name", "a plan named '" + p.name + "' already exists");
  }
  Plan plan = plan_from(r);
  audit(tx, actor, "plan.create", "plan", plan.id, nullptr, to_json(plan));
  return plan;
}

std::optional<Plan> find_plan(pqxx::work& tx, const std::string& id_or_name) {
  auto res = tx.exec_params("SELECT " + kPlanColumns + " FROM plans WHERE id = $1 OR name = $1",
                            id_or_name);
  if (res.empty()) return std::nullopt;
  return plan_from(res[0]);
}

Tenant create_tenant(pqxx::work& tx, const NewTenant& t, const std::string& actor) {
  check_name(t.name, "name");
  static const std::regex currency("^[A-Z]{3}$");
  if (!std::regex_match(t.currency, currency))
    throw AccountError(Kind::invalid, "currency",
                       "currency must be a three-letter ISO 4217 code such as USD or EUR");
  if (!tx.exec_params1("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)",
                       t.billing_timezone)[0]
           .as<bool>())
    throw AccountError(Kind::invalid, "billing_timezone",
                       "billing_timezone '" + t.billing_timezone +
                           "' is not an IANA time zone name (e.g. Europe/Berlin, UTC)");
  validate_overrides(t.limit_overrides, "limit_overrides");
  auto plan = find_plan(tx, t.plan);
  if (!plan) throw AccountError(Kind::invalid, "plan", "no plan '" + t.plan + "'");
  if (find_tenant(tx, t.name))
    throw AccountError(Kind::conflict, "name", "a tenant named '" + t.name + "' already exists");
  const std::string id = "ten_" + infra::random_hex(8);
  pqxx::row r;
  try {
    r = tx.exec_params1(
      "INSERT INTO tenants (id, name, plan_id, billing_timezone, currency, limit_overrides) "
      "VALUES ($1, $2, $3, $4, $5, $6::jsonb) RETURNING " +
          kTenantColumns,
      id, t.name, plan->id, t.billing_timezone, t.currency, json::serialize(t.limit_overrides));
  } catch (const pqxx::unique_violation&) {
    throw AccountError(Kind::conflict, "name", "a tenant named '" + t.name + "' already exists");
  }
  Tenant tenant = tenant_from(r);
  audit(tx, actor, "tenant.create", "tenant", tenant.id, nullptr, to_json(tenant));
  return tenant;
}

std::optional<Tenant> find_tenant(pqxx::work& tx, const std::string& id_or_name) {
  auto res = tx.exec_params(
      "SELECT " + kTenantColumns + " FROM tenants WHERE id = $1 OR name = $1", id_or_name);
  if (res.empty()) return std::nullopt;
  return tenant_from(res[0]);
}

CreatedKey create_key(pqxx::work& tx, const NewKey& k, const std::string& actor) {
  const bool admin = std::find(k.scopes.begin(), k.scopes.end(), "admin") != k.scopes.end();
  for (const auto& s : k.scopes)
    if (s != "admin" && s != "inference")
      throw AccountError(Kind::invalid, "scopes",
                         "unknown scope '" + s + "' (known: inference, admin)");
  if (k.scopes.empty())
    throw AccountError(Kind::invalid, "scopes", "a key needs at least one scope");
  if (admin && k.tenant)
    throw AccountError(Kind::invalid, "scopes", "admin keys belong to no tenant");
  if (!admin && !k.tenant)
    throw AccountError(Kind::invalid, "tenant", "an inference key needs a tenant");
  if (k.name.size() > 128)
    throw AccountError(Kind::invalid, "name", "name is longer than 128 characters");
  validate_overrides(k.limit_overrides, "limit_overrides");
  static const std::regex rfc3339(
      "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$");
  if (k.expires_at && !std::regex_match(*k.expires_at, rfc3339))
    throw AccountError(Kind::invalid, "expires_at",
                       "expires_at must be an RFC 3339 time such as 2027-01-31T00:00:00Z");
  std::optional<std::string> tenant_id;
  if (k.tenant) {
    auto t = find_tenant(tx, *k.tenant);
    if (!t) throw AccountError(Kind::not_found, "tenant", "no tenant '" + *k.tenant + "'");
    tenant_id = t->id;
  }
  auto m = generate_api_key();
  pqxx::binarystring hash(m.secret_sha256);
  auto r = tx.exec_params1(
      "INSERT INTO api_keys (id, tenant_id, name, scopes, display_prefix, secret_sha256, "
      "limit_overrides, expires_at) VALUES ($1, $2, $3, "
      "ARRAY(SELECT json_array_elements_text($4::json)), $5, $6, $7::jsonb, $8::timestamptz) "
      "RETURNING " +
          kKeyColumns,
      m.id, tenant_id, k.name, pg_array(k.scopes), m.display_prefix, hash,
      json::serialize(k.limit_overrides), k.expires_at);
  CreatedKey out{key_from(r), m.full_key};
  audit(tx, actor, "key.create", "api_key", out.key.id, nullptr, to_json(out.key));
  return out;
}

json::object to_json(const Plan& p) {
  json::object limits;
  limits["requests_per_minute"] = limit_json(p.limits.requests_per_minute);
  limits["tokens_per_minute"] = limit_json(p.limits.tokens_per_minute);
  limits["max_concurrent_requests"] = limit_json(p.limits.max_concurrent_requests);
  limits["tokens_per_day"] = limit_json(p.limits.tokens_per_day);
  limits["tokens_per_month"] = limit_json(p.limits.tokens_per_month);
  return {{"id", p.id},
          {"object", "plan"},
          {"name", p.name},
          {"limits", std::move(limits)},
          {"allowed_tiers", str_json(p.allowed_tiers)},
          {"scheduling_weight", p.scheduling_weight},
          {"created_at", p.created_at},
          {"updated_at", p.updated_at}};
}

json::object to_json(const Tenant& t) {
  return {{"id", t.id},
          {"object", "tenant"},
          {"name", t.name},
          {"plan_id", t.plan_id},
          {"status", t.status},
          {"billing_timezone", t.billing_timezone},
          {"currency", t.currency},
          {"limit_overrides", t.limit_overrides},
          {"created_at", t.created_at},
          {"updated_at", t.updated_at}};
}

json::object to_json(const ApiKey& k) {
  return {{"id", k.id},
          {"object", "api_key"},
          {"tenant_id", opt_json(k.tenant_id)},
          {"name", k.name},
          {"scopes", str_json(k.scopes)},
          {"display_prefix", k.display_prefix},
          {"limit_overrides", k.limit_overrides},
          {"created_at", k.created_at},
          {"expires_at", opt_json(k.expires_at)},
          {"revoked_at", opt_json(k.revoked_at)}};
}

}  // namespace infergate::gateway::accounts
