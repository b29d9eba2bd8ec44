// The admin REST API and API-key authentication through the real binary, against real
// Postgres and Redis: every endpoint, its bad inputs, and changes reaching other instances.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <pqxx/pqxx>

#include <optional>
#include <regex>
#include <thread>

#include "server_harness.h"
#include "support/http_client.h"
#include "support/services.h"

namespace infergate {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

// A fresh database with the schema and an admin key.
struct Backend {
  infra::PostgresConfig db = test::fresh_database("admin");
  std::map<std::string, std::string> env{{"INFERGATE_POSTGRES__PORT", std::to_string(db.port)},
                                         {"INFERGATE_POSTGRES__DATABASE", db.database}};
  std::string admin_key;

  Backend() {
    std::string out;
    if (test::run_infergate({"migrate"}, env, &out) != 0) throw std::runtime_error(out);
    admin_key = test::issue_key({"keys", "create-admin"}, env);
  }
  test::ConfigValues config(const test::ConfigValues& more = {}) const {
    auto v = test::base_config(more);
    v["postgres"]["database"] = "\"" + db.database + "\"";
    return v;
  }
  std::int64_t count(const std::string& sql) const {
    pqxx::connection c(db.conninfo());
    pqxx::nontransaction tx(c);
    return tx.exec1(sql)[0].as<std::int64_t>();
  }
};

struct Reply {
  int status;
  json::value body;
  test::HttpResponse raw;
};

Reply call(int port, const std::string& method, const std::string& path, const std::string& key,
           const std::string& body = "") {
  std::map<std::string, std::string> headers;
  if (!key.empty()) headers["Authorization"] = "Bearer " + key;
  if (!body.empty()) headers["Content-Type"] = "application/json";
  auto r = test::http_request(port, method, path, body, headers);
  Reply out{r.status, r.body.empty() ? json::value() : json::parse(r.body), r};
  return out;
}

// Polls GET /v1/models with `secret` every 20 ms until it answers `status`: how long that took,
// or nullopt when it had not within `limit`.
std::optional<std::chrono::milliseconds> time_until_status(int port, const std::string& secret, int status,
                                                           std::chrono::milliseconds limit) {
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < limit) {
    if (call(port, "GET", "/v1/models", secret).status == status)
      return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    std::this_thread::sleep_for(20ms);
  }
  return std::nullopt;
}

std::string error_code(const Reply& r) {
  return std::string(r.body.at("error").at("code").as_string());
}
std::string error_param(const Reply& r) {
  const auto& p = r.body.at("error").at("param");
  return p.is_null() ? "" : std::string(p.as_string());
}

// Plan "gold", tenant "acme" and an inference key for it, through the API on `port`:
// {tenant id, key id, secret key}.
std::tuple<std::string, std::string, std::string> tenant_with_key(int port,
                                                                  const std::string& admin_key) {
  EXPECT_EQ(call(port, "POST", "/admin/v1/plans", admin_key, R"({"name":"gold"})").status, 201);
  auto t = call(port, "POST", "/admin/v1/tenants", admin_key, R"({"name":"acme","plan":"gold"})");
  const std::string tenant(t.body.at("id").as_string());
  auto k = call(port, "POST", "/admin/v1/tenants/" + tenant + "/keys", admin_key, "{}");
  return {tenant, std::string(k.body.at("id").as_string()),
          std::string(k.body.at("secret_key").as_string())};
}

