// Plans, tenants and API keys in Postgres: validation, creation and lookup, each mutation
// audited in the same transaction. Functions take an open transaction so the admin API (on a
// PgPool worker) and the CLI (on its own connection) share one implementation. Stateless.
#pragma once

#include <boost/json/object.hpp>
#include <pqxx/transaction>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace infergate::gateway::accounts {

// A request the store refuses. `field` names the offending input where there is one.
class AccountError : public std::runtime_error {
 public:
  enum class Kind { invalid, not_found, conflict };
  AccountError(Kind kind, std::string field, const std::string& message)
      : std::runtime_error(message), kind_(kind), field_(std::move(field)) {}
  Kind kind() const { return kind_; }
  const std::string& field() const { return field_; }

 private:
  Kind kind_;
  std::string field_;
};

// nullopt = unlimited.
struct Limits {
  std::optional<std::int64_t> requests_per_minute;
  std::optional<std::int64_t> tokens_per_minute;
  std::optional<std::int64_t> max_concurrent_requests;
  std::optional<std::int64_t> tokens_per_day;
  std::optional<std::int64_t> tokens_per_month;
};
// The limit names, as used in JSON and in limit_overrides.
const std::vector<std::string>& limit_names();

struct Plan {
  std::string id, name;
  Limits limits;
  std::vector<std::string> allowed_tiers;
  int scheduling_weight = 1;
  std::string created_at, updated_at;  // RFC 3339 UTC
};

struct Tenant {
  std::string id, name, plan_id, status, billing_timezone, currency;
  boost::json::object limit_overrides;
  std::string created_at, updated_at;
};

struct ApiKey {
  std::string id;
  std::optional<std::string> tenant_id;
  std::string name;
  std::vector<std::string> scopes;
  std::string display_prefix;
  boost::json::object limit_overrides;
  std::string created_at;
  std::optional<std::string> expires_at, revoked_at;
};

struct NewPlan {
  std::string name;
  Limits limits;
  std::vector<std::string> allowed_tiers;
  int scheduling_weight = 1;
};

struct NewTenant {
  std::string name;
  std::string plan;  // plan id or name
  std::string billing_timezone = "UTC";
  std::string currency = "USD";
  boost::json::object limit_overrides;
};

struct NewKey {
  std::optional<std::string> tenant;  // tenant id or name; none for an admin key
  std::string name;
  std::vector<std::string> scopes;  // {"inference"} or {"admin"}
  std::optional<std::string> expires_at;  // RFC 3339
  boost::json::object limit_overrides;
};

struct CreatedKey {
  ApiKey key;
  std::string secret_key;  // the full key: shown once, never stored
};

Plan create_plan(pqxx::work& tx, const NewPlan& p, const std::string& actor);
std::optional<Plan> find_plan(pqxx::work& tx, const std::string& id_or_name);

Tenant create_tenant(pqxx::work& tx, const NewTenant& t, const std::string& actor);
std::optional<Tenant> find_tenant(pqxx::work& tx, const std::string& id_or_name);

CreatedKey create_key(pqxx::work& tx, const NewKey& k, const std::string& actor);

// Appends to admin_audit within tx. before/after may be null.
void audit(pqxx::work& tx, const std::string& actor, const std::string& action,
           const std::string& target_type, const std::string& target_id,
           const boost::json::value& before, const boost::json::value& after);

boost::json::object to_json(const Plan& p);
boost::json::object to_json(const Tenant& t);
boost::json::object to_json(const ApiKey& k);

// Checks an overrides object: only known limit names (for keys: the per-minute and concurrency
// limits; quotas are per tenant), each a non-negative integer or null.
void validate_overrides(const boost::json::object& overrides, const std::string& field,
                        bool key_level = false);

}  // namespace infergate::gateway::accounts

namespace infergate::gateway::accounts {

// Partial updates: absent fields keep their value.
struct PlanPatch {
  std::optional<std::string> name;
  // limit name -> new value (nullopt = unlimited); absent names unchanged
  std::vector<std::pair<std::string, std::optional<std::int64_t>>> limits;
  std::optional<std::vector<std::string>> allowed_tiers;
  std::optional<int> scheduling_weight;
};

struct TenantPatch {
  std::optional<std::string> name, plan, billing_timezone, currency, status;
  std::optional<boost::json::object> limit_overrides;  // replaces the whole object
};

struct TenantPage {
  std::vector<Tenant> tenants;
  std::optional<std::string> next_cursor;  // pass as `cursor` for the next page
};

std::vector<Plan> list_plans(pqxx::work& tx);
Plan update_plan(pqxx::work& tx, const std::string& id, const PlanPatch& patch,
                 const std::string& actor);

// Ordered by id; `cursor` is the last id of the previous page.
TenantPage list_tenants(pqxx::work& tx, const std::optional<std::string>& status,
                        const std::optional<std::string>& plan,
                        const std::optional<std::string>& cursor, int limit);
Tenant update_tenant(pqxx::work& tx, const std::string& id, const TenantPatch& patch,
                     const std::string& actor);

std::vector<ApiKey> list_keys(pqxx::work& tx, const std::string& tenant);
std::optional<ApiKey> find_key(pqxx::work& tx, const std::string& id);
ApiKey revoke_key(pqxx::work& tx, const std::string& id, const std::string& actor);
// Issues a new key like the old one; the old one keeps working for `grace_seconds`, then stops.
CreatedKey rotate_key(pqxx::work& tx, const std::string& id, std::int64_t grace_seconds,
                      const std::string& actor);

}  // namespace infergate::gateway::accounts
