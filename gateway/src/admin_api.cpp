#include "infergate/gateway/admin_api.h"

#include <pqxx/pqxx>

#include "infergate/gateway/accounts.h"
#include "infergate/gateway/api_errors.h"
#include "infergate/gateway/json_input.h"
#include "infergate/infra/log.h"

namespace infergate::gateway {

namespace asio = boost::asio;
namespace json = boost::json;
namespace acc = accounts;
using acc::AccountError;

namespace {

json::object list_of(json::array data) {
  return {{"object", "list"}, {"data", std::move(data)}};
}

acc::Limits read_limits(FieldReader& f) {
  acc::Limits l;
  auto take = [&](const char* name, std::optional<std::int64_t>& out) {
    auto v = f.nullable_integer(name, 0, INT64_MAX);
    if (v.present) out = v.value;
  };
  take("requests_per_minute", l.requests_per_minute);
  take("tokens_per_minute", l.tokens_per_minute);
  take("max_concurrent_requests", l.max_concurrent_requests);
  take("tokens_per_day", l.tokens_per_day);
  take("tokens_per_month", l.tokens_per_month);
  return l;
}

// Overrides arrive as an object of limit -> integer | null; checked by the store.
json::object read_overrides(FieldReader& f, const char* name, bool key_level = false) {
  auto o = f.object(name);
  if (!o) return {};
  try {
    acc::validate_overrides(*o, name, key_level);
  } catch (const AccountError& e) {
    throw BadInput(e.field(), e.what());
  }
  return *o;
}

template <class T>
json::array to_array(const std::vector<T>& items) {
  json::array a;
  for (const auto& i : items) a.push_back(acc::to_json(i));
  return a;
}

json::object created_key_json(const acc::CreatedKey& k) {
  json::object o = acc::to_json(k.key);
  o["secret_key"] = k.secret_key;  // the only time the secret is ever shown
  return o;
}

}  // namespace

Response auth_failure_response(AuthOutcome outcome, const Request& req) {
  AuthFailure f = describe_failure(outcome);
  auto res = error_response(static_cast<http::status>(f.status), f.message, f.type, f.code,
                            std::nullopt, req.version());
  if (f.status == 401) res.set(http::field::www_authenticate, "Bearer");
  if (f.status == 503) res.set(http::field::retry_after, "1");
  return res;
}

AdminApi::AdminApi(infra::PgPool& pg, infra::RedisClient* redis, Authenticator& auth)
    : pg_(pg), redis_(redis), auth_(auth) {}

Handler admin_route(Authenticator& auth, AdminBody body) {
  return [&auth, body = std::move(body)](Request& req,
                                         RequestContext& ctx) -> asio::awaitable<Response> {
    std::string authorization(req[http::field::authorization]);
    AuthResult a = co_await auth.authenticate(authorization, "admin");
    if (!a.ok()) co_return auth_failure_response(a.outcome, req);
    const std::string actor = "key:" + a.principal().key_id;
    const ResponseBody run = [&]() -> asio::awaitable<Response> {
      Response res = co_await body(req, ctx, actor);
      co_return res;
    };
    Response res = co_await with_error_responses(req, run);
    co_return res;
  };
}

Handler AdminApi::admin(AdminBody body) { return admin_route(auth_, std::move(body)); }

asio::awaitable<void> AdminApi::invalidate(const std::string& message) {
  auth_.on_invalidation(message);  // this instance at once, whatever Redis does
  if (!redis_) co_return;
  try {
    std::vector<std::string> cmd{"PUBLISH", kInvalidationChannel, message};
    co_await redis_->command(cmd);
  } catch (const std::exception& e) {
    // Other instances pick the change up when their cached copy expires (auth.cache_ttl_ms).
    infra::log::warn("cache invalidation not published",
                     {{"message", message}, {"error", e.what()}});
  }
}

void AdminApi::add_routes(Router& r) {
  using V = http::verb;

  // ---- plans ----
  r.add(V::post, "/admin/v1/plans",
        admin([this](Request& req, RequestContext&, const std::string& actor)
                  -> asio::awaitable<Response> {
          json::object body = parse_json_object(req);
          FieldReader f(body);
          acc::NewPlan p;
          p.name = *f.string("name", true);
          if (auto l = f.object("limits")) {
            FieldReader lf(*l, "limits.");
            p.limits = read_limits(lf);
            lf.finish();
          }
          if (auto t = f.string_array("allowed_tiers")) p.allowed_tiers = *t;
          if (auto w = f.integer("scheduling_weight", 1, 1000)) p.scheduling_weight = static_cast<int>(*w);
          f.finish();
          const auto job = [=](pqxx::connection& c) {
            pqxx::work tx(c);
            auto out = acc::create_plan(tx, p, actor);
            tx.commit();
            return out;
          };
          acc::Plan plan = co_await pg_.run(job);
          co_return json_response(http::status::created, acc::to_json(plan), req.version());
        }));

  r.add(V::get, "/admin/v1/plans",
        admin([this](Request& req, RequestContext& ctx, const std::string&)
                  -> asio::awaitable<Response> {
          query_params(ctx, {});
          const auto job = [](pqxx::connection& c) {
            pqxx::work tx(c);
            return acc::list_plans(tx);
          };
          std::vector<acc::Plan> plans = co_await pg_.run(job);
          co_return json_response(http::status::ok, list_of(to_array(plans)), req.version());
        }));

  r.add(V::get, "/admin/v1/plans/{id}",
        admin([this](Request& req, RequestContext& ctx, const std::string&)
                  -> asio::awaitable<Response> {
          std::string id = ctx.params["id"];
          const auto job = [=](pqxx::connection& c) {
            pqxx::work tx(c);
            return acc::find_plan(tx, id);
          };
          std::optional<acc::Plan> plan = co_await pg_.run(job);
          if (!plan) throw AccountError(AccountError::Kind::not_found, "id", "no plan '" + id + "'");
          co_return json_response(http::status::ok, acc::to_json(*plan), req.version());
        }));

  r.add(V::patch, "/admin/v1/plans/{id}",
        admin([this](Request& req, RequestContext& ctx, const std::string& actor)
                  -> asio::awaitable<Response> {
          json::object body = parse_json_object(req);
          FieldReader f(body);
          acc::PlanPatch patch;
          patch.name = f.string("name");
          if (auto l = f.object("limits")) {
            FieldReader lf(*l, "limits.");
            for (const auto& name : acc::limit_names()) {
              auto v = lf.nullable_integer(name, 0, INT64_MAX);
              if (v.present) patch.limits.emplace_back(name, v.value);
            }
            lf.finish();
          }
          patch.allowed_tiers = f.string_array("allowed_tiers");
          if (auto w = f.integer("scheduling_weight", 1, 1000)) patch.scheduling_weight = static_cast<int>(*w);
          f.finish();
          std::string id = ctx.params["id"];
          const auto job = [=](pqxx::connection& c) {
            pqxx::work tx(c);
            auto out = acc::update_plan(tx, id, patch, actor);
            tx.commit();
            return out;
          };
          acc::Plan plan = co_await pg_.run(job);
          const std::string message = "plan:" + plan.id;
          co_await invalidate(message);
          co_return json_response(http::status::ok, acc::to_json(plan), req.version());
        }));

  // ---- tenants ----
  r.add(V::post, "/admin/v1/tenants",
        admin([this](Request& req, RequestContext&, const std::string& actor)
                  -> asio::awaitable<Response> {
          json::object body = parse_json_object(req);
          FieldReader f(body);
          acc::NewTenant t;
          t.name = *f.string("name", true);
          t.plan = *f.string("plan", true);
          if (auto tz = f.string("billing_timezone")) t.billing_timezone = *tz;
          if (auto c = f.string("currency")) t.currency = *c;
          t.limit_overrides = read_overrides(f, "limit_overrides");
          f.finish();
          const auto job = [=](pqxx::connection& c) {
            pqxx::work tx(c);
            auto out = acc::create_tenant(tx, t, actor);
            tx.commit();
            return out;
          };
          acc::Tenant tenant = co_await pg_.run(job);
          co_return json_response(http::status::created, acc::to_json(tenant), req.version());
        }));

  r.add(V::get, "/admin/v1/tenants",
        admin([this](Request& req, RequestContext& ctx, const std::string&)
                  -> asio::awaitable<Response> {
          auto q = query_params(ctx, {"status", "plan", "cursor", "limit"});
          std::optional<std::string> status, plan, cursor;
          if (q.count("status")) {
            status = q["status"];
            if (*status != "active" && *status != "suspended")
              throw BadInput("status", "'status' must be 'active' or 'suspended'.");
          }
          if (q.count("plan")) plan = q["plan"];
          if (q.count("cursor")) cursor = q["cursor"];
          int limit = 50;
          if (q.count("limit")) {
            try {
              std::size_t used = 0;
              limit = std::stoi(q["limit"], &used);
              if (used != q["limit"].size()) throw std::invalid_argument("trailing");
            } catch (const std::exception&) {
              throw BadInput("limit", "'limit' must be an integer between 1 and 500.");
            }
            if (limit < 1 || limit > 500)
              throw BadInput("limit", "'limit' must be an integer between 1 and 500.");
          }
          const auto job = [=](pqxx::connection& c) {
            pqxx::work tx(c);
            std::optional<std::string> plan_id;
            if (plan) {
              auto p = acc::find_plan(tx, *plan);
              plan_id = p ? p->id : *plan;  // unknown plan: simply no tenants
            }
            return acc::list_tenants(tx, status, plan_id, cursor, limit);
          };
          acc::TenantPage page = co_await pg_.run(job);
          json::object out = list_of(to_array(page.tenants));
          out["has_more"] = page.next_cursor.has_value();
          out["next_cursor"] = page.next_cursor ? json::value(*page.next_cursor) : nullptr;
          co_return json_response(http::status::ok, out, req.version());
        }));

  r.add(V::get, "/admin/v1/tenants/{id}",
        admin([this](Request& req, RequestContext& ctx, const std::string&)
                  -> asio::awaitable<Response> {
          std::string id = ctx.params["id"];
          const auto job = [=](pqxx::connection& c) {
            pqxx::work tx(c);
            return acc::find_tenant(tx, id);
          };
          std::optional<acc::Tenant> t = co_await pg_.run(job);
          if (!t) throw AccountError(AccountError::Kind::not_found, "id", "no tenant '" + id + "'");
          co_return json_response(http::status::ok, acc::to_json(*t), req.version());
        }));

  auto update_tenant = [this](const std::string& id, const acc::TenantPatch& patch,
                              const std::string& actor) -> asio::awaitable<acc::Tenant> {
    const auto job = [=](pqxx::connection& c) {
      pqxx::work tx(c);
      auto existing = acc::find_tenant(tx, id);  // accept the name as well as the id
      if (!existing)
        throw AccountError(AccountError::Kind::not_found, "id", "no tenant '" + id + "'");
      auto out = acc::update_tenant(tx, existing->id, patch, actor);
      tx.commit();
      return out;
    };
    acc::Tenant t = co_await pg_.run(job);
    const std::string message = "tenant:" + t.id;
    co_await invalidate(message);
    co_return t;
  };

  r.add(V::patch, "/admin/v1/tenants/{id}",
        admin([update_tenant](Request& req, RequestContext& ctx, const std::string& actor)
                  -> asio::awaitable<Response> {
          json::object body = parse_json_object(req);
          FieldReader f(body);
          acc::TenantPatch patch;
          patch.name = f.string("name");
          patch.plan = f.string("plan");
          patch.billing_timezone = f.string("billing_timezone");
          patch.currency = f.string("currency");
          patch.status = f.string("status");
          if (body.contains("limit_overrides")) patch.limit_overrides = read_overrides(f, "limit_overrides");
          f.finish();
          acc::Tenant t = co_await update_tenant(ctx.params["id"], patch, actor);
          co_return json_response(http::status::ok, acc::to_json(t), req.version());
        }));

  for (const char* action : {"suspend", "reactivate"}) {
    const std::string status = std::string(action) == "suspend" ? "suspended" : "active";
    r.add(V::post, std::string("/admin/v1/tenants/{id}/") + action,
          admin([update_tenant, status](Request& req, RequestContext& ctx,
                                        const std::string& actor) -> asio::awaitable<Response> {
            acc::TenantPatch patch;
            patch.status = status;
            acc::Tenant t = co_await update_tenant(ctx.params["id"], patch, actor);
            co_return json_response(http::status::ok, acc::to_json(t), req.version());
          }));
  }

  // ---- keys ----
  r.add(V::post, "/admin/v1/tenants/{id}/keys",
        admin([this](Request& req, RequestContext& ctx, const std::string& actor)
                  -> asio::awaitable<Response> {
          json::object body = req.body().empty() ? json::object{} : parse_json_object(req);
          FieldReader f(body);
          acc::NewKey k;
          k.tenant = ctx.params["id"];
          k.scopes = {"inference"};
          if (auto n = f.string("name")) k.name = *n;
          k.expires_at = f.string("expires_at");
          k.limit_overrides = read_overrides(f, "limit_overrides", /*key_level=*/true);
          f.finish();
          const auto job = [=](pqxx::connection& c) {
            pqxx::work tx(c);
            auto out = acc::create_key(tx, k, actor);
            tx.commit();
            return out;
          };
          acc::CreatedKey created = co_await pg_.run(job);
          co_return json_response(http::status::created, created_key_json(created), req.version());
        }));

  r.add(V::get, "/admin/v1/tenants/{id}/keys",
        admin([this](Request& req, RequestContext& ctx, const std::string&)
                  -> asio::awaitable<Response> {
          std::string id = ctx.params["id"];
          const auto job = [=](pqxx::connection& c) {
            pqxx::work tx(c);
            return acc::list_keys(tx, id);
          };
          std::vector<acc::ApiKey> keys = co_await pg_.run(job);
          co_return json_response(http::status::ok, list_of(to_array(keys)), req.version());
        }));

  r.add(V::post, "/admin/v1/keys/{id}/revoke",
        admin([this](Request& req, RequestContext& ctx, const std::string& actor)
                  -> asio::awaitable<Response> {
          std::string id = ctx.params["id"];
          const auto job = [=](pqxx::connection& c) {
            pqxx::work tx(c);
            auto out = acc::revoke_key(tx, id, actor);
            tx.commit();
            return out;
          };
          acc::ApiKey key = co_await pg_.run(job);
          const std::string message = "key:" + id;
          co_await invalidate(message);
          co_return json_response(http::status::ok, acc::to_json(key), req.version());
        }));

  r.add(V::post, "/admin/v1/keys/{id}/rotate",
        admin([this](Request& req, RequestContext& ctx, const std::string& actor)
                  -> asio::awaitable<Response> {
          json::object body = parse_json_object(req);
          FieldReader f(body);
          std::int64_t grace = *f.integer("grace_period_seconds", 0, 30LL * 24 * 3600, true);
          f.finish();
          std::string id = ctx.params["id"];
          const auto job = [=](pqxx::connection& c) {
            pqxx::work tx(c);
            auto out = acc::rotate_key(tx, id, grace, actor);
            tx.commit();
            return out;
          };
          acc::CreatedKey created = co_await pg_.run(job);
          const std::string message = "key:" + id;
          co_await invalidate(message);
          json::object out = created_key_json(created);
          out["replaces"] = id;
          co_return json_response(http::status::created, out, req.version());
        }));
}

}  // namespace infergate::gateway