class AdminApiTest : public ::testing::Test {
 protected:
  Backend backend;
  test::ServerProcess server{backend.config()};
  Reply admin(const std::string& method, const std::string& path, const std::string& body = "") {
    return call(server.port(), method, path, backend.admin_key, body);
  }
  std::string make_plan(const std::string& name) {
    auto r = admin("POST", "/admin/v1/plans", R"({"name":")" + name + R"("})");
    EXPECT_EQ(r.status, 201) << r.raw.body;
    return std::string(r.body.at("id").as_string());
  }
  std::string make_tenant(const std::string& name, const std::string& plan) {
    auto r = admin("POST", "/admin/v1/tenants",
                   R"({"name":")" + name + R"(","plan":")" + plan + R"("})");
    EXPECT_EQ(r.status, 201) << r.raw.body;
    return std::string(r.body.at("id").as_string());
  }
  // Returns {id, secret_key}.
  std::pair<std::string, std::string> make_key(const std::string& tenant,
                                               const std::string& body = "{}") {
    auto r = admin("POST", "/admin/v1/tenants/" + tenant + "/keys", body);
    EXPECT_EQ(r.status, 201) << r.raw.body;
    return {std::string(r.body.at("id").as_string()),
            std::string(r.body.at("secret_key").as_string())};
  }
};

TEST_F(AdminApiTest, Plans) {
  auto r = admin("POST", "/admin/v1/plans",
                 R"({"name":"gold","limits":{"tokens_per_day":1000,"requests_per_minute":null},
                     "allowed_tiers":["small","medium"],"scheduling_weight":3})");
  ASSERT_EQ(r.status, 201) << r.raw.body;
  const std::string id(r.body.at("id").as_string());
  EXPECT_EQ(r.body.at("object"), "plan");
  EXPECT_EQ(r.body.at("limits").at("tokens_per_day"), 1000);
  EXPECT_TRUE(r.body.at("limits").at("requests_per_minute").is_null());
  EXPECT_EQ(r.body.at("allowed_tiers"), json::parse(R"(["small","medium"])"));
  EXPECT_EQ(r.body.at("scheduling_weight"), 3);

  EXPECT_EQ(admin("GET", "/admin/v1/plans/" + id).body.at("name"), "gold");
  EXPECT_EQ(admin("GET", "/admin/v1/plans/gold").body.at("id"), json::value(id));  // by name too
  auto list = admin("GET", "/admin/v1/plans");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.body.at("data").as_array().size(), 1u);

  auto p = admin("PATCH", "/admin/v1/plans/" + id,
                 R"({"limits":{"tokens_per_day":null,"tokens_per_month":5},"scheduling_weight":7})");
  ASSERT_EQ(p.status, 200) << p.raw.body;
  EXPECT_TRUE(p.body.at("limits").at("tokens_per_day").is_null());
  EXPECT_EQ(p.body.at("limits").at("tokens_per_month"), 5);
  EXPECT_EQ(p.body.at("scheduling_weight"), 7);
  EXPECT_EQ(p.body.at("allowed_tiers"), json::parse(R"(["small","medium"])"));  // untouched

  EXPECT_EQ(admin("POST", "/admin/v1/plans", R"({"name":"gold"})").status, 409);
  auto nf = admin("GET", "/admin/v1/plans/plan_nope");
  EXPECT_EQ(nf.status, 404);
  EXPECT_EQ(error_code(nf), "not_found");
  EXPECT_EQ(admin("PATCH", "/admin/v1/plans/plan_nope", R"({"scheduling_weight":2})").status, 404);
  // plan.create + plan.update, each audited with the acting key.
  EXPECT_EQ(backend.count("SELECT count(*) FROM admin_audit WHERE target_type = 'plan' AND "
                          "actor LIKE 'key:%'"),
            2);
}

