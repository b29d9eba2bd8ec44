#include "infergate/gateway/accounts.h"

#include "infergate/billing/timestamp.h"

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

void validate_overrides(const json::object& overrides, const std::string& field,
                        bool key_level) {
  static const std::vector<std::string> key_names{"requests_per_minute", "tokens_per_minute",
                                                  "max_concurrent_requests"};
  const auto& names = key_level ? key_names : limit_names();
  for (const auto& kv : overrides) {
    std::string key(kv.key());
    if (std::find(names.begin(), names.end(), key) == names.end())
      throw AccountError(Kind::invalid, field + "." + key,
                         key_level ? "unknown key limit '" + key +
                                         "' (keys have requests_per_minute, tokens_per_minute, "
                                         "max_concurrent_requests; quotas are per tenant)"
                                   : "unknown limit '" + key +
                                         "' (known: requests_per_minute, tokens_per_minute, "
                                         "max_concurrent_requests, tokens_per_day, "
                                         "tokens_per_month)");
    const auto& v = kv.value();
    if (v.is_null()) continue;
    if (!v.is_int64())  // uint64 means beyond the int64 range
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
  auto res = tx.exec_params("SELECT " + kPlanColumns + " FROM plans WHERE id = $1 OR name = $1 ORDER BY id = $1 DESC LIMIT 1",
                            id_or_name);
  if (res.empty()) return std::nullopt;
  return plan_from(res[0]);
}

namespace {

void check_currency(const std::string& c) {
  static const std::regex currency("^[A-Z]{3}$");
  if (!std::regex_match(c, currency))
    throw AccountError(Kind::invalid, "currency",
                       "currency must be a three-letter ISO 4217 code such as USD or EUR");
}

void check_timezone(pqxx::work& tx, const std::string& tz) {
  if (!tx.exec_params1("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)", tz)[0]
           .as<bool>())
    throw AccountError(Kind::invalid, "billing_timezone",
                       "billing_timezone '" + tz +
                           "' is not an IANA time zone name (e.g. Europe/Berlin, UTC)");
}

}  // namespace

Tenant create_tenant(pqxx::work& tx, const NewTenant& t, const std::string& actor) {
  check_name(t.name, "name");
  check_currency(t.currency);
  check_timezone(tx, t.billing_timezone);
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
      "SELECT " + kTenantColumns + " FROM tenants WHERE id = $1 OR name = $1 ORDER BY id = $1 DESC LIMIT 1",
      id_or_name);
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
  validate_overrides(k.limit_overrides, "limit_overrides", /*key_level=*/true);
  if (k.expires_at) {
    // Strictly: a real date and time (2027-02-30 is refused here, not by Postgres as a 500).
    try {
      billing::parse_rfc3339_us(*k.expires_at);
    } catch (const std::invalid_argument& e) {
      throw AccountError(Kind::invalid, "expires_at",
                         "expires_at must be an RFC 3339 time such as 2027-01-31T00:00:00Z (" +
                             std::string(e.what()) + ")");
    }
  }
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

std::vector<Plan> list_plans(pqxx::work& tx) {
  std::vector<Plan> out;
  for (const auto& r : tx.exec("SELECT " + kPlanColumns + " FROM plans ORDER BY name"))
    out.push_back(plan_from(r));
  return out;
}

Plan update_plan(pqxx::work& tx, const std::string& id, const PlanPatch& patch,
                 const std::string& actor) {
  auto before = tx.exec_params("SELECT " + kPlanColumns + " FROM plans WHERE id = $1 FOR UPDATE",
                               id);
  if (before.empty()) throw AccountError(Kind::not_found, "id", "no plan with id '" + id + "'");
  const Plan old = plan_from(before[0]);
  if (patch.name && *patch.name != old.name) {
    check_name(*patch.name, "name");
    if (find_plan(tx, *patch.name))
      throw AccountError(Kind::conflict, "name",
                         "a plan named '" + *patch.name + "' already exists");
    tx.exec_params("UPDATE plans SET name = $2 WHERE id = $1", id, *patch.name);
  }
  const auto& names = limit_names();
  for (const auto& [limit, value] : patch.limits) {
    if (std::find(names.begin(), names.end(), limit) == names.end())
      throw AccountError(Kind::invalid, "limits." + limit, "unknown limit '" + limit + "'");
    check_limit(value, "limits." + limit);
    // The column name comes from the fixed list above, never from the request.
    tx.exec_params("UPDATE plans SET " + limit + " = $2 WHERE id = $1", id, value);
  }
  if (patch.allowed_tiers) {
    for (const auto& tier : *patch.allowed_tiers) check_name(tier, "allowed_tiers");
    tx.exec_params(
        "UPDATE plans SET allowed_tiers = ARRAY(SELECT json_array_elements_text($2::json)) "
        "WHERE id = $1",
        id, pg_array(*patch.allowed_tiers));
  }
  if (patch.scheduling_weight) {
    if (*patch.scheduling_weight < 1 || *patch.scheduling_weight > 1000)
      throw AccountError(Kind::invalid, "scheduling_weight",
                         "scheduling_weight must be between 1 and 1000");
    tx.exec_params("UPDATE plans SET scheduling_weight = $2 WHERE id = $1", id,
                   *patch.scheduling_weight);
  }
  auto r = tx.exec_params1(
      "UPDATE plans SET updated_at = now() WHERE id = $1 RETURNING " + kPlanColumns, id);
  Plan plan = plan_from(r);
  audit(tx, actor, "plan.update", "plan", id, to_json(old), to_json(plan));
  return plan;
}

TenantPage list_tenants(pqxx::work& tx, const std::optional<std::string>& status,
                        const std::optional<std::string>& plan,
                        const std::optional<std::string>& cursor, int limit) {
  TenantPage page;
  auto res = tx.exec_params("SELECT " + kTenantColumns +
                                " FROM tenants WHERE ($1::text IS NULL OR status = $1) "
                                "AND ($2::text IS NULL OR plan_id = $2) "
                                "AND ($3::text IS NULL OR id > $3) ORDER BY id LIMIT $4",
                            status, plan, cursor, limit + 1);
  for (const auto& r : res) page.tenants.push_back(tenant_from(r));
  if (static_cast<int>(page.tenants.size()) > limit) {
    page.tenants.pop_back();
    page.next_cursor = page.tenants.back().id;
  }
  return page;
}

Tenant update_tenant(pqxx::work& tx, const std::string& id, const TenantPatch& patch,
                     const std::string& actor) {
  auto before = tx.exec_params(
      "SELECT " + kTenantColumns + " FROM tenants WHERE id = $1 FOR UPDATE", id);
  if (before.empty()) throw AccountError(Kind::not_found, "id", "no tenant with id '" + id + "'");
  const Tenant old = tenant_from(before[0]);
  if (patch.name && *patch.name != old.name) {
    check_name(*patch.name, "name");
    if (find_tenant(tx, *patch.name))
      throw AccountError(Kind::conflict, "name",
                         "a tenant named '" + *patch.name + "' already exists");
    tx.exec_params("UPDATE tenants SET name = $2 WHERE id = $1", id, *patch.name);
  }
  if (patch.plan) {
    auto p = find_plan(tx, *patch.plan);
    if (!p) throw AccountError(Kind::invalid, "plan", "no plan '" + *patch.plan + "'");
    tx.exec_params("UPDATE tenants SET plan_id = $2 WHERE id = $1", id, p->id);
  }
  if (patch.billing_timezone) {
    check_timezone(tx, *patch.billing_timezone);
    // An invoice's period is the month in the tenant's time zone. Moved under finalized
    // invoices, the next period would start where the last one did not end (the hours between
    // invoiced twice, or never), and an invoiced month would no longer be found as invoiced (a
    // second invoice for it). So a tenant with finalized invoices keeps its time zone (voiding
    // them frees it); its drafts, cut in the old zone, are discarded (generate them again).
    if (*patch.billing_timezone != old.billing_timezone) {
      if (!tx.exec_params("SELECT 1 FROM invoices WHERE tenant_id = $1 AND status = 'finalized' LIMIT 1", id).empty())
        throw AccountError(Kind::conflict, "billing_timezone",
                           "the tenant has finalized invoices for months cut in " + old.billing_timezone +
                               "; changing the time zone would invoice the hours between two months twice or "
                               "never. Void them first, or keep the time zone");
      tx.exec_params("DELETE FROM invoices WHERE tenant_id = $1 AND status = 'draft'", id);
    }
    tx.exec_params("UPDATE tenants SET billing_timezone = $2 WHERE id = $1", id,
                   *patch.billing_timezone);
  }
  if (patch.currency) {
    check_currency(*patch.currency);
    tx.exec_params("UPDATE tenants SET currency = $2 WHERE id = $1", id, *patch.currency);
  }
  if (patch.status) {
    if (*patch.status != "active" && *patch.status != "suspended")
      throw AccountError(Kind::invalid, "status", "status must be 'active' or 'suspended'");
    tx.exec_params("UPDATE tenants SET status = $2 WHERE id = $1", id, *patch.status);
  }
  if (patch.limit_overrides) {
    validate_overrides(*patch.limit_overrides, "limit_overrides");
    tx.exec_params("UPDATE tenants SET limit_overrides = $2::jsonb WHERE id = $1", id,
                   json::serialize(*patch.limit_overrides));
  }
  auto r = tx.exec_params1(
      "UPDATE tenants SET updated_at = now() WHERE id = $1 RETURNING " + kTenantColumns, id);
  Tenant tenant = tenant_from(r);
  std::string action = "tenant.update";
  if (patch.status && !patch.name && !patch.plan && !patch.billing_timezone && !patch.currency &&
      !patch.limit_overrides)
    action = *patch.status == "suspended" ? "tenant.suspend" : "tenant.reactivate";
  audit(tx, actor, action, "tenant", id, to_json(old), to_json(tenant));
  return tenant;
}

std::vector<ApiKey> list_keys(pqxx::work& tx, const std::string& tenant) {
  auto t = find_tenant(tx, tenant);
  if (!t) throw AccountError(Kind::not_found, "id", "no tenant '" + tenant + "'");
  std::vector<ApiKey> out;
  for (const auto& r : tx.exec_params("SELECT " + kKeyColumns +
                                          " FROM api_keys WHERE tenant_id = $1 ORDER BY "
                                          "created_at, id",
                                      t->id))
    out.push_back(key_from(r));
  return out;
}

std::optional<ApiKey> find_key(pqxx::work& tx, const std::string& id) {
  auto res = tx.exec_params("SELECT " + kKeyColumns + " FROM api_keys WHERE id = $1", id);
  if (res.empty()) return std::nullopt;
  return key_from(res[0]);
}

ApiKey revoke_key(pqxx::work& tx, const std::string& id, const std::string& actor) {
  auto before = tx.exec_params("SELECT " + kKeyColumns + " FROM api_keys WHERE id = $1 FOR UPDATE",
                               id);
  if (before.empty()) throw AccountError(Kind::not_found, "id", "no API key with id '" + id + "'");
  const ApiKey old = key_from(before[0]);
  // Revoking twice keeps the first revocation time.
  auto r = tx.exec_params1("UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) "
                           "WHERE id = $1 RETURNING " +
                               kKeyColumns,
                           id);
  ApiKey key = key_from(r);
  audit(tx, actor, "key.revoke", "api_key", id, to_json(old), to_json(key));
  return key;
}

CreatedKey rotate_key(pqxx::work& tx, const std::string& id, std::int64_t grace_seconds,
                      const std::string& actor) {
  if (grace_seconds < 0 || grace_seconds > 30LL * 24 * 3600)
    throw AccountError(Kind::invalid, "grace_period_seconds",
                       "grace_period_seconds must be between 0 and 2592000 (30 days)");
  auto before = tx.exec_params("SELECT " + kKeyColumns + " FROM api_keys WHERE id = $1 FOR UPDATE",
                               id);
  if (before.empty()) throw AccountError(Kind::not_found, "id", "no API key with id '" + id + "'");
  const ApiKey old = key_from(before[0]);
  if (old.revoked_at)
    throw AccountError(Kind::conflict, "id", "API key '" + id + "' is revoked; issue a new one");
  // Rotated already: a second successor would leave the first one valid and unlinked (and a
  // retried rotation would mint two keys). Rotate the successor instead.
  if (!tx.exec_params1("SELECT replaced_by IS NULL FROM api_keys WHERE id = $1", id)[0].as<bool>())
    throw AccountError(Kind::conflict, "id",
                       "API key '" + id + "' was rotated already (see its replaced_by); rotate that key instead");
  if (!tx.exec_params1("SELECT expires_at IS NULL OR expires_at > now() FROM api_keys "
                       "WHERE id = $1",
                       id)[0]
           .as<bool>())
    throw AccountError(Kind::conflict, "id", "API key '" + id + "' has expired; issue a new one");
  NewKey k;
  k.tenant = old.tenant_id;
  k.name = old.name;
  k.scopes = old.scopes;
  k.limit_overrides = old.limit_overrides;
  // The new key inherits the old one's expiry, if any.
  if (old.expires_at) k.expires_at = old.expires_at;
  CreatedKey created = create_key(tx, k, actor);
  auto r = tx.exec_params1(
      "UPDATE api_keys SET replaced_by = $2, expires_at = least(coalesce(expires_at, "
      "'infinity'::timestamptz), now() + make_interval(secs => $3)) WHERE id = $1 RETURNING " +
          kKeyColumns,
      id, created.key.id, grace_seconds);
  audit(tx, actor, "key.rotate", "api_key", id, to_json(old), to_json(key_from(r)));
  return created;
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
