// Admission on the /v1 path through the real binary: x-ratelimit-* headers on every response,
// the 429 body field by field, and Redis going away with fail-closed and fail-open.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <regex>

#include "server_harness.h"
#include "support/http_client.h"
#include "support/services.h"

namespace infergate {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

// Schema, a plan with 3 requests per minute, a tenant and an inference key.
struct TenantWithKey {
  infra::PostgresConfig db = test::fresh_database("rl");
  std::map<std::string, std::string> env{{"INFERGATE_POSTGRES__PORT", std::to_string(db.port)},
                                         {"INFERGATE_POSTGRES__DATABASE", db.database}};
  std::string key;
  TenantWithKey() {
    std::string out;
    auto run = [&](const std::vector<std::string>& args) {
      if (test::run_infergate(args, env, &out) != 0) throw std::runtime_error(out);
    };
    run({"migrate"});
    run({"plans", "create", "--name", "tight", "--requests-per-minute", "3"});
    run({"tenants", "create", "--name", "acme", "--plan", "tight"});
    key = test::issue_key({"keys", "create", "--tenant", "acme"}, env);
  }
  test::ConfigValues config(const test::ConfigValues& more = {}) const {
    auto v = test::base_config(more);
    v["postgres"]["database"] = "\"" + db.database + "\"";
    return v;
  }
};

test::HttpResponse models(int port, const std::string& key) {
  return test::http_request(port, "GET", "/v1/models", "", {{"Authorization", "Bearer " + key}});
}

TEST(RateLimitHeaders, EveryResponseCarriesThemAnd429IsExact) {
  TenantWithKey s;
  test::ServerProcess server(s.config());
  test::wait_clear_of_minute_boundary();
  for (int i = 0; i < 3; ++i) {
    auto r = models(server.port(), s.key);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-ratelimit-limit-requests"), "3");
    EXPECT_EQ(r.header("x-ratelimit-remaining-requests"), std::to_string(2 - i));
    EXPECT_TRUE(std::regex_match(r.header("x-ratelimit-reset-requests"),
                                 std::regex("[0-9]+(\\.[0-9]+)?s")))
        << r.header("x-ratelimit-reset-requests");
    EXPECT_FALSE(r.header("x-ratelimit-reset-tokens").empty());
    EXPECT_EQ(r.header("x-ratelimit-limit-tokens"), "");  // tokens unlimited in this plan
  }
  auto r = models(server.port(), s.key);
  ASSERT_EQ(r.status, 429);
  auto body = json::parse(r.body);
  const auto& err = body.at("error").as_object();
  EXPECT_EQ(err.at("code"), "rate_limit_exceeded");
  EXPECT_EQ(err.at("type"), "requests");
  EXPECT_TRUE(err.at("param").is_null());
  EXPECT_NE(std::string(err.at("message").as_string()).find("requests_per_minute"),
            std::string::npos);
  const int retry = std::stoi(r.header("retry-after"));
  EXPECT_GE(retry, 1);
  EXPECT_LE(retry, 60);
  EXPECT_EQ(r.header("x-ratelimit-limit-requests"), "3");
  EXPECT_EQ(r.header("x-ratelimit-remaining-requests"), "0");
  EXPECT_FALSE(r.header("x-request-id").empty());

  auto m = test::http_request(server.port(), "GET", "/metrics");  // counted before responding
  EXPECT_NE(m.body.find("infergate_admission_total{outcome=\"admitted\"} 3"), std::string::npos);
  EXPECT_NE(m.body.find("infergate_admission_total{outcome=\"limited\"} 1"), std::string::npos);
}

TEST(RateLimitHeaders, LimitsHoldAcrossTwoInstances) {
  TenantWithKey s;
  test::ServerProcess a(s.config()), b(s.config());
  test::wait_clear_of_minute_boundary();
  int ok = 0;
  for (int i = 0; i < 8; ++i) ok += models(i % 2 ? a.port() : b.port(), s.key).status == 200;
  EXPECT_EQ(ok, 3);  // not 3 per instance
}

TEST(RateLimitRedisDown, FailClosedRefusesWith503AndRecovers) {
  TenantWithKey s;
  test::PrivateRedis redis;
  test::ServerProcess server(s.config({{"redis", {{"port", std::to_string(redis.port())}}}}));
  ASSERT_EQ(models(server.port(), s.key).status, 200);
  redis.stop();
  test::HttpResponse r;
  for (int i = 0; i < 50; ++i) {
    r = models(server.port(), s.key);
    if (r.status == 503) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(json::parse(r.body).at("error").at("code"), "rate_limiter_unavailable");
  EXPECT_EQ(r.header("retry-after"), "1");
  redis.start();
  bool back = false;
  for (int i = 0; i < 100 && !back; ++i) {
    back = models(server.port(), s.key).status == 200;
    if (!back) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(back);
}

TEST(RateLimitRedisDown, FailOpenAdmitsWithinTheLocalLimit) {
  TenantWithKey s;
  test::PrivateRedis redis;
  test::ServerProcess server(s.config({{"redis", {{"port", std::to_string(redis.port())}}},
                                       {"admission", {{"fail_open", "true"}}}}));
  test::wait_clear_of_minute_boundary();
  redis.stop();
  std::this_thread::sleep_for(300ms);
  int ok = 0, limited = 0;
  for (int i = 0; i < 5; ++i) {
    auto r = models(server.port(), s.key);
    ok += r.status == 200;
    limited += r.status == 429;
  }
  EXPECT_EQ(ok, 3);
  EXPECT_EQ(limited, 2);
  auto m = test::http_request(server.port(), "GET", "/metrics");
  EXPECT_NE(m.body.find("infergate_admission_total{outcome=\"fail_open\"} 3"), std::string::npos)
      << m.body;
}

}  // namespace
}  // namespace infergate