TEST_F(AdminApiTest, PlanBadInputsNameTheFieldAndChangeNothing) {
  struct Case {
    std::string body, param;
  } cases[] = {
      {R"({"name":"p","bogus":1})", "bogus"},
      {R"({"name":5})", "name"},
      {R"({})", "name"},
      {R"({"name":"p","limits":{"tokens_per_day":-1}})", "limits.tokens_per_day"},
      {R"({"name":"p","limits":{"tokens_per_day":1.5}})", "limits.tokens_per_day"},
      {R"({"name":"p","limits":{"tokens_per_week":1}})", "limits.tokens_per_week"},
      {R"({"name":"p","limits":{"tokens_per_day":"10"}})", "limits.tokens_per_day"},
      {R"({"name":")" + std::string(65, 'x') + R"("})", "name"},
      {R"({"name":"has space"})", "name"},
      {R"({"name":"p","scheduling_weight":0})", "scheduling_weight"},
      {R"({"name":"p","allowed_tiers":"small"})", "allowed_tiers"},
      {R"({"name":"p","allowed_tiers":[1]})", "allowed_tiers"},
  };
  for (const auto& c : cases) {
    auto r = admin("POST", "/admin/v1/plans", c.body);
    EXPECT_EQ(r.status, 400) << c.body << " -> " << r.raw.body;
    EXPECT_EQ(error_param(r), c.param) << c.body << " -> " << r.raw.body;
    EXPECT_FALSE(r.body.at("error").at("message").as_string().empty());
  }
  auto not_json = test::http_request(server.port(), "POST", "/admin/v1/plans", R"({"name":"p"})",
                                     {{"Authorization", "Bearer " + backend.admin_key},
                                      {"Content-Type", "text/plain"}});
  EXPECT_EQ(not_json.status, 400);
  EXPECT_EQ(admin("POST", "/admin/v1/plans", "{not json").status, 400);
  EXPECT_EQ(admin("POST", "/admin/v1/plans", "[1,2]").status, 400);
  EXPECT_EQ(backend.count("SELECT count(*) FROM plans"), 0);
  EXPECT_EQ(backend.count("SELECT count(*) FROM admin_audit"), 1);  // only the CLI's admin key
}

TEST_F(AdminApiTest, TenantsCrudPaginationAndFilters) {
  const std::string gold = make_plan("gold"), free_plan = make_plan("free");
  auto r = admin("POST", "/admin/v1/tenants",
                 R"({"name":"acme","plan":"gold","billing_timezone":"America/New_York",
                     "currency":"EUR","limit_overrides":{"tokens_per_day":50,"tokens_per_month":null}})");
  ASSERT_EQ(r.status, 201) << r.raw.body;
  const std::string acme(r.body.at("id").as_string());
  EXPECT_EQ(r.body.at("plan_id"), json::value(gold));
  EXPECT_EQ(r.body.at("status"), "active");
  EXPECT_EQ(r.body.at("billing_timezone"), "America/New_York");
  EXPECT_EQ(r.body.at("limit_overrides"), json::parse(R"({"tokens_per_day":50,"tokens_per_month":null})"));

  std::vector<std::string> ids{acme};
  for (int i = 0; i < 4; ++i) ids.push_back(make_tenant("t" + std::to_string(i), i % 2 ? "free" : "gold"));
  // Cursor pagination: limit 2 -> 3 pages, every tenant exactly once, in id order.
  std::vector<std::string> seen;
  std::string cursor;
  for (int page = 0; page < 5; ++page) {
    auto l = admin("GET", "/admin/v1/tenants?limit=2" + (cursor.empty() ? "" : "&cursor=" + cursor));
    ASSERT_EQ(l.status, 200) << l.raw.body;
    for (const auto& t : l.body.at("data").as_array()) seen.emplace_back(t.at("id").as_string());
    if (!l.body.at("has_more").as_bool()) break;
    cursor = std::string(l.body.at("next_cursor").as_string());
  }
  auto sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(seen, sorted);

  EXPECT_EQ(admin("GET", "/admin/v1/tenants?plan=free").body.at("data").as_array().size(), 2u);
  EXPECT_EQ(admin("GET", "/admin/v1/tenants?plan=" + free_plan).body.at("data").as_array().size(), 2u);
  ASSERT_EQ(admin("POST", "/admin/v1/tenants/" + acme + "/suspend").status, 200);
  auto suspended = admin("GET", "/admin/v1/tenants?status=suspended");
  ASSERT_EQ(suspended.body.at("data").as_array().size(), 1u);
  EXPECT_EQ(suspended.body.at("data").at(0).at("id"), json::value(acme));
  EXPECT_EQ(admin("POST", "/admin/v1/tenants/" + acme + "/reactivate").body.at("status"), "active");

  auto p = admin("PATCH", "/admin/v1/tenants/" + acme,
                 R"({"plan":"free","billing_timezone":"Asia/Tokyo","limit_overrides":{}})");
  ASSERT_EQ(p.status, 200) << p.raw.body;
  EXPECT_EQ(p.body.at("plan_id"), json::value(free_plan));
  EXPECT_EQ(p.body.at("billing_timezone"), "Asia/Tokyo");
  EXPECT_EQ(p.body.at("limit_overrides"), json::object());
  EXPECT_EQ(p.body.at("currency"), "EUR");  // untouched
  EXPECT_EQ(admin("GET", "/admin/v1/tenants/" + acme).body.at("billing_timezone"), "Asia/Tokyo");

  // Every mutation audited with before and after, in the same transaction as the change.
  EXPECT_EQ(backend.count("SELECT count(*) FROM admin_audit WHERE target_id = '" + acme + "'"), 4);
  EXPECT_EQ(backend.count("SELECT count(*) FROM admin_audit WHERE target_id = '" + acme +
                          "' AND action = 'tenant.suspend' AND before->>'status' = 'active' AND "
                          "after->>'status' = 'suspended'"),
            1);
}

