// The tenant-facing /v1 API. Every request is authenticated (inference scope), admitted
// against the tenant's and key's limits (Redis, exact across instances), answered with the
// OpenAI x-ratelimit-* headers, and settled when done.
#pragma once

#include <boost/json/array.hpp>

#include <functional>
#include <variant>

#include "infergate/gateway/admission.h"
#include "infergate/gateway/auth.h"
#include "infergate/gateway/router.h"

namespace infergate::gateway {

// Sets x-ratelimit-{limit,remaining,reset}-{requests,tokens} (limit and remaining are left out
// for an unlimited dimension).
void set_rate_limit_headers(Response& res, const RateLimitState& rate);

// The response for a refused or failed admission: 429 rate_limit_exceeded /
// insufficient_quota with Retry-After, or 503 when the limiter is unreachable.
Response admission_failure_response(const AdmissionDecision& d, const Request& req);

class InferenceApi {
 public:
  InferenceApi(Authenticator& auth, Admission& admission);
  void add_routes(Router& router);

  // Authentication then admission of `tokens`. Either the response to send (refused), or the
  // caller who was admitted (settle the reservation when done).
  struct Admitted {
    AuthResult auth;
    AdmissionDecision decision;
  };
  boost::asio::awaitable<std::variant<Response, Admitted>> begin(const Request& req,
                                                                 std::int64_t tokens);
  // The two halves of begin(), for handlers that route and tokenize in between.
  boost::asio::awaitable<std::variant<Response, AuthResult>> authenticate(const Request& req);
  boost::asio::awaitable<std::variant<Response, AdmissionDecision>> admit(const Request& req,
                                                                          const AuthResult& auth,
                                                                          std::int64_t tokens);
  // GET /v1/models lists what this callback returns for the caller's allowed tiers.
  using ModelLister = std::function<boost::json::array(const std::vector<std::string>& allowed_tiers)>;
  void set_model_lister(ModelLister lister) { lister_ = std::move(lister); }

 private:
  Authenticator& auth_;
  Admission& admission_;
  ModelLister lister_;
};

}  // namespace infergate::gateway
