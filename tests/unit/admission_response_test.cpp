// The HTTP face of admission decisions: 429 bodies and headers, 503 when the limiter is down.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "infergate/gateway/inference_api.h"

namespace infergate::gateway {
namespace {

namespace json = boost::json;

Request get() { return Request{http::verb::get, "/v1/models", 11}; }

TEST(AdmissionResponse, RateLimitedIs429WithRetryAfterAndHeaders) {
  AdmissionDecision d;
  d.outcome = AdmissionOutcome::rate_limited;
  d.limit = "tokens_per_minute";
  d.retry_after_ms = 12345;
  d.rate.limit_requests = 100;
  d.rate.remaining_requests = 7;
  d.rate.limit_tokens = 5000;
  d.rate.remaining_tokens = 0;
  d.rate.reset_ms = 12345;
  Response r = admission_failure_response(d, get());
  EXPECT_EQ(r.result(), http::status::too_many_requests);
  EXPECT_EQ(std::string(r[http::field::retry_after]), "13");  // rounded up
  EXPECT_EQ(std::string(r["x-ratelimit-limit-requests"]), "100");
  EXPECT_EQ(std::string(r["x-ratelimit-remaining-requests"]), "7");
  EXPECT_EQ(std::string(r["x-ratelimit-limit-tokens"]), "5000");
  EXPECT_EQ(std::string(r["x-ratelimit-remaining-tokens"]), "0");
  EXPECT_EQ(std::string(r["x-ratelimit-reset-tokens"]), "12.345s");
  auto body = json::parse(r.body());
  EXPECT_EQ(body, json::parse(R"({"error":{"message":"Rate limit reached for tokens_per_minute. Retry after 12.345s.","type":"tokens","param":null,"code":"rate_limit_exceeded"}})"));
}

TEST(AdmissionResponse, QuotaIs429InsufficientQuota) {
  AdmissionDecision d;
  d.outcome = AdmissionOutcome::quota_exceeded;
  d.limit = "tokens_per_month";
  d.retry_after_ms = 3 * 60000 + 30000;
  Response r = admission_failure_response(d, get());
  EXPECT_EQ(r.result(), http::status::too_many_requests);
  EXPECT_EQ(std::string(r[http::field::retry_after]), "210");
  auto err = json::parse(r.body()).at("error");
  EXPECT_EQ(err.at("code"), "insufficient_quota");
  EXPECT_EQ(err.at("type"), "insufficient_quota");
  EXPECT_EQ(err.at("message"),
            "You exceeded your monthly token quota (tokens_per_month). It resets in 3m30s; ask "
            "your administrator for a higher quota.");
  // Unlimited dimensions have no limit/remaining headers.
  EXPECT_EQ(r.find("x-ratelimit-limit-requests"), r.end());
}

TEST(AdmissionResponse, LimiterDownIs503) {
  AdmissionDecision d;
  d.outcome = AdmissionOutcome::redis_error;
  d.error = "redis unavailable";
  Response r = admission_failure_response(d, get());
  EXPECT_EQ(r.result(), http::status::service_unavailable);
  EXPECT_EQ(std::string(r[http::field::retry_after]), "1");
  EXPECT_EQ(json::parse(r.body()).at("error").at("code"), "rate_limiter_unavailable");
}

TEST(AdmissionResponse, ResetDurationsInOpenAiStyle) {
  Response r;
  RateLimitState s;
  for (auto [ms, text] : std::vector<std::pair<std::int64_t, std::string>>{
           {0, "0s"}, {1000, "1s"}, {500, "0.5s"}, {59999, "59.999s"}, {60000, "1m0s"},
           {360000, "6m0s"}, {61500, "1m1.5s"}}) {
    s.reset_ms = ms;
    set_rate_limit_headers(r, s);
    EXPECT_EQ(std::string(r["x-ratelimit-reset-requests"]), text) << ms;
  }
}

}  // namespace
}  // namespace infergate::gateway

namespace infergate::gateway {
namespace {

TEST(ReservationSize, DefaultIsBoundedByContextAndTokensPerMinute) {
  TenantLimits none;
  auto r = reservation_size(100, std::nullopt, 4096, 1024, none);
  EXPECT_EQ(r.max_tokens, 1024);
  EXPECT_EQ(r.reserve, 1124);
  EXPECT_TRUE(r.error.empty());
  r = reservation_size(3500, std::nullopt, 4096, 1024, none);  // only 596 left in the context
  EXPECT_EQ(r.max_tokens, 596);
  EXPECT_EQ(r.reserve, 4096);
  TenantLimits tpm;
  tpm.tokens_per_minute = 600;
  r = reservation_size(100, std::nullopt, 4096, 1024, tpm);  // 100 + 500 fits the minute
  EXPECT_EQ(r.max_tokens, 500);
  EXPECT_EQ(r.reserve, 600);
  KeyLimits key_tpm;
  key_tpm.tokens_per_minute = 300;
  r = reservation_size(100, std::nullopt, 4096, 1024, tpm, key_tpm);  // the key's is tighter
  EXPECT_EQ(r.max_tokens, 200);
}

TEST(ReservationSize, ExplicitMaxTokensIsKeptOrRefusedWithCounts) {
  TenantLimits tpm;
  tpm.tokens_per_minute = 10;  // an explicit value is not capped: admission refuses it instead
  auto r = reservation_size(100, 2000, 4096, 1024, tpm);
  EXPECT_EQ(r.max_tokens, 2000);
  EXPECT_EQ(r.reserve, 2100);
  r = reservation_size(100, 4000, 4096, 1024, TenantLimits{});
  EXPECT_EQ(r.error,
            "max_tokens is 4000, but the prompt's 100 tokens leave room for at most 3996 in the "
            "model's context of 4096. Lower max_tokens or shorten the prompt.");
  r = reservation_size(4096, std::nullopt, 4096, 1024, TenantLimits{});
  EXPECT_EQ(r.error,
            "The prompt has 4096 tokens, which leaves no room in the model's context of 4096 "
            "tokens. Shorten the prompt.");
  EXPECT_FALSE(reservation_size(10, 0, 4096, 1024, TenantLimits{}).error.empty());
}

}  // namespace
}  // namespace infergate::gateway