TEST_F(AdminApiTest, TenantBadInputs) {
  make_plan("gold");
  make_tenant("acme", "gold");
  struct Case {
    std::string method, path, body;
    int status;
    std::string param;
  } cases[] = {
      {"POST", "/admin/v1/tenants", R"({"name":"acme","plan":"gold"})", 409, "name"},
      {"POST", "/admin/v1/tenants", R"({"name":"x","plan":"nope"})", 400, "plan"},
      {"POST", "/admin/v1/tenants", R"({"name":"x","plan":"gold","billing_timezone":"Mars/Base"})",
       400, "billing_timezone"},
      {"POST", "/admin/v1/tenants", R"({"name":"x","plan":"gold","currency":"euro"})", 400,
       "currency"},
      {"POST", "/admin/v1/tenants", R"({"name":"x","plan":"gold","limit_overrides":{"tokens_per_day":-3}})",
       400, "limit_overrides.tokens_per_day"},
      {"POST", "/admin/v1/tenants", R"({"name":"x","plan":"gold","limit_overrides":{"nope":1}})",
       400, "limit_overrides.nope"},
      {"POST", "/admin/v1/tenants", R"({"name":"x","plan":"gold","status":"active"})", 400,
       "status"},
      {"POST", "/admin/v1/tenants", R"({"plan":"gold"})", 400, "name"},
      {"PATCH", "/admin/v1/tenants/acme", R"({"status":"deleted"})", 400, "status"},
      {"PATCH", "/admin/v1/tenants/ten_missing", R"({"status":"active"})", 404, "id"},
      {"GET", "/admin/v1/tenants/ten_missing", "", 404, "id"},
      {"POST", "/admin/v1/tenants/ten_missing/suspend", "", 404, "id"},
      {"GET", "/admin/v1/tenants?limit=0", "", 400, "limit"},
      {"GET", "/admin/v1/tenants?limit=abc", "", 400, "limit"},
      {"GET", "/admin/v1/tenants?status=gone", "", 400, "status"},
      {"GET", "/admin/v1/tenants?colour=red", "", 400, "colour"},
  };
  for (const auto& c : cases) {
    auto r = admin(c.method, c.path, c.body);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.path << " " << c.body << " -> "
                                  << r.raw.body;
    EXPECT_EQ(error_param(r), c.param) << c.method << " " << c.path << " " << c.body;
  }
  EXPECT_EQ(backend.count("SELECT count(*) FROM tenants"), 1);
}

