// Operator commands that work straight on Postgres, without the server or curl:
//   infergate plans create ...     infergate tenants create ...
//   infergate keys create ...      infergate keys create-admin
//   infergate demo-setup           (the Quick start's demo plan, tenant and key)
#include <boost/json/serialize.hpp>
#include <pqxx/pqxx>

#include <charconv>
#include <cstdio>

#include "cli.h"
#include "infergate/gateway/accounts.h"
#include "infergate/gateway/auth.h"
#include "infergate/infra/redis_client.h"

namespace infergate::app {
namespace {

namespace acc = gateway::accounts;
const std::string kActor = "cli";

std::optional<std::int64_t> limit_flag(const Flags& f, const std::string& name) {
  auto v = f.get(name);
  if (!v || *v == "unlimited") return std::nullopt;
  std::int64_t out = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || p != v->data() + v->size() || out < 0)
    throw UsageError("--" + name + " must be a non-negative integer or 'unlimited', got '" + *v +
                     "'");
  return out;
}

std::vector<std::string> list_flag(const Flags& f, const std::string& name) {
  std::vector<std::string> out;
  auto v = f.get(name);
  if (!v) return out;
  std::size_t pos = 0;
  while (pos <= v->size()) {
    auto comma = v->find(',', pos);
    if (comma == std::string::npos) comma = v->size();
    if (comma > pos) out.push_back(v->substr(pos, comma - pos));
    pos = comma + 1;
  }
  return out;
}

// Runs fn in one transaction on a fresh connection; maps store errors to exit codes.
template <class Fn>
int with_tx(const infra::Config& cfg, const char* what, Fn fn) {
  std::unique_ptr<pqxx::connection> conn;
  try {
    conn = std::make_unique<pqxx::connection>(cfg.postgres.conninfo());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "infergate %s: cannot connect to Postgres at %s:%u: %s\n", what,
                 cfg.postgres.host.c_str(), cfg.postgres.port, e.what());
    return kExitFailed;
  }
  try {
    pqxx::work tx(*conn);
    fn(tx);
    tx.commit();
    return kExitOk;
  } catch (const acc::AccountError& e) {
    std::fprintf(stderr, "infergate %s: %s\n", what, e.what());
    return e.kind() == acc::AccountError::Kind::invalid ? kExitUsage : kExitFailed;
  } catch (const pqxx::undefined_table&) {
    std::fprintf(stderr, "infergate %s: the database has no schema yet; run `infergate migrate`\n",
                 what);
    return kExitFailed;
  }
}

// Tells running instances to drop cached copies (as the admin API does). Best effort: without
// Redis, instances pick the change up within auth.cache_ttl_ms.
void invalidate(const infra::Config& cfg, const std::string& message) {
  std::string error;
  if (!infra::redis_publish_blocking(cfg.redis, gateway::kInvalidationChannel, message, &error))
    std::fprintf(stderr,
                 "warning: could not tell running instances through Redis (%s); they apply the "
                 "change within auth.cache_ttl_ms (%lld ms)\n",
                 error.c_str(), static_cast<long long>(cfg.auth.cache_ttl.count()));
}

void print_json(const boost::json::object& o) {
  std::printf("%s\n", boost::json::serialize(o).c_str());
}

void print_key(const acc::CreatedKey& k) {
  std::printf("api key %s created (%s)\n", k.key.id.c_str(), k.key.display_prefix.c_str());
  std::printf("  secret key, shown only now: %s\n", k.secret_key.c_str());
}

int plans_create(const std::vector<std::string>& args) {
  Flags f = parse_flags(args, {"config", "name", "requests-per-minute", "tokens-per-minute",
                               "max-concurrent-requests", "tokens-per-day", "tokens-per-month",
                               "tiers", "weight"});
  if (!f.get("name")) throw UsageError("--name is required");
  acc::NewPlan p;
  p.name = *f.get("name");
  p.limits.requests_per_minute = limit_flag(f, "requests-per-minute");
  p.limits.tokens_per_minute = limit_flag(f, "tokens-per-minute");
  p.limits.max_concurrent_requests = limit_flag(f, "max-concurrent-requests");
  p.limits.tokens_per_day = limit_flag(f, "tokens-per-day");
  p.limits.tokens_per_month = limit_flag(f, "tokens-per-month");
  p.allowed_tiers = list_flag(f, "tiers");
  if (auto w = limit_flag(f, "weight")) p.scheduling_weight = static_cast<int>(*w);
  return with_tx(load_config_for(f), "plans create", [&](pqxx::work& tx) {
    auto plan = acc::create_plan(tx, p, kActor);
    std::printf("%s\n", boost::json::serialize(acc::to_json(plan)).c_str());
  });
}

