#include "infergate/gateway/inference_api.h"

#include <boost/json/object.hpp>

#include <cmath>

#include "infergate/gateway/admin_api.h"

namespace infergate::gateway {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

// OpenAI writes these as durations: "1s", "6m0s", "0.5s".
std::string duration_text(std::int64_t ms) {
  if (ms < 0) ms = 0;
  const std::int64_t minutes = ms / 60000;
  const std::int64_t rest = ms % 60000;
  std::string secs = std::to_string(rest / 1000);
  if (rest % 1000 != 0) {
    char frac[8];
    std::snprintf(frac, sizeof frac, ".%03lld", static_cast<long long>(rest % 1000));
    secs += frac;
    while (secs.back() == '0') secs.pop_back();
  }
  secs += 's';
  return minutes > 0 ? std::to_string(minutes) + "m" + secs : secs;
}

}  // namespace

void set_rate_limit_headers(Response& res, const RateLimitState& rate) {
  auto put = [&](const char* name, const std::optional<std::int64_t>& v) {
    if (v) res.set(name, std::to_string(*v));
  };
  put("x-ratelimit-limit-requests", rate.limit_requests);
  put("x-ratelimit-remaining-requests", rate.remaining_requests);
  put("x-ratelimit-limit-tokens", rate.limit_tokens);
  put("x-ratelimit-remaining-tokens", rate.remaining_tokens);
  res.set("x-ratelimit-reset-requests", duration_text(rate.reset_ms));
  res.set("x-ratelimit-reset-tokens", duration_text(rate.reset_ms));
}

Response admission_failure_response(const AdmissionDecision& d, const Request& req) {
  const std::int64_t retry_s = std::max<std::int64_t>(1, (d.retry_after_ms + 999) / 1000);
  Response res;
  if (d.outcome == AdmissionOutcome::redis_error) {
    res = error_response(http::status::service_unavailable,
                         "The rate limiter is unavailable, so the request was not admitted. "
                         "Retry shortly.",
                         "server_error", "rate_limiter_unavailable", std::nullopt,
                         req.version());
    res.set(http::field::retry_after, "1");
    return res;
  }
  const bool quota = d.outcome == AdmissionOutcome::quota_exceeded;
  const bool tokens = d.limit.find("tokens") != std::string::npos;
  std::string message =
      quota ? "You exceeded your " +
                  std::string(d.limit == "tokens_per_day" ? "daily" : "monthly") +
                  " token quota (" + d.limit + "). It resets in " + duration_text(d.retry_after_ms) +
                  "; ask your administrator for a higher quota."
            : "Rate limit reached for " + d.limit + ". Retry after " +
                  duration_text(d.retry_after_ms) + ".";
  res = error_response(http::status::too_many_requests, message,
                       quota ? "insufficient_quota" : (tokens ? "tokens" : "requests"),
                       quota ? "insufficient_quota" : "rate_limit_exceeded", std::nullopt,
                       req.version());
  res.set(http::field::retry_after, std::to_string(retry_s));
  set_rate_limit_headers(res, d.rate);
  return res;
}

InferenceApi::InferenceApi(Authenticator& auth, Admission& admission)
    : auth_(auth), admission_(admission) {}

asio::awaitable<std::variant<Response, AuthResult>> InferenceApi::authenticate(const Request& req) {
  const std::string authorization(req[http::field::authorization]);
  AuthResult a = co_await auth_.authenticate(authorization, "inference");
  if (!a.ok()) co_return auth_failure_response(a.outcome, req);
  co_return a;
}

asio::awaitable<std::variant<Response, AdmissionDecision>> InferenceApi::admit(const Request& req,
                                                                               const AuthResult& a,
                                                                               std::int64_t tokens) {
  const KeyRecord& rec = *a.record;
  AdmissionRequest ar;
  ar.tenant_id = *rec.principal.tenant_id;
  ar.key_id = rec.principal.key_id;
  ar.tokens = tokens;
  ar.tenant = rec.tenant_limits;
  ar.key = rec.key_limits;
  ar.periods = rec.periods;
  AdmissionDecision d = co_await admission_.admit(ar);
  if (!d.admitted() || !d.reservation) co_return admission_failure_response(d, req);
  co_return d;
}

asio::awaitable<std::variant<Response, InferenceApi::Admitted>> InferenceApi::begin(
    const Request& req, std::int64_t tokens) {
  std::variant<Response, AuthResult> authed = co_await authenticate(req);
  if (auto* refused = std::get_if<Response>(&authed)) co_return std::move(*refused);
  AuthResult a = std::get<AuthResult>(std::move(authed));
  std::variant<Response, AdmissionDecision> admitted = co_await admit(req, a, tokens);
  if (auto* refused = std::get_if<Response>(&admitted)) co_return std::move(*refused);
  co_return Admitted{std::move(a), std::get<AdmissionDecision>(std::move(admitted))};
}

void InferenceApi::add_routes(Router& router) {
  router.add(http::verb::get, "/v1/models",
             [this](Request& req, RequestContext&) -> asio::awaitable<Response> {
               std::variant<Response, Admitted> started = co_await begin(req, 0);
               if (auto* refused = std::get_if<Response>(&started)) co_return std::move(*refused);
               auto& ok = std::get<Admitted>(started);
               json::array data = lister_ ? lister_(ok.auth.principal().allowed_tiers) : json::array{};
               Response res = json_response(
                   http::status::ok, json::object{{"object", "list"}, {"data", std::move(data)}},
                   req.version());
               set_rate_limit_headers(res, ok.decision.rate);
               co_await admission_.settle(*ok.decision.reservation, 0);
               co_return res;
             });
}

}  // namespace infergate::gateway