TEST_F(AdminApiTest, KeysAndAuthentication) {
  make_plan("gold");
  const std::string tenant = make_tenant("acme", "gold");
  auto [key_id, secret] = make_key(tenant, R"({"name":"ci"})");
  EXPECT_TRUE(std::regex_match(secret, std::regex("ig_live_" + key_id + "_[0-9a-f]{48}")));
  const int port = server.port();

  auto ok = call(port, "GET", "/v1/models", secret);
  EXPECT_EQ(ok.status, 200) << ok.raw.body;
  EXPECT_EQ(ok.body.at("object"), "list");

  // Listing never shows a secret.
  auto list = admin("GET", "/admin/v1/tenants/" + tenant + "/keys");
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.body.at("data").as_array().size(), 1u);
  EXPECT_FALSE(list.body.at("data").at(0).as_object().contains("secret_key"));
  EXPECT_EQ(list.raw.body.find(secret.substr(25)), std::string::npos);

  // Each failure: status, OpenAI code, and for 401 a WWW-Authenticate header.
  const std::string wrong_secret = secret.substr(0, secret.size() - 1) +
                                   (secret.back() == 'a' ? "b" : "a");
  const std::string unknown_id = "ig_live_0000000000000000_" + secret.substr(25);
  struct Case {
    std::string path, key;
    int status;
    std::string code;
  } cases[] = {
      {"/v1/models", "", 401, "invalid_api_key"},
      {"/v1/models", "not-a-key", 401, "invalid_api_key"},
      {"/v1/models", unknown_id, 401, "invalid_api_key"},
      {"/v1/models", wrong_secret, 401, "invalid_api_key"},
      {"/admin/v1/plans", secret, 403, "insufficient_scope"},
      {"/v1/models", backend.admin_key, 403, "insufficient_scope"},
      {"/admin/v1/plans", "", 401, "invalid_api_key"},
  };
  for (const auto& c : cases) {
    auto r = call(port, "GET", c.path, c.key);
    EXPECT_EQ(r.status, c.status) << c.path << " with '" << c.key << "': " << r.raw.body;
    EXPECT_EQ(error_code(r), c.code) << c.path;
    if (c.status == 401) {
      EXPECT_EQ(r.raw.header("www-authenticate"), "Bearer");
    }
  }
  // Unknown id and wrong secret answer identically.
  EXPECT_EQ(call(port, "GET", "/v1/models", unknown_id).raw.body,
            call(port, "GET", "/v1/models", wrong_secret).raw.body);

  // Suspension: 403 at once on this instance; reactivation restores access.
  admin("POST", "/admin/v1/tenants/" + tenant + "/suspend");
  auto s = call(port, "GET", "/v1/models", secret);
  EXPECT_EQ(s.status, 403);
  EXPECT_EQ(error_code(s), "tenant_suspended");
  admin("POST", "/admin/v1/tenants/" + tenant + "/reactivate");
  EXPECT_EQ(call(port, "GET", "/v1/models", secret).status, 200);

  // Revocation: refused at once.
  auto rv = admin("POST", "/admin/v1/keys/" + key_id + "/revoke");
  ASSERT_EQ(rv.status, 200);
  EXPECT_FALSE(rv.body.at("revoked_at").is_null());
  EXPECT_EQ(call(port, "GET", "/v1/models", secret).status, 401);
  EXPECT_EQ(admin("POST", "/admin/v1/keys/nope/revoke").status, 404);

  // An expired key is refused.
  auto [old_id, expired] = make_key(tenant, R"({"expires_at":"2020-01-01T00:00:00Z"})");
  auto e = call(port, "GET", "/v1/models", expired);
  EXPECT_EQ(e.status, 401);
  EXPECT_NE(std::string(e.body.at("error").at("message").as_string()).find("expired"),
            std::string::npos);
  EXPECT_EQ(admin("POST", "/admin/v1/tenants/" + tenant + "/keys", R"({"expires_at":"soon"})")
                .status,
            400);
  // Well formed, but no such day: refused naming the field (it used to reach Postgres: a 500).
  auto no_day = admin("POST", "/admin/v1/tenants/" + tenant + "/keys", R"({"expires_at":"2027-02-30T00:00:00Z"})");
  EXPECT_EQ(no_day.status, 400) << no_day.raw.body;
  EXPECT_EQ(no_day.body.at("error").at("param"), "expires_at");
  EXPECT_EQ(admin("POST", "/admin/v1/tenants/ten_missing/keys", "{}").status, 404);

  // The database holds no secret, anywhere.
  pqxx::connection c(backend.db.conninfo());
  pqxx::nontransaction tx(c);
  for (const std::string& s2 : {secret, expired})
    for (const char* table : {"api_keys", "admin_audit"})
      EXPECT_EQ(tx.exec1(std::string("SELECT count(*) FROM ") + table + " t WHERE t::text LIKE " +
                         tx.quote("%" + s2.substr(25) + "%"))[0]
                    .as<int>(),
                0)
          << table;
}