int tenants_create(const std::vector<std::string>& args) {
  Flags f = parse_flags(args, {"config", "name", "plan", "timezone", "currency"});
  if (!f.get("name") || !f.get("plan")) throw UsageError("--name and --plan are required");
  acc::NewTenant t;
  t.name = *f.get("name");
  t.plan = *f.get("plan");
  if (auto tz = f.get("timezone")) t.billing_timezone = *tz;
  if (auto c = f.get("currency")) t.currency = *c;
  return with_tx(load_config_for(f), "tenants create", [&](pqxx::work& tx) {
    auto tenant = acc::create_tenant(tx, t, kActor);
    std::printf("%s\n", boost::json::serialize(acc::to_json(tenant)).c_str());
  });
}

int keys_create(const std::vector<std::string>& args, bool admin) {
  Flags f = admin ? parse_flags(args, {"config", "name"})
                  : parse_flags(args, {"config", "tenant", "name", "expires-at"});
  acc::NewKey k;
  k.scopes = {admin ? "admin" : "inference"};
  if (!admin) {
    if (!f.get("tenant")) throw UsageError("--tenant is required");
    k.tenant = f.get("tenant");
    k.expires_at = f.get("expires-at");
  }
  k.name = f.get("name").value_or(admin ? "admin" : "");
  return with_tx(load_config_for(f), admin ? "keys create-admin" : "keys create",
                 [&](pqxx::work& tx) { print_key(acc::create_key(tx, k, kActor)); });
}

std::string one_positional(const Flags& f, const char* what) {
  if (f.positional.size() != 1) throw UsageError(std::string("expected one ") + what);
  return f.positional[0];
}

int plans_list(const std::vector<std::string>& args) {
  Flags f = parse_flags(args, {"config"});
  return with_tx(load_config_for(f), "plans list", [&](pqxx::work& tx) {
    for (const auto& p : acc::list_plans(tx)) print_json(acc::to_json(p));
  });
}

int tenants_list(const std::vector<std::string>& args) {
  Flags f = parse_flags(args, {"config", "status", "plan"});
  return with_tx(load_config_for(f), "tenants list", [&](pqxx::work& tx) {
    std::optional<std::string> plan_id;
    if (auto p = f.get("plan")) {
      auto plan = acc::find_plan(tx, *p);
      if (!plan) throw acc::AccountError(acc::AccountError::Kind::invalid, "plan", "no plan '" + *p + "'");
      plan_id = plan->id;
    }
    std::optional<std::string> cursor;
    do {
      auto page = acc::list_tenants(tx, f.get("status"), plan_id, cursor, 500);
      for (const auto& t : page.tenants) print_json(acc::to_json(t));
      cursor = page.next_cursor;
    } while (cursor);
  });
}

int tenants_set_status(const std::vector<std::string>& args, const std::string& status) {
  Flags f = parse_flags(args, {"config"});
  const std::string who = one_positional(f, "tenant id or name");
  const auto cfg = load_config_for(f);
  std::string tenant_id;
  int rc = with_tx(cfg, status == "suspended" ? "tenants suspend" : "tenants reactivate",
                   [&](pqxx::work& tx) {
                     auto t = acc::find_tenant(tx, who);
                     if (!t)
                       throw acc::AccountError(acc::AccountError::Kind::not_found, "tenant",
                                               "no tenant '" + who + "'");
                     acc::TenantPatch patch;
                     patch.status = status;
                     auto updated = acc::update_tenant(tx, t->id, patch, kActor);
                     tenant_id = updated.id;
                     print_json(acc::to_json(updated));
                   });
  if (rc == kExitOk) invalidate(cfg, "tenant:" + tenant_id);
  return rc;
}

int keys_list(const std::vector<std::string>& args) {
  Flags f = parse_flags(args, {"config", "tenant"});
  if (!f.get("tenant")) throw UsageError("--tenant is required");
  return with_tx(load_config_for(f), "keys list", [&](pqxx::work& tx) {
    for (const auto& k : acc::list_keys(tx, *f.get("tenant"))) print_json(acc::to_json(k));
  });
}

