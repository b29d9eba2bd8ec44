#include "infergate/gateway/auth.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json/parse.hpp>
#include <pqxx/pqxx>

#include <algorithm>

#include "infergate/gateway/api_key.h"

namespace infergate::gateway {
namespace {

// Compares two equal-length byte strings in time independent of where they differ.
bool equal_constant_time(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string_view outcome_name(AuthOutcome o) {
  switch (o) {
    case AuthOutcome::ok: return "ok";
    case AuthOutcome::missing: return "missing";
    case AuthOutcome::malformed: return "malformed";
    case AuthOutcome::invalid_key: return "invalid_key";
    case AuthOutcome::expired: return "expired";
    case AuthOutcome::revoked: return "revoked";
    case AuthOutcome::suspended: return "suspended";
    case AuthOutcome::wrong_scope: return "wrong_scope";
    case AuthOutcome::unavailable: return "unavailable";
  }
  return "unknown";
}

}  // namespace

bool Principal::has_scope(std::string_view scope) const {
  return std::find(scopes.begin(), scopes.end(), scope) != scopes.end();
}

std::optional<KeyRecord> load_key_record(pqxx::connection& conn, const std::string& key_id) {
  pqxx::nontransaction tx(conn);  // one statement: no BEGIN/COMMIT round trips
  auto res = tx.exec_params(
      "SELECT k.id, k.secret_sha256, k.tenant_id, coalesce(t.name, ''), "
      "coalesce(t.status, 'active'), array_to_json(k.scopes)::text, "
      // the time left before the key expires, by the database's clock (see below)
      "(extract(epoch FROM k.expires_at - now()) * 1000)::bigint, "
      "(extract(epoch FROM k.revoked_at) * 1000)::bigint, coalesce(t.plan_id, ''), "
      "coalesce(array_to_json(p.allowed_tiers)::text, '[]'), coalesce(p.scheduling_weight, 1), "
      "p.requests_per_minute, p.tokens_per_minute, p.max_concurrent_requests, p.tokens_per_day, "
      "p.tokens_per_month, coalesce(t.limit_overrides::text, '{}'), k.limit_overrides::text, "
      // the tenant's current day and month, and when each ends, in its billing time zone
      "to_char(now() AT TIME ZONE z.tz, 'YYYY-MM-DD'), to_char(now() AT TIME ZONE z.tz, 'YYYY-MM'), "
      "(extract(epoch FROM (date_trunc('day', now() AT TIME ZONE z.tz) + interval '1 day') "
      "AT TIME ZONE z.tz) * 1000)::bigint, "
      "(extract(epoch FROM (date_trunc('month', now() AT TIME ZONE z.tz) + interval '1 month') "
      "AT TIME ZONE z.tz) * 1000)::bigint "
      "FROM api_keys k LEFT JOIN tenants t ON t.id = k.tenant_id "
      "LEFT JOIN plans p ON p.id = t.plan_id "
      "CROSS JOIN LATERAL (SELECT coalesce(t.billing_timezone, 'UTC') AS tz) z WHERE k.id = $1",
      key_id);
  if (res.empty()) return std::nullopt;
  const auto& r = res[0];
  KeyRecord rec;
  rec.secret_sha256 = pqxx::binarystring(r[1]).str();
  auto& p = rec.principal;
  p.key_id = r[0].as<std::string>();
  if (!r[2].is_null()) p.tenant_id = r[2].as<std::string>();
  p.tenant_name = r[3].as<std::string>();
  rec.tenant_status = r[4].as<std::string>();
  const boost::json::value scopes = boost::json::parse(r[5].as<std::string>());
  for (const auto& s : scopes.as_array()) p.scopes.emplace_back(s.as_string());
  // Expiry on this host's clock: what is left of it by the database's clock (which set it, with
  // now() + grace on a rotation) from now on this one, so a host whose clock runs behind the
  // database's does not honour a key past its end.
  if (!r[6].is_null()) rec.expires_at_ms = now_ms() + r[6].as<std::int64_t>();
  if (!r[7].is_null()) rec.revoked_at_ms = r[7].as<std::int64_t>();
  p.plan_id = r[8].as<std::string>();
  const boost::json::value tiers = boost::json::parse(r[9].as<std::string>());
  for (const auto& s : tiers.as_array()) p.allowed_tiers.emplace_back(s.as_string());
  p.scheduling_weight = r[10].as<int>();

  auto plan_limit = [&](int col) -> std::optional<std::int64_t> {
    if (r[col].is_null()) return std::nullopt;
    return r[col].as<std::int64_t>();
  };
  const boost::json::value tenant_overrides = boost::json::parse(r[16].as<std::string>());
  const boost::json::value key_overrides = boost::json::parse(r[17].as<std::string>());
  // An override present in the object wins (null = unlimited); an absent one inherits.
  auto pick = [](const boost::json::value& overrides, const char* name,
                 std::optional<std::int64_t> inherited) -> std::optional<std::int64_t> {
    const auto& o = overrides.as_object();
    auto it = o.find(name);
    if (it == o.end()) return inherited;
    if (it->value().is_int64()) return it->value().as_int64();
    return std::nullopt;
  };
  auto& tl = rec.tenant_limits;
  tl.requests_per_minute = pick(tenant_overrides, "requests_per_minute", plan_limit(11));
  tl.tokens_per_minute = pick(tenant_overrides, "tokens_per_minute", plan_limit(12));
  tl.max_concurrent_requests = pick(tenant_overrides, "max_concurrent_requests", plan_limit(13));
  tl.tokens_per_day = pick(tenant_overrides, "tokens_per_day", plan_limit(14));
  tl.tokens_per_month = pick(tenant_overrides, "tokens_per_month", plan_limit(15));
  auto& kl = rec.key_limits;
  kl.requests_per_minute = pick(key_overrides, "requests_per_minute", std::nullopt);
  kl.tokens_per_minute = pick(key_overrides, "tokens_per_minute", std::nullopt);
  kl.max_concurrent_requests = pick(key_overrides, "max_concurrent_requests", std::nullopt);
  rec.periods.day = r[18].as<std::string>();
  rec.periods.month = r[19].as<std::string>();
  rec.periods.day_end_ms = r[20].as<std::int64_t>();
  rec.periods.month_end_ms = r[21].as<std::int64_t>();
  return rec;
}

// ---- KeyCache ----------------------------------------------------------------------------

KeyCache::KeyCache(infra::Millis ttl, std::size_t max_entries) : ttl_(ttl), max_(max_entries) {}

std::optional<std::shared_ptr<const KeyRecord>> KeyCache::get(const std::string& key_id,
                                                                bool* refresh_due) {
  if (refresh_due) *refresh_due = false;
  std::lock_guard lock(mu_);
  auto it = map_.find(key_id);
  if (it == map_.end()) return std::nullopt;
  const auto now = std::chrono::steady_clock::now();
  const auto age = now - it->second.loaded;
  if (age >= ttl_) {
    order_.erase(it->second.order);
    map_.erase(it);
    return std::nullopt;
  }
  if (refresh_due && !it->second.refreshing && age >= ttl_ / 2 && now >= it->second.retry_at) {
    it->second.refreshing = true;
    *refresh_due = true;
  }
  return it->second.record;
}

void KeyCache::refresh_failed(const std::string& key_id) {
  std::lock_guard lock(mu_);
  auto it = map_.find(key_id);
  if (it == map_.end()) return;
  it->second.refreshing = false;
  // Not at once: while Postgres is down every request would otherwise send one more read.
  it->second.retry_at = std::chrono::steady_clock::now() + ttl_ / 8;
}

void KeyCache::put(const std::string& key_id, std::shared_ptr<const KeyRecord> record,
                   std::optional<std::uint64_t> read_at_generation) {
  if (ttl_.count() == 0) return;
  std::lock_guard lock(mu_);
  auto it = map_.find(key_id);
  if (read_at_generation && *read_at_generation != generation_) {
    if (it != map_.end()) it->second.refreshing = false;
    return;
  }
  if (it != map_.end()) {
    order_.erase(it->second.order);
    map_.erase(it);
  }
  while (map_.size() >= max_ && !order_.empty()) {
    map_.erase(order_.front());
    order_.pop_front();
  }
  order_.push_back(key_id);
  map_.emplace(key_id, Entry{std::move(record), std::chrono::steady_clock::now(),
                             std::prev(order_.end())});
}

std::uint64_t KeyCache::generation() const {
  std::lock_guard lock(mu_);
  return generation_;
}

void KeyCache::erase_key(const std::string& key_id) {
  std::lock_guard lock(mu_);
  ++generation_;
  auto it = map_.find(key_id);
  if (it == map_.end()) return;
  order_.erase(it->second.order);
  map_.erase(it);
}

void KeyCache::erase_where(const std::function<bool(const KeyRecord&)>& pred) {
  std::lock_guard lock(mu_);
  ++generation_;
  for (auto it = map_.begin(); it != map_.end();) {
    if (it->second.record && pred(*it->second.record)) {
      order_.erase(it->second.order);
      it = map_.erase(it);
    } else {
      ++it;
    }
  }
}

void KeyCache::erase_tenant(const std::string& tenant_id) {
  erase_where([&](const KeyRecord& r) { return r.principal.tenant_id == tenant_id; });
}

void KeyCache::erase_plan(const std::string& plan_id) {
  erase_where([&](const KeyRecord& r) { return r.principal.plan_id == plan_id; });
}

void KeyCache::clear() {
  std::lock_guard lock(mu_);
  ++generation_;
  map_.clear();
  order_.clear();
}

std::size_t KeyCache::size() const {
  std::lock_guard lock(mu_);
  return map_.size();
}

// ---- Authenticator -----------------------------------------------------------------------

AuthFailure describe_failure(AuthOutcome outcome) {
  const std::string bad_key =
      "Incorrect API key provided. Send 'Authorization: Bearer <key>' with a key issued by your "
      "administrator.";
  switch (outcome) {
    case AuthOutcome::missing:
      return {401, "invalid_request_error", "invalid_api_key",
              "No API key provided. Send 'Authorization: Bearer <key>'."};
    case AuthOutcome::malformed:
    case AuthOutcome::invalid_key:
      return {401, "invalid_request_error", "invalid_api_key", bad_key};
    case AuthOutcome::expired:
      return {401, "invalid_request_error", "invalid_api_key",
              "This API key has expired. Ask your administrator for a new one."};
    case AuthOutcome::revoked:
      return {401, "invalid_request_error", "invalid_api_key",
              "This API key has been revoked. Ask your administrator for a new one."};
    case AuthOutcome::suspended:
      return {403, "permission_error", "tenant_suspended",
              "Your organization's access is suspended. Contact your administrator."};
    case AuthOutcome::wrong_scope:
      return {403, "permission_error", "insufficient_scope",
              "This API key is not allowed to use this endpoint (wrong scope: inference keys "
              "call /v1, admin keys call /admin)."};
    case AuthOutcome::unavailable:
      return {503, "server_error", "auth_unavailable",
              "The key store is temporarily unreachable. Retry shortly."};
    case AuthOutcome::ok:
      break;
  }
  return {500, "server_error", "internal_error", "unexpected authentication state"};
}

Authenticator::Authenticator(infra::PgPool& pg, const infra::AuthConfig& cfg,
                             infra::MetricsRegistry& metrics)
    : pg_(pg),
      cache_(std::make_shared<KeyCache>(cfg.cache_ttl, cfg.cache_max_entries)),
      dummy_hash_(hash_secret("dummy")),
      metrics_(metrics) {
  auto& outcomes = metrics.counter("infergate_auth_total", "Authentication attempts by outcome",
                                   {"outcome"});
  for (int o = 0; o <= static_cast<int>(AuthOutcome::unavailable); ++o)
    outcome_counters_[static_cast<std::size_t>(o)] =
        &outcomes.with({std::string(outcome_name(static_cast<AuthOutcome>(o)))});
  auto& cache = metrics.counter("infergate_auth_cache_total", "Key cache lookups", {"result"});
  hits_ = &cache.with({"hit"});
  misses_ = &cache.with({"miss"});
  refreshes_ = &cache.with({"refresh"});
  cache_gauge_ = metrics.gauge_callback("infergate_auth_cache_entries", "Keys in the in-memory cache",
                         [this] { return static_cast<double>(cache_->size()); });
}

Authenticator::~Authenticator() {
  metrics_.remove_callback("infergate_auth_cache_entries", cache_gauge_);
}

AuthResult Authenticator::decide(const std::shared_ptr<const KeyRecord>& rec,
                                 std::string_view secret, std::string_view scope) {
  // Hash and compare even for an unknown id, so both failures cost the same.
  const std::string presented = hash_secret(secret);
  const bool match = equal_constant_time(presented, rec ? rec->secret_sha256 : dummy_hash_);
  AuthResult r;
  if (!rec || !match) {
    r.outcome = AuthOutcome::invalid_key;
  } else if (rec->revoked_at_ms) {  // revoked at once, whatever this host's clock says of the time
    r.outcome = AuthOutcome::revoked;
  } else if (rec->expires_at_ms && *rec->expires_at_ms <= now_ms()) {
    r.outcome = AuthOutcome::expired;
  } else if (!rec->principal.has_scope(scope) || (scope == "inference" && !rec->principal.tenant_id)) {
    // An inference key acts for a tenant: one without (only direct SQL could make it) has none.
    r.outcome = AuthOutcome::wrong_scope;
  } else if (rec->tenant_status != "active") {
    r.outcome = AuthOutcome::suspended;
  } else {
    r.outcome = AuthOutcome::ok;
    r.record = rec;
  }
  return r;
}

boost::asio::awaitable<AuthResult> Authenticator::authenticate(std::string_view authorization,
                                                               std::string_view scope) {
  AuthResult result;
  std::optional<ParsedApiKey> key;
  if (authorization.empty()) {
    result.outcome = AuthOutcome::missing;
  } else {
    // The scheme is case-insensitive (RFC 9110 §11.1).
    std::string_view token;
    auto lower = [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); };
    if (authorization.size() > 7 &&
        std::equal(authorization.begin(), authorization.begin() + 6, "bearer",
                   [&](char a, char b) { return lower(a) == b; }) &&
        (authorization[6] == ' ' || authorization[6] == '\t'))
      token = authorization.substr(7);
    auto blank = [](char c) { return c == ' ' || c == '\t'; };
    while (!token.empty() && blank(token.front())) token.remove_prefix(1);
    while (!token.empty() && blank(token.back())) token.remove_suffix(1);
    key = parse_api_key(token);
    if (!key) result.outcome = AuthOutcome::malformed;
  }
  if (key) {
    std::shared_ptr<const KeyRecord> rec;
    bool available = true;
    bool refresh_due = false;
    auto cached = cache_->get(key->id, &refresh_due);
    // A record read before midnight in the tenant's time zone names yesterday: read it again
    // (here and now; what this request stores replaces the entry, a claimed reload with it).
    if (cached && *cached && (*cached)->periods.day_end_ms != 0 &&
        (*cached)->periods.day_end_ms <= now_ms())
      cached.reset();
    if (cached && refresh_due) {
      const auto ex = co_await boost::asio::this_coro::executor;
      refresh_in_background(ex, key->id);
    }
    if (cached) {
      hits_->inc();
      rec = *cached;
    } else {
      misses_->inc();
      try {
        rec = co_await read_and_cache(pg_, cache_, key->id);
      } catch (const std::exception&) {
        available = false;
      }
    }
    if (available) {
      result = decide(rec, key->secret, scope);
    } else {
      result.outcome = AuthOutcome::unavailable;
    }
  }
  outcome_counters_[static_cast<std::size_t>(result.outcome)]->inc();
  co_return result;
}

void Authenticator::refresh_in_background(const boost::asio::any_io_executor& ex,
                                          const std::string& key_id) {
  refreshes_->inc();
  boost::asio::co_spawn(ex, reload(pg_, cache_, key_id), boost::asio::detached);
}

// Reads a key and caches what was read (null: no such key). An invalidation that arrives while
// it reads wins over what it read. Throws what the pool throws.
boost::asio::awaitable<std::shared_ptr<const KeyRecord>> Authenticator::read_and_cache(
    infra::PgPool& pg, const std::shared_ptr<KeyCache>& cache, const std::string& id) {
  const std::uint64_t generation = cache->generation();
  const auto load = [id](pqxx::connection& c) { return load_key_record(c, id); };
  std::optional<KeyRecord> loaded = co_await pg.run(load);
  std::shared_ptr<const KeyRecord> rec;
  if (loaded) rec = std::make_shared<const KeyRecord>(std::move(*loaded));
  cache->put(id, rec, generation);
  co_return rec;
}

// Only what outlives the Authenticator: the cache (shared) and the pool (stopped after the
// servers' event loops, whose leftover frames are destroyed with them, never resumed).
boost::asio::awaitable<void> Authenticator::reload(infra::PgPool& pg, std::shared_ptr<KeyCache> cache,
                                                   std::string id) {
  try {
    co_await read_and_cache(pg, cache, id);
  } catch (const std::exception&) {
    cache->refresh_failed(id);  // tried again later; the entry still expires at its ttl
  }
}

void Authenticator::on_invalidation(std::string_view message) {
  auto colon = message.find(':');
  std::string_view kind = message.substr(0, colon);
  std::string id(colon == std::string_view::npos ? std::string_view() : message.substr(colon + 1));
  if (id.empty()) {
    cache_->clear();  // malformed: be safe
  } else if (kind == "key") {
    cache_->erase_key(id);
  } else if (kind == "tenant") {
    cache_->erase_tenant(id);
  } else if (kind == "plan") {
    cache_->erase_plan(id);
  } else {
    cache_->clear();  // "all", or anything this version does not know: be safe
  }
}

}  // namespace infergate::gateway
