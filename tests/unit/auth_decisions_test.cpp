// Authentication decisions without a database: the failure responses, cache invalidation
// messages, and Authenticator::authenticate on cached keys (the Postgres pool points at a port
// where nothing listens, so any key that is not cached comes out as `unavailable`).
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "infergate/gateway/admin_api.h"
#include "infergate/gateway/api_key.h"
#include "infergate/gateway/auth.h"
#include "infergate/infra/config.h"
#include "infergate/infra/metrics.h"
#include "infergate/infra/pg_pool.h"
#include "support/io_thread.h"

namespace infergate::gateway {

// Readable outcomes in failure messages (found by ADL; internal linkage, this file only).
[[maybe_unused]] static void PrintTo(AuthOutcome o, std::ostream* os) {
  static const char* const names[] = {"ok",      "missing",   "malformed",
                                      "invalid_key", "expired", "revoked",
                                      "suspended", "wrong_scope", "unavailable"};
  const auto i = static_cast<std::size_t>(o);
  *os << (i < std::size(names) ? names[i] : "?");
}

namespace {

using namespace std::chrono_literals;

// ---- describe_failure / auth_failure_response ---------------------------------------------

const std::vector<AuthOutcome> kFailures = {
    AuthOutcome::missing, AuthOutcome::malformed, AuthOutcome::invalid_key,
    AuthOutcome::expired, AuthOutcome::revoked,   AuthOutcome::suspended,
    AuthOutcome::wrong_scope, AuthOutcome::unavailable};

TEST(AuthFailureTest, StatusTypeAndCodePerOutcome) {
  struct Expect {
    AuthOutcome outcome;
    int status;
    std::string type, code;
  };
  const std::vector<Expect> table = {
      {AuthOutcome::missing, 401, "invalid_request_error", "invalid_api_key"},
      {AuthOutcome::malformed, 401, "invalid_request_error", "invalid_api_key"},
      {AuthOutcome::invalid_key, 401, "invalid_request_error", "invalid_api_key"},
      {AuthOutcome::expired, 401, "invalid_request_error", "invalid_api_key"},
      {AuthOutcome::revoked, 401, "invalid_request_error", "invalid_api_key"},
      {AuthOutcome::suspended, 403, "permission_error", "tenant_suspended"},
      {AuthOutcome::wrong_scope, 403, "permission_error", "insufficient_scope"},
      {AuthOutcome::unavailable, 503, "server_error", "auth_unavailable"},
  };
  ASSERT_EQ(table.size(), kFailures.size());
  for (const auto& e : table) {
    AuthFailure f = describe_failure(e.outcome);
    EXPECT_EQ(f.status, e.status) << static_cast<int>(e.outcome);
    EXPECT_EQ(f.type, e.type) << static_cast<int>(e.outcome);
    EXPECT_EQ(f.code, e.code) << static_cast<int>(e.outcome);
    EXPECT_FALSE(f.message.empty()) << static_cast<int>(e.outcome);
  }
}

TEST(AuthFailureTest, MalformedAndInvalidKeyAreIndistinguishable) {
  // No oracle: a syntactically bad key, an unknown id and a wrong secret all read the same.
  AuthFailure malformed = describe_failure(AuthOutcome::malformed);
  AuthFailure invalid = describe_failure(AuthOutcome::invalid_key);
  EXPECT_EQ(malformed.status, invalid.status);
  EXPECT_EQ(malformed.type, invalid.type);
  EXPECT_EQ(malformed.code, invalid.code);
  EXPECT_EQ(malformed.message, invalid.message);
  // The other outcomes tell the caller something specific.
  for (AuthOutcome o : {AuthOutcome::missing, AuthOutcome::expired, AuthOutcome::revoked,
                        AuthOutcome::suspended, AuthOutcome::wrong_scope,
                        AuthOutcome::unavailable})
    EXPECT_NE(describe_failure(o).message, invalid.message) << static_cast<int>(o);
}

TEST(AuthFailureTest, OkIsNotAFailureResponse) {
  AuthFailure f = describe_failure(AuthOutcome::ok);
  EXPECT_EQ(f.status, 500);
}

TEST(AuthFailureTest, ResponseHasOpenAiErrorShape) {
  Request req{http::verb::get, "/v1/models", 11};
  for (AuthOutcome o : kFailures) {
    const AuthFailure f = describe_failure(o);
    Response res = auth_failure_response(o, req);
    EXPECT_EQ(static_cast<int>(res.result_int()), f.status) << static_cast<int>(o);
    EXPECT_EQ(res[http::field::content_type], "application/json") << static_cast<int>(o);
    const boost::json::value body = boost::json::parse(res.body());
    ASSERT_TRUE(body.is_object());
    const auto& top = body.as_object();
    ASSERT_EQ(top.size(), 1u);
    ASSERT_TRUE(top.contains("error"));
    const auto& err = top.at("error").as_object();
    EXPECT_EQ(err.size(), 4u);
    EXPECT_EQ(err.at("message").as_string(), f.message);
    EXPECT_EQ(err.at("type").as_string(), f.type);
    EXPECT_TRUE(err.at("param").is_null());
    EXPECT_EQ(err.at("code").as_string(), f.code);
  }
}

TEST(AuthFailureTest, UnauthorizedCarriesWwwAuthenticate) {
  Request req{http::verb::get, "/v1/models", 11};
  for (AuthOutcome o : {AuthOutcome::missing, AuthOutcome::malformed, AuthOutcome::invalid_key,
                        AuthOutcome::expired, AuthOutcome::revoked}) {
    Response res = auth_failure_response(o, req);
    EXPECT_EQ(res.result(), http::status::unauthorized);
    EXPECT_EQ(res[http::field::www_authenticate], "Bearer") << static_cast<int>(o);
    EXPECT_EQ(res.count(http::field::retry_after), 0u) << static_cast<int>(o);
  }
}

TEST(AuthFailureTest, ForbiddenHasNeitherChallengeNorRetry) {
  Request req{http::verb::get, "/admin/v1/plans", 11};
  for (AuthOutcome o : {AuthOutcome::suspended, AuthOutcome::wrong_scope}) {
    Response res = auth_failure_response(o, req);
    EXPECT_EQ(res.result(), http::status::forbidden);
    EXPECT_EQ(res.count(http::field::www_authenticate), 0u) << static_cast<int>(o);
    EXPECT_EQ(res.count(http::field::retry_after), 0u) << static_cast<int>(o);
  }
}

TEST(AuthFailureTest, UnavailableCarriesRetryAfter) {
  Request req{http::verb::get, "/v1/models", 11};
  Response res = auth_failure_response(AuthOutcome::unavailable, req);
  EXPECT_EQ(res.result(), http::status::service_unavailable);
  EXPECT_EQ(res.count(http::field::www_authenticate), 0u);
  ASSERT_EQ(res.count(http::field::retry_after), 1u);
  const std::string retry(res[http::field::retry_after]);
  ASSERT_FALSE(retry.empty());
  for (char c : retry) EXPECT_TRUE(c >= '0' && c <= '9') << retry;
  EXPECT_GT(std::stoi(retry), 0);
}

TEST(AuthFailureTest, ResponseKeepsRequestHttpVersion) {
  Request req{http::verb::get, "/v1/models", 10};
  Response res = auth_failure_response(AuthOutcome::missing, req);
  EXPECT_EQ(res.version(), 10u);
}

// ---- Authenticator with an unreachable Postgres -------------------------------------------

// A loopback port that nothing listens on (bound, then released).
std::uint16_t unused_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acc(
      io, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  const std::uint16_t port = acc.local_endpoint().port();
  acc.close();
  return port;
}

infra::PostgresConfig unreachable_postgres() {
  infra::PostgresConfig cfg;
  cfg.host = "127.0.0.1";
  cfg.port = unused_port();
  cfg.password = "unused";
  cfg.pool_size = 1;
  cfg.connect_timeout = 1000ms;
  cfg.query_timeout = 3000ms;
  cfg.reconnect_backoff = 500ms;
  return cfg;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr const char* kId = "0123456789abcdef";
constexpr const char* kSecret = "00112233445566778899aabbccddeeff0123456789abcdef";
constexpr const char* kOtherSecret = "ffeeddccbbaa99887766554433221100fedcba9876543210";

std::string bearer(const std::string& id, const std::string& secret) {
  return "Bearer ig_live_" + id + "_" + secret;
}

KeyRecord inference_record() {
  KeyRecord r;
  r.secret_sha256 = hash_secret(kSecret);
  r.principal.key_id = kId;
  r.principal.tenant_id = "ten_1";
  r.principal.tenant_name = "Acme";
  r.principal.scopes = {"inference"};
  r.principal.plan_id = "plan_pro";
  r.principal.allowed_tiers = {"standard", "premium"};
  r.principal.scheduling_weight = 4;
  r.tenant_status = "active";
  return r;
}

std::shared_ptr<const KeyRecord> shared(KeyRecord r) {
  return std::make_shared<const KeyRecord>(std::move(r));
}

std::shared_ptr<const KeyRecord> record_for(const std::string& key_id,
                                            std::optional<std::string> tenant_id,
                                            const std::string& plan_id) {
  KeyRecord r = inference_record();
  r.principal.key_id = key_id;
  r.principal.tenant_id = std::move(tenant_id);
  r.principal.plan_id = plan_id;
  return shared(std::move(r));
}

class AuthenticatorTest : public ::testing::Test {
 protected:
  AuthenticatorTest() : pg_(unreachable_postgres(), metrics_), auth_(pg_, config(), metrics_) {}

  static infra::AuthConfig config() {
    infra::AuthConfig c;
    c.cache_ttl = 60000ms;
    c.cache_max_entries = 1000;
    return c;
  }

  AuthResult authenticate(const std::string& header, const std::string& scope) {
    const std::string_view h = header;
    const std::string_view s = scope;
    return io_.run(auth_.authenticate(h, s));
  }

  std::uint64_t outcome_count(const std::string& outcome) {
    return metrics_.counter("infergate_auth_total", "", {"outcome"}).with({outcome}).value();
  }
  std::uint64_t cache_count(const std::string& result) {
    return metrics_.counter("infergate_auth_cache_total", "", {"result"}).with({result}).value();
  }

  void fill_cache() {
    auth_.cache().put("k1", record_for("k1", "tA", "p1"));
    auth_.cache().put("k2", record_for("k2", "tA", "p2"));
    auth_.cache().put("k3", record_for("k3", "tB", "p1"));
    auth_.cache().put("admin", record_for("admin", std::nullopt, ""));
    auth_.cache().put("ghost", nullptr);
    ASSERT_EQ(auth_.cache().size(), 5u);
  }
  bool cached(const std::string& id) { return auth_.cache().get(id).has_value(); }

  infra::MetricsRegistry metrics_;
  infra::PgPool pg_;
  Authenticator auth_;
  test::IoThread io_;
};

TEST_F(AuthenticatorTest, InvalidateKey) {
  fill_cache();
  auth_.on_invalidation("key:k1");
  EXPECT_FALSE(cached("k1"));
  EXPECT_TRUE(cached("k2"));
  EXPECT_TRUE(cached("k3"));
  EXPECT_TRUE(cached("admin"));
  EXPECT_TRUE(cached("ghost"));
  auth_.on_invalidation("key:ghost");
  EXPECT_FALSE(cached("ghost"));
  EXPECT_EQ(auth_.cache().size(), 3u);
}

TEST_F(AuthenticatorTest, InvalidateUnknownKeyChangesNothing) {
  fill_cache();
  auth_.on_invalidation("key:nope");
  EXPECT_EQ(auth_.cache().size(), 5u);
}

TEST_F(AuthenticatorTest, InvalidateTenant) {
  fill_cache();
  auth_.on_invalidation("tenant:tA");
  EXPECT_FALSE(cached("k1"));
  EXPECT_FALSE(cached("k2"));
  EXPECT_TRUE(cached("k3"));
  EXPECT_TRUE(cached("admin"));
  EXPECT_TRUE(cached("ghost"));
  EXPECT_EQ(auth_.cache().size(), 3u);
}

TEST_F(AuthenticatorTest, InvalidatePlan) {
  fill_cache();
  auth_.on_invalidation("plan:p1");
  EXPECT_FALSE(cached("k1"));
  EXPECT_TRUE(cached("k2"));
  EXPECT_FALSE(cached("k3"));
  EXPECT_TRUE(cached("admin"));
  EXPECT_TRUE(cached("ghost"));
  EXPECT_EQ(auth_.cache().size(), 3u);
}

TEST_F(AuthenticatorTest, InvalidateAll) {
  fill_cache();
  auth_.on_invalidation("all");
  EXPECT_EQ(auth_.cache().size(), 0u);
}

TEST_F(AuthenticatorTest, UnknownInvalidationClearsEverything) {
  fill_cache();
  auth_.on_invalidation("weird");
  EXPECT_EQ(auth_.cache().size(), 0u);
  fill_cache();
  auth_.on_invalidation("session:s1");
  EXPECT_EQ(auth_.cache().size(), 0u);
  fill_cache();
  auth_.on_invalidation("");
  EXPECT_EQ(auth_.cache().size(), 0u);
}

TEST_F(AuthenticatorTest, MissingHeader) {
  AuthResult r = authenticate("", "inference");
  EXPECT_EQ(r.outcome, AuthOutcome::missing);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.record, nullptr);
  EXPECT_EQ(outcome_count("missing"), 1u);
}

TEST_F(AuthenticatorTest, MalformedHeaders) {
  auth_.cache().put(kId, shared(inference_record()));
  const std::string good_token = std::string("ig_live_") + kId + "_" + kSecret;
  for (const std::string& header :
       {std::string("Basic xxx"), std::string("Basic ") + good_token, std::string("Bearer garbage"),
        std::string("Bearer"), std::string("Bearer "), std::string("Bearer  "), good_token,
        std::string("Token ") + good_token, std::string("Bearer ") + good_token + " extra",
        std::string("Bearer ig_test_") + kId + "_" + kSecret,
        std::string("Bearer ig_live_") + kId + "_" + std::string(kSecret).substr(1)}) {
    AuthResult r = authenticate(header, "inference");
    EXPECT_EQ(r.outcome, AuthOutcome::malformed) << "'" << header << "'";
    EXPECT_EQ(r.record, nullptr) << "'" << header << "'";
  }
  // None of these reached the cache or the database.
  EXPECT_EQ(cache_count("hit"), 0u);
  EXPECT_EQ(cache_count("miss"), 0u);
}

TEST_F(AuthenticatorTest, CachedKeyWithRightSecretIsOk) {
  auto rec = shared(inference_record());
  auth_.cache().put(kId, rec);
  AuthResult r = authenticate(bearer(kId, kSecret), "inference");
  ASSERT_EQ(r.outcome, AuthOutcome::ok);
  ASSERT_TRUE(r.ok());
  ASSERT_NE(r.record, nullptr);
  EXPECT_EQ(r.record.get(), rec.get());
  const Principal& p = r.principal();
  EXPECT_EQ(p.key_id, kId);
  EXPECT_EQ(p.tenant_id, std::optional<std::string>("ten_1"));
  EXPECT_EQ(p.tenant_name, "Acme");
  EXPECT_EQ(p.scopes, (std::vector<std::string>{"inference"}));
  EXPECT_EQ(p.plan_id, "plan_pro");
  EXPECT_EQ(p.allowed_tiers, (std::vector<std::string>{"standard", "premium"}));
  EXPECT_EQ(p.scheduling_weight, 4);
  EXPECT_TRUE(p.has_scope("inference"));
  EXPECT_FALSE(p.has_scope("admin"));
  EXPECT_EQ(cache_count("hit"), 1u);
  EXPECT_EQ(cache_count("miss"), 0u);
  EXPECT_EQ(outcome_count("ok"), 1u);
}

TEST_F(AuthenticatorTest, LowercaseBearerAndSurroundingSpacesAccepted) {
  auth_.cache().put(kId, shared(inference_record()));
  const std::string token = std::string("ig_live_") + kId + "_" + kSecret;
  for (const std::string& header : {"bearer " + token, "Bearer  " + token, "Bearer " + token + "  "}) {
    AuthResult r = authenticate(header, "inference");
    EXPECT_EQ(r.outcome, AuthOutcome::ok) << "'" << header << "'";
  }
}

// The auth-scheme is case-insensitive (RFC 9110 §11.1): "BEARER" and "BeArEr" are "Bearer".
TEST_F(AuthenticatorTest, BearerSchemeIsCaseInsensitive) {
  auth_.cache().put(kId, shared(inference_record()));
  const std::string token = std::string("ig_live_") + kId + "_" + kSecret;
  for (const std::string& header : {"BEARER " + token, "BeArEr " + token}) {
    AuthResult r = authenticate(header, "inference");
    EXPECT_EQ(r.outcome, AuthOutcome::ok) << "'" << header << "'";
  }
}

TEST_F(AuthenticatorTest, WrongSecretIsInvalidKey) {
  auth_.cache().put(kId, shared(inference_record()));
  AuthResult r = authenticate(bearer(kId, kOtherSecret), "inference");
  EXPECT_EQ(r.outcome, AuthOutcome::invalid_key);
  EXPECT_EQ(r.record, nullptr);
  EXPECT_EQ(outcome_count("invalid_key"), 1u);
}

TEST_F(AuthenticatorTest, WrongSecretBeatsEveryOtherState) {
  // A wrong secret must not reveal that the key is revoked, expired, suspended or scoped.
  KeyRecord rec = inference_record();
  rec.revoked_at_ms = now_ms() - 1000;
  rec.expires_at_ms = now_ms() - 1000;
  rec.tenant_status = "suspended";
  auth_.cache().put(kId, shared(std::move(rec)));
  AuthResult r = authenticate(bearer(kId, kOtherSecret), "admin");
  EXPECT_EQ(r.outcome, AuthOutcome::invalid_key);
}

TEST_F(AuthenticatorTest, CachedAbsentIdIsInvalidKey) {
  auth_.cache().put(kId, nullptr);
  AuthResult r = authenticate(bearer(kId, kSecret), "inference");
  EXPECT_EQ(r.outcome, AuthOutcome::invalid_key);
  EXPECT_EQ(r.record, nullptr);
  EXPECT_EQ(cache_count("hit"), 1u);
  EXPECT_EQ(cache_count("miss"), 0u);
}

TEST_F(AuthenticatorTest, RevokedKey) {
  KeyRecord rec = inference_record();
  rec.revoked_at_ms = now_ms() - 60000;
  auth_.cache().put(kId, shared(std::move(rec)));
  AuthResult r = authenticate(bearer(kId, kSecret), "inference");
  EXPECT_EQ(r.outcome, AuthOutcome::revoked);
  EXPECT_EQ(r.record, nullptr);
}

// Revocation is immediate (revoked_at = the database's now()): a host whose clock runs behind
// the database's must not read it as "revoked later" and let the key through meanwhile.
TEST_F(AuthenticatorTest, ARevokedKeyIsRevokedWhateverThisHostsClockSays) {
  KeyRecord rec = inference_record();
  rec.revoked_at_ms = now_ms() + 60000;
  auth_.cache().put(kId, shared(std::move(rec)));
  EXPECT_EQ(authenticate(bearer(kId, kSecret), "inference").outcome, AuthOutcome::revoked);
}

// An inference key acts for a tenant; a key with the inference scope and no tenant (the API
// never makes one; direct SQL could) is refused rather than run with no tenant to meter.
TEST_F(AuthenticatorTest, AnInferenceKeyWithoutATenantIsRefused) {
  KeyRecord rec = inference_record();
  rec.principal.tenant_id.reset();
  rec.principal.scopes = {"admin", "inference"};
  auth_.cache().put(kId, shared(std::move(rec)));
  EXPECT_EQ(authenticate(bearer(kId, kSecret), "inference").outcome, AuthOutcome::wrong_scope);
  EXPECT_EQ(authenticate(bearer(kId, kSecret), "admin").outcome, AuthOutcome::ok);
}

TEST_F(AuthenticatorTest, ExpiredKey) {
  KeyRecord rec = inference_record();
  rec.expires_at_ms = now_ms() - 60000;
  auth_.cache().put(kId, shared(std::move(rec)));
  AuthResult r = authenticate(bearer(kId, kSecret), "inference");
  EXPECT_EQ(r.outcome, AuthOutcome::expired);
  EXPECT_EQ(r.record, nullptr);
}

TEST_F(AuthenticatorTest, KeyExpiringInTheFutureIsOk) {
  KeyRecord rec = inference_record();
  rec.expires_at_ms = now_ms() + 3600 * 1000;
  auth_.cache().put(kId, shared(std::move(rec)));
  AuthResult r = authenticate(bearer(kId, kSecret), "inference");
  EXPECT_EQ(r.outcome, AuthOutcome::ok);
}

TEST_F(AuthenticatorTest, InferenceKeyOnAdminScopeIsWrongScope) {
  auth_.cache().put(kId, shared(inference_record()));
  AuthResult r = authenticate(bearer(kId, kSecret), "admin");
  EXPECT_EQ(r.outcome, AuthOutcome::wrong_scope);
  EXPECT_EQ(r.record, nullptr);
}

TEST_F(AuthenticatorTest, AdminKeyWithoutTenant) {
  KeyRecord rec = inference_record();
  rec.principal.tenant_id = std::nullopt;
  rec.principal.tenant_name = "";
  rec.principal.plan_id = "";
  rec.principal.scopes = {"admin"};
  auth_.cache().put(kId, shared(std::move(rec)));
  AuthResult admin = authenticate(bearer(kId, kSecret), "admin");
  ASSERT_EQ(admin.outcome, AuthOutcome::ok);
  EXPECT_FALSE(admin.principal().tenant_id.has_value());
  AuthResult inference = authenticate(bearer(kId, kSecret), "inference");
  EXPECT_EQ(inference.outcome, AuthOutcome::wrong_scope);
}

TEST_F(AuthenticatorTest, SuspendedTenant) {
  KeyRecord rec = inference_record();
  rec.tenant_status = "suspended";
  auth_.cache().put(kId, shared(std::move(rec)));
  AuthResult r = authenticate(bearer(kId, kSecret), "inference");
  EXPECT_EQ(r.outcome, AuthOutcome::suspended);
  EXPECT_EQ(r.record, nullptr);
}

TEST_F(AuthenticatorTest, UncachedKeyWithPostgresDownIsUnavailable) {
  const auto t0 = std::chrono::steady_clock::now();
  AuthResult r = authenticate(bearer(kId, kSecret), "inference");
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.outcome, AuthOutcome::unavailable);
  EXPECT_EQ(r.record, nullptr);
  // Connection refused fails fast, well before the 3 s query timeout.
  EXPECT_LT(elapsed, 2000ms);
  // The failure is not cached as "no such key": the next attempt asks Postgres again.
  EXPECT_EQ(auth_.cache().size(), 0u);
  EXPECT_EQ(cache_count("miss"), 1u);
  AuthResult again = authenticate(bearer(kId, kSecret), "inference");
  EXPECT_EQ(again.outcome, AuthOutcome::unavailable);
  EXPECT_EQ(cache_count("miss"), 2u);
  EXPECT_EQ(outcome_count("unavailable"), 2u);
}

TEST_F(AuthenticatorTest, InvalidatedKeyIsReadAgain) {
  auth_.cache().put(kId, shared(inference_record()));
  EXPECT_EQ(authenticate(bearer(kId, kSecret), "inference").outcome, AuthOutcome::ok);
  const std::string message = std::string("key:") + kId;
  auth_.on_invalidation(message);
  // No longer cached, so it goes to Postgres, which is down.
  EXPECT_EQ(authenticate(bearer(kId, kSecret), "inference").outcome, AuthOutcome::unavailable);
}

}  // namespace
}  // namespace infergate::gateway