TEST_F(AdminApiTest, RotationKeepsTheOldKeyForTheGracePeriod) {
  make_plan("gold");
  const std::string tenant = make_tenant("acme", "gold");
  auto [old_id, old_secret] = make_key(tenant, R"({"name":"svc"})");
  const int port = server.port();
  ASSERT_EQ(call(port, "GET", "/v1/models", old_secret).status, 200);

  auto r = admin("POST", "/admin/v1/keys/" + old_id + "/rotate", R"({"grace_period_seconds":2})");
  ASSERT_EQ(r.status, 201) << r.raw.body;
  const std::string new_secret(r.body.at("secret_key").as_string());
  EXPECT_EQ(r.body.at("replaces"), json::value(old_id));
  EXPECT_EQ(r.body.at("name"), "svc");
  const auto rotated_at = std::chrono::steady_clock::now();
  EXPECT_EQ(call(port, "GET", "/v1/models", new_secret).status, 200);
  EXPECT_EQ(call(port, "GET", "/v1/models", old_secret).status, 200);  // grace period
  // Rotated already: a second rotation (or a retried one) would mint a second successor and
  // leave the first valid and unlinked. It is refused, naming the key.
  auto again = admin("POST", "/admin/v1/keys/" + old_id + "/rotate", R"({"grace_period_seconds":2})");
  EXPECT_EQ(again.status, 409) << again.raw.body;
  EXPECT_EQ(backend.count("SELECT count(*) FROM api_keys WHERE name = 'svc'"), 2);
  while (std::chrono::steady_clock::now() - rotated_at < 2500ms) std::this_thread::sleep_for(50ms);
  auto late = call(port, "GET", "/v1/models", old_secret);
  EXPECT_EQ(late.status, 401);
  EXPECT_EQ(call(port, "GET", "/v1/models", new_secret).status, 200);

  EXPECT_EQ(admin("POST", "/admin/v1/keys/" + old_id + "/rotate", R"({"grace_period_seconds":-1})")
                .status,
            400);
  EXPECT_EQ(admin("POST", "/admin/v1/keys/" + old_id + "/rotate", R"({})").status, 400);
  EXPECT_EQ(admin("POST", "/admin/v1/keys/nope/rotate", R"({"grace_period_seconds":1})").status,
            404);
  EXPECT_EQ(backend.count("SELECT count(*) FROM api_keys WHERE id = '" + old_id +
                          "' AND replaced_by IS NOT NULL"),
            1);
}

// Two instances on one Postgres and Redis: a change made through A reaches B's cache at once.
TEST(AdminApiInstances, RevocationAndSuspensionReachTheOtherInstanceWithinOneSecond) {
  Backend backend;
  test::ServerProcess a(backend.config()), b(backend.config());
  auto admin = [&](const std::string& m, const std::string& p, const std::string& body = "") {
    return call(a.port(), m, p, backend.admin_key, body);
  };
  const auto [tenant, key_id, secret] = tenant_with_key(a.port(), backend.admin_key);
  ASSERT_EQ(call(b.port(), "GET", "/v1/models", secret).status, 200);  // now cached in B

  auto wait_b = [&](int status) {
    auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < 3s) {
      if (call(b.port(), "GET", "/v1/models", secret).status == status)
        return std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - t0);
      std::this_thread::sleep_for(20ms);
    }
    return std::chrono::milliseconds(99999);
  };
  admin("POST", "/admin/v1/tenants/" + tenant + "/suspend");
  EXPECT_LT(wait_b(403), 1000ms);
  admin("POST", "/admin/v1/tenants/" + tenant + "/reactivate");
  EXPECT_LT(wait_b(200), 1000ms);
  admin("POST", "/admin/v1/keys/" + key_id + "/revoke");
  EXPECT_LT(wait_b(401), 1000ms);
}

