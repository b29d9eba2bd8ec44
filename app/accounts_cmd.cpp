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

}  // namespace

int cmd_plans(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "create") return plans_create({args.begin() + 1, args.end()});
  throw UsageError("expected: plans create --name NAME [--requests-per-minute N] ...");
}

int cmd_tenants(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "create") return tenants_create({args.begin() + 1, args.end()});
  throw UsageError("expected: tenants create --name NAME --plan PLAN [--timezone TZ]");
}

int cmd_keys(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "create") return keys_create({args.begin() + 1, args.end()}, false);
  if (!args.empty() && args[0] == "create-admin")
    return keys_create({args.begin() + 1, args.end()}, true);
  throw UsageError("expected: keys create --tenant TENANT | keys create-admin");
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
