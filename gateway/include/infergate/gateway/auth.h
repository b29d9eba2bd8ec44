// Authentication of API keys (Authorization: Bearer ig_live_<id>_<secret>). Keys are cached in
// memory for auth.cache_ttl_ms (bounded size), so the hot path does not touch Postgres for a
// cached key; changes reach every instance at once through invalidation messages on Redis
// (on_invalidation), and within the TTL when Redis is unreachable. The secret is compared by
// hash in constant time, and an unknown key id costs the same work as a wrong secret.
// Thread-safe.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <pqxx/connection>

#include <array>
#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "infergate/gateway/admission.h"
#include "infergate/infra/config.h"
#include "infergate/infra/metrics.h"
#include "infergate/infra/pg_pool.h"

namespace infergate::gateway {

// Who is calling, once authenticated.
struct Principal {
  std::string key_id;
  std::optional<std::string> tenant_id;  // none for admin keys
  std::string tenant_name;
  std::vector<std::string> scopes;
  std::string plan_id;
  std::vector<std::string> allowed_tiers;
  int scheduling_weight = 1;
  bool has_scope(std::string_view scope) const;
};

// A key as stored, with what authentication and admission decide on.
struct KeyRecord {
  std::string secret_sha256;  // 32 raw bytes
  Principal principal;
  std::string tenant_status;  // "active" | "suspended" ("active" for admin keys)
  // Unix epoch milliseconds: expiry on this host's clock (what was left of it by the database's
  // clock when loaded); a revocation counts whatever its time.
  std::optional<std::int64_t> expires_at_ms, revoked_at_ms;
  TenantLimits tenant_limits;  // the plan's, with the tenant's overrides applied
  KeyLimits key_limits;        // the key's own overrides (absent: no per-key limit)
  QuotaPeriods periods;        // current day and month in the tenant's billing time zone
};

// Reads one key with its tenant and plan; nullopt if no such id.
std::optional<KeyRecord> load_key_record(pqxx::connection& conn, const std::string& key_id);

// Keys by id, each kept at most `ttl` after it was read. A key in use is read again before that:
// the first lookup past half its ttl is told to reload it (`refresh_due`), once, while it and
// every other lookup go on using the entry, which is still within its ttl. So a busy key never
// expires under its traffic, and its requests never wait for Postgres (at 10k requests/s, a key
// that expired made every request in flight wait for its reload, a stall each ttl).
class KeyCache {
 public:
  KeyCache(infra::Millis ttl, std::size_t max_entries);
  // Outer nullopt: not cached (or stale). Inner null: cached as "no such key". When
  // `refresh_due` is given, it is set to true for the one lookup that should reload the entry
  // (past half its ttl, no reload claimed yet); that caller must then put() what it read, or
  // call refresh_failed().
  std::optional<std::shared_ptr<const KeyRecord>> get(const std::string& key_id,
                                                      bool* refresh_due = nullptr);
  // With read_at_generation, the entry is stored only if nothing was erased since that
  // generation() was taken (so a record read before an invalidation cannot be cached after it);
  // otherwise a reload claimed for it is given up, for a later lookup to claim again.
  void put(const std::string& key_id, std::shared_ptr<const KeyRecord> record,
           std::optional<std::uint64_t> read_at_generation = std::nullopt);
  // A claimed reload could not read the key: a lookup may claim it again after ttl/8.
  void refresh_failed(const std::string& key_id);
  std::uint64_t generation() const;
  void erase_key(const std::string& key_id);
  void erase_tenant(const std::string& tenant_id);
  void erase_plan(const std::string& plan_id);
  void clear();
  std::size_t size() const;

 private:
  struct Entry {
    std::shared_ptr<const KeyRecord> record;
    std::chrono::steady_clock::time_point loaded;
    std::list<std::string>::iterator order;  // position in insertion order, for eviction
    bool refreshing = false;                 // a lookup was told to reload it
    std::chrono::steady_clock::time_point retry_at{};  // after a failed reload, not before
  };
  void erase_where(const std::function<bool(const KeyRecord&)>& pred);
  infra::Millis ttl_;
  std::size_t max_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> map_;
  std::list<std::string> order_;  // oldest first
  std::uint64_t generation_ = 0;   // bumped by every erase and clear
};

enum class AuthOutcome {
  ok,
  missing,      // no Authorization header                      -> 401
  malformed,    // not "Bearer ig_live_..."                     -> 401
  invalid_key,  // unknown id or wrong secret                   -> 401
  expired,      //                                              -> 401
  revoked,      //                                              -> 401
  suspended,    // the tenant is suspended                      -> 403
  wrong_scope,  // e.g. an inference key on /admin              -> 403
  unavailable,  // the key is not cached and Postgres is down   -> 503
};

struct AuthResult {
  AuthOutcome outcome = AuthOutcome::invalid_key;
  std::shared_ptr<const KeyRecord> record;  // set when ok
  const Principal& principal() const { return record->principal; }
  bool ok() const { return outcome == AuthOutcome::ok; }
};

// The response for a failed authentication, in the OpenAI error shape.
// (Declared here, defined with the HTTP helpers, so handlers need only this header.)
struct AuthFailure {
  int status;
  std::string type, code, message;
};
AuthFailure describe_failure(AuthOutcome outcome);

// Channel and message format of cache invalidations: "key:<id>", "tenant:<id>", "plan:<id>",
// "all".
inline constexpr const char* kInvalidationChannel = "ig:invalidate";

class Authenticator {
 public:
  Authenticator(infra::PgPool& pg, const infra::AuthConfig& cfg, infra::MetricsRegistry& metrics);
  ~Authenticator();
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  // `authorization` is the header value ("" when absent); `scope` the scope the route needs.
  boost::asio::awaitable<AuthResult> authenticate(std::string_view authorization,
                                                  std::string_view scope);

  // Applies one invalidation message (see kInvalidationChannel).
  void on_invalidation(std::string_view message);
  KeyCache& cache() { return *cache_; }

 private:
  AuthResult decide(const std::shared_ptr<const KeyRecord>& rec, std::string_view secret,
                    std::string_view scope);
  // Reloads a key the cache asked to refresh, behind the request that noticed it.
  void refresh_in_background(const boost::asio::any_io_executor& ex, const std::string& key_id);
  static boost::asio::awaitable<void> reload(infra::PgPool& pg, std::shared_ptr<KeyCache> cache,
                                             std::string id);
  // By reference (no temporaries in the callers' co_await, which GCC 12 mishandles): the callers'
  // cache and id outlive the call.
  static boost::asio::awaitable<std::shared_ptr<const KeyRecord>> read_and_cache(
      infra::PgPool& pg, const std::shared_ptr<KeyCache>& cache, const std::string& id);
  infra::PgPool& pg_;
  // Shared with background reloads, which may finish after this object is gone.
  std::shared_ptr<KeyCache> cache_;
  std::string dummy_hash_;
  std::array<infra::Counter*, 9> outcome_counters_{};  // by AuthOutcome
  infra::Counter* hits_;
  infra::Counter* misses_;
  infra::Counter* refreshes_;
  infra::MetricsRegistry& metrics_;
  std::uint64_t cache_gauge_ = 0;
};

}  // namespace infergate::gateway