// Without Redis, nothing is published: the other instance's cache TTL bounds the staleness,
// and when Redis returns the subscriber's reconnect drops the whole cache.
TEST(AdminApiInstances, WithoutRedisTheCacheTtlBoundsStaleness) {
  Backend backend;
  test::PrivateRedis redis;
  const test::ConfigValues cfg{{"redis", {{"port", std::to_string(redis.port())}}},
                               {"auth", {{"cache_ttl_ms", "800"}}}};
  test::ServerProcess a(backend.config(cfg)), b(backend.config(cfg));
  auto admin = [&](const std::string& m, const std::string& p, const std::string& body = "") {
    return call(a.port(), m, p, backend.admin_key, body);
  };
  const auto [tenant, key_id, secret] = tenant_with_key(a.port(), backend.admin_key);
  ASSERT_EQ(call(b.port(), "GET", "/v1/models", secret).status, 200);

  redis.stop();
  ASSERT_EQ(admin("POST", "/admin/v1/keys/" + key_id + "/revoke").status, 200);
  const auto took = time_until_status(b.port(), secret, 401, 3s);
  ASSERT_TRUE(took) << "still not 401 after 3 s";
  EXPECT_LT(*took, 1500ms);  // TTL 800 ms plus slack
  EXPECT_TRUE(a.wait_for_log("cache invalidation not published", 1s));
}

// The value of one series on GET /metrics (e.g. `infergate_auth_cache_total{result="miss"}`),
// or -1 when it is not there.
double metric(int port, const std::string& series) {
  const std::string text = "\n" + test::http_request(port, "GET", "/metrics").body;
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

// A key in steady use is read again from Postgres before its cache entry expires, behind the
// request that noticed it: no request waits for Postgres (no miss) however long the traffic
// lasts, and what is read again is fresh (a change made straight in the database, which no
// instance was told of, still takes effect within the TTL).
TEST(AdminApiInstances, AKeyInUseIsReadAgainBeforeItExpiresWithoutARequestWaiting) {
  Backend backend;
  test::ServerProcess s(backend.config({{"auth", {{"cache_ttl_ms", "1500"}}}}));
  const auto [tenant, key_id, secret] = tenant_with_key(s.port(), backend.admin_key);
  ASSERT_EQ(call(s.port(), "GET", "/v1/models", secret).status, 200);  // cached now
  const std::string miss = R"(infergate_auth_cache_total{result="miss"})";
  const std::string refresh = R"(infergate_auth_cache_total{result="refresh"})";
  const double misses0 = metric(s.port(), miss), refreshes0 = metric(s.port(), refresh);
  ASSERT_GE(misses0, 1);
  ASSERT_GE(refreshes0, 0);
  // 4.5 s of requests every 20 ms: three TTLs.
  const auto t0 = std::chrono::steady_clock::now();
  int requests = 0;
  while (std::chrono::steady_clock::now() - t0 < 4500ms) {
    ASSERT_EQ(call(s.port(), "GET", "/v1/models", secret).status, 200);
    ++requests;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(metric(s.port(), miss), misses0) << requests << " requests";
  EXPECT_GE(metric(s.port(), refresh) - refreshes0, 2) << requests << " requests";

  // Straight in the database: nothing is published, only a read sees it.
  {
    pqxx::connection c(backend.db.conninfo());
    pqxx::work tx(c);
    tx.exec_params("UPDATE tenants SET status = 'suspended' WHERE id = $1", tenant);
    tx.commit();
  }
  const auto took = time_until_status(s.port(), secret, 403, 3s);
  ASSERT_TRUE(took) << "still not 403 after 3 s";
  EXPECT_LT(*took, 2250ms);  // TTL 1.5 s plus slack
  EXPECT_EQ(metric(s.port(), miss), misses0);
}

}  // namespace
}  // namespace infergate