int keys_revoke(const std::vector<std::string>& args) {
  Flags f = parse_flags(args, {"config"});
  const std::string id = one_positional(f, "key id");
  const auto cfg = load_config_for(f);
  int rc = with_tx(cfg, "keys revoke",
                   [&](pqxx::work& tx) { print_json(acc::to_json(acc::revoke_key(tx, id, kActor))); });
  if (rc == kExitOk) invalidate(cfg, "key:" + id);
  return rc;
}

int keys_rotate(const std::vector<std::string>& args) {
  Flags f = parse_flags(args, {"config", "grace-seconds"});
  const std::string id = one_positional(f, "key id");
  auto grace = limit_flag(f, "grace-seconds");
  if (!grace) throw UsageError("--grace-seconds is required (0 ends the old key at once)");
  const auto cfg = load_config_for(f);
  int rc = with_tx(cfg, "keys rotate",
                   [&](pqxx::work& tx) { print_key(acc::rotate_key(tx, id, *grace, kActor)); });
  if (rc == kExitOk) invalidate(cfg, "key:" + id);
  return rc;
}

}  // namespace

int cmd_plans(const std::vector<std::string>& args) {
  const std::vector<std::string> rest(args.empty() ? args.end() : args.begin() + 1, args.end());
  if (!args.empty() && args[0] == "create") return plans_create(rest);
  if (!args.empty() && args[0] == "list") return plans_list(rest);
  throw UsageError("expected: plans create|list");
}

int cmd_tenants(const std::vector<std::string>& args) {
  const std::vector<std::string> rest(args.empty() ? args.end() : args.begin() + 1, args.end());
  if (!args.empty() && args[0] == "create") return tenants_create(rest);
  if (!args.empty() && args[0] == "list") return tenants_list(rest);
  if (!args.empty() && args[0] == "suspend") return tenants_set_status(rest, "suspended");
  if (!args.empty() && args[0] == "reactivate") return tenants_set_status(rest, "active");
  throw UsageError("expected: tenants create|list|suspend|reactivate");
}

int cmd_keys(const std::vector<std::string>& args) {
  const std::vector<std::string> rest(args.empty() ? args.end() : args.begin() + 1, args.end());
  if (!args.empty() && args[0] == "create") return keys_create(rest, false);
  if (!args.empty() && args[0] == "create-admin") return keys_create(rest, true);
  if (!args.empty() && args[0] == "list") return keys_list(rest);
  if (!args.empty() && args[0] == "revoke") return keys_revoke(rest);
  if (!args.empty() && args[0] == "rotate") return keys_rotate(rest);
  throw UsageError("expected: keys create|create-admin|list|revoke|rotate");
}

// The Quick start's demo: a "demo" plan and tenant (created once) and a fresh inference key
// for it on every run (the secret cannot be shown twice, so each run issues a new one).
int cmd_demo_setup(const std::vector<std::string>& args) {
  Flags f = parse_flags(args, {"config"});
  return with_tx(load_config_for(f), "demo-setup", [&](pqxx::work& tx) {
    if (!acc::find_plan(tx, "demo")) {
      acc::NewPlan p;
      p.name = "demo";
      p.limits.requests_per_minute = 600;
      p.limits.tokens_per_minute = 200000;
      p.limits.max_concurrent_requests = 16;
      p.limits.tokens_per_day = 5000000;
      p.allowed_tiers = {"small", "medium", "large"};
      acc::create_plan(tx, p, kActor);
    }
    auto tenant = acc::find_tenant(tx, "demo");
    if (!tenant) {
      acc::NewTenant t;
      t.name = "demo";
      t.plan = "demo";
      tenant = acc::create_tenant(tx, t, kActor);
    }
    acc::NewKey k;
    k.tenant = tenant->id;
    k.name = "demo";
    k.scopes = {"inference"};
    auto key = acc::create_key(tx, k, kActor);
    std::printf("demo tenant: %s (%s), plan demo\n", tenant->name.c_str(), tenant->id.c_str());
    std::printf("demo API key (shown once): %s\n", key.secret_key.c_str());
  });
}

}  // namespace infergate::app
