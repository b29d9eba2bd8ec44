#include "infergate/gateway/admission.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <thread>
#include <unordered_set>
#include <utility>

#include "infergate/infra/ids.h"
#include "infergate/infra/log.h"

namespace infergate::gateway {

namespace scripts {
std::string_view admission_lua();
std::string_view reconcile_lua();
}  // namespace scripts

namespace asio = boost::asio;

namespace {

constexpr std::size_t kMaxBatch = 64;  // admissions and settlements per script call
// How often a tenant's calls from this instance release expired reservations and renew the
// records' expiry (see lua/admission.lua): each costs a few commands a call otherwise.
constexpr std::int64_t kHousekeepingMs = 1000;
constexpr std::int64_t kSweepMax = 256;  // expired records a call handles (lua/admission.lua)
// How long a settlement nobody waits for stays queued for an admission of its tenant to carry it.
// When a call returns and only such settlements have queued meanwhile, fewer than
// kLingerSendAtOnce, they wait again instead of going at once: a busy key's requests mostly take
// reservations admitted ahead, so settlements are most of the traffic, and a call costs Redis
// about as much as a dozen settlements in it. Long enough to span a busy key's refills of
// reservations admitted ahead (48 requests apart), so its settlements mostly ride with those: at
// 3,500 requests/s, 2 ms took 0.17 script calls a request, 10 ms with groups of 48 took 0.07-0.1. A
// slot or tokens freed by a settlement reach Redis that much later (never earlier: limits hold).
constexpr std::chrono::milliseconds kSettleLinger{10};
constexpr std::size_t kLingerSendAtOnce = 32;
// Admission ahead of demand (see admission.h): demand is counted per 100 ms; a key with at least
// kPrefetchMinDemand requests in one gets about half a bucket (50 ms) of its demand admitted
// ahead, at most kPrefetchMax; one nobody took within kPrefetchMaxAgeMs is released.
constexpr std::int64_t kDemandBucketMs = 100;
constexpr std::int64_t kPrefetchMinDemand = 8;
constexpr std::size_t kPrefetchMax = 96;
constexpr std::int64_t kMaxGroupUnits = 48;  // units of one admission ahead (lua/admission.lua)
constexpr std::int64_t kPrefetchMaxAgeMs = 1000;
constexpr std::int64_t kPrefetchCooldownMs = 1000;  // after an admission ahead was refused
// An admission that failed is released at once and again after this (release_maybe_admitted).
constexpr std::chrono::seconds kLateAdmissionRelease{5};
constexpr std::int64_t kPrefetchShareOfLeft = 16;   // the pool holds at most 1/16 of what is left
constexpr std::int64_t kUnused = -1;  // the settlement of a reservation nobody used

// A queued op whose reply a callback takes (admissions ahead, releases).
class CallbackCompletion final : public infra::Completion<BatchReply> {
 public:
  using Fn = std::function<void(std::exception_ptr, const std::optional<BatchReply>&)>;
  explicit CallbackCompletion(Fn fn) : fn_(std::move(fn)) {}
  bool complete(std::exception_ptr error, std::optional<BatchReply> value) override {
    if (done_.exchange(true)) return false;
    fn_(error, value);
    return true;
  }
  bool done() const override { return done_.load(); }

 private:
  Fn fn_;
  std::atomic<bool> done_{false};
};

RateLimitState rate_of(const infra::RedisReply& admitted, std::int64_t minute_left_ms);

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::optional<std::int64_t> from_limit(std::int64_t v) {
  if (v < 0) return std::nullopt;
  return v;
}

// A tenant's quota counters for some periods, and its reservation records.
struct QuotaKeys {
  std::string day, month, res;
};

QuotaKeys quota_keys(const std::string& tenant, const QuotaPeriods& p) {
  const std::string t = Admission::tenant_prefix(tenant);
  return {t + "qd:" + p.day, t + "qm:" + p.month, t + "res"};
}

Reservation new_reservation(const AdmissionRequest& req, std::int64_t minute, bool local) {
  Reservation r;
  r.id = infra::unique_hex(12);
  r.tenant_id = req.tenant_id;
  r.key_id = req.key_id;
  r.tokens = req.tokens;
  r.minute = minute;
  r.periods = req.periods;
  r.local = local;
  r.admitted_ms = now_ms();
  return r;
}

RateLimitState rate_of(const infra::RedisReply& admitted, std::int64_t minute_left_ms) {
  const auto& e = admitted.elements;
  auto num = [&](std::size_t i) { return i < e.size() ? e[i].integer : -1; };
  RateLimitState r;
  r.reset_ms = minute_left_ms;
  r.limit_requests = from_limit(num(1));
  r.remaining_requests = from_limit(num(2));
  r.limit_tokens = from_limit(num(3));
  r.remaining_tokens = from_limit(num(4));
  return r;
}

}  // namespace

ReservationSize reservation_size(std::int64_t prompt_tokens,
                                 std::optional<std::int64_t> requested_max_tokens,
                                 std::int64_t context_length, std::int64_t default_max_tokens,
                                 const TenantLimits& limits, const KeyLimits& key_limits) {
  ReservationSize r;
  const std::int64_t room = context_length - prompt_tokens;
  if (room <= 0) {
    r.error = "The prompt has " + std::to_string(prompt_tokens) +
              " tokens, which leaves no room in the model's context of " +
              std::to_string(context_length) + " tokens. Shorten the prompt.";
    return r;
  }
  if (requested_max_tokens) {
    if (*requested_max_tokens < 1) {
      r.error = "max_tokens must be at least 1.";
      return r;
    }
    if (*requested_max_tokens > room) {
      r.error = "max_tokens is " + std::to_string(*requested_max_tokens) + ", but the prompt's " +
                std::to_string(prompt_tokens) + " tokens leave room for at most " +
                std::to_string(room) + " in the model's context of " +
                std::to_string(context_length) + ". Lower max_tokens or shorten the prompt.";
      return r;
    }
    r.max_tokens = *requested_max_tokens;
  } else {
    r.max_tokens = std::min(default_max_tokens, room);
    // A reservation above the tokens-per-minute limit could never be admitted: cap the
    // default so that an unspecified max_tokens still fits (an explicit one is the caller's).
    for (const auto& tpm : {limits.tokens_per_minute, key_limits.tokens_per_minute})
      if (tpm && *tpm > prompt_tokens) r.max_tokens = std::min(r.max_tokens, *tpm - prompt_tokens);
  }
  r.reserve = prompt_tokens + r.max_tokens;
  return r;
}

std::string Admission::tenant_prefix(const std::string& tenant_id) {
  return "ig:{t:" + tenant_id + "}:";
}

Admission::Admission(infra::RedisClient& redis, infra::AdmissionConfig cfg,
                     infra::MetricsRegistry& metrics)
    : redis_(redis), cfg_(cfg) {
  auto& f = metrics.counter("infergate_admission_total",
                            "Admission decisions by outcome (admitted, limited, quota, "
                            "redis_error, fail_open)",
                            {"outcome"});
  const char* names[] = {"admitted", "limited", "quota", "redis_error", "fail_open"};
  for (int i = 0; i < 5; ++i) outcome_counters_[i] = &f.with({names[i]});
  settle_errors_ = &metrics
                        .counter("infergate_admission_settle_errors_total",
                                 "Settlements that could not reach Redis (the reservation is "
                                 "released at its expiry instead)")
                        .with({});
  batch_sizes_ = &metrics
                      .histogram("infergate_admission_batch_size",
                                 "Admissions and settlements of one tenant sent in one Redis call "
                                 "(they queue while the tenant's previous call is in flight)",
                                 {}, {1, 2, 4, 8, 16, 32, 64})
                      .with({});
  auto& pre = metrics.counter("infergate_admission_prefetched_total",
                              "Reservations admitted ahead of demand, by what became of them (used "
                              "by a request, or released unused)",
                              {"result"});
  prefetch_used_ = &pre.with({"used"});
  prefetch_released_ = &pre.with({"released"});
}

Admission::~Admission() {
  // A timer handler holds a strong reference while it runs: wait for one running elsewhere.
  std::weak_ptr<int> watch = alive_;
  alive_.reset();
  while (!watch.expired()) std::this_thread::yield();
}

asio::awaitable<infra::RedisReply> Admission::eval(Script script,
                                                   const std::vector<std::string>& keys,
                                                   const std::vector<std::string>& args) {
  // EVALSHA of the script loaded once; on NOSCRIPT (Redis restarted or flushed) load it again.
  std::string& cached_sha = shas_[static_cast<int>(script)];
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::string sha;
    {
      std::lock_guard lock(sha_mu_);
      sha = cached_sha;
    }
    if (sha.empty()) {
      const std::string_view text = script == Script::batch ? scripts::admission_lua() : scripts::reconcile_lua();
      const std::vector<std::string> load{"SCRIPT", "LOAD", std::string(text)};
      infra::RedisReply r = co_await redis_.command(load, cfg_.redis_timeout);
      if (r.is_error()) throw std::runtime_error("SCRIPT LOAD failed: " + r.str);
      sha = r.str;
      std::lock_guard lock(sha_mu_);
      cached_sha = sha;
    }
    std::vector<std::string> cmd{"EVALSHA", sha, std::to_string(keys.size())};
    cmd.insert(cmd.end(), keys.begin(), keys.end());
    cmd.insert(cmd.end(), args.begin(), args.end());
    infra::RedisReply reply = co_await redis_.command(cmd, cfg_.redis_timeout);
    if (reply.is_error() && reply.str.rfind("NOSCRIPT", 0) == 0) {
      std::lock_guard lock(sha_mu_);
      cached_sha.clear();
      continue;
    }
    if (reply.is_error()) throw std::runtime_error("admission script failed: " + reply.str);
    co_return reply;
  }
  throw std::runtime_error("admission script could not be loaded");
}

std::size_t Admission::pending() const {
  std::lock_guard lock(queues_mu_);
  std::size_t n = 0;
  for (const auto& [tenant, q] : queues_) n += q.ops.size() + q.in_flight;
  return n + retrying_->load();
}

void Admission::after(std::chrono::milliseconds delay, const asio::any_io_executor& ex, std::function<void()> fn) {
  auto timer = std::make_shared<asio::steady_timer>(ex, delay);
  timer->async_wait([alive = std::weak_ptr<int>(alive_), timer, fn = std::move(fn)](const boost::system::error_code&) {
    const std::shared_ptr<int> keep = alive.lock();  // ~Admission waits while this runs
    if (keep) fn();
  });
}

void Admission::enqueue(const std::string& tenant_id, Op op, const asio::any_io_executor& ex, bool linger) {
  bool spawn = false, arm = false;
  {
    std::lock_guard lock(queues_mu_);
    TenantQueue& q = queues_[tenant_id];
    op.lingers = linger;
    q.ops.push_back(std::move(op));
    if (!linger) {
      spawn = !std::exchange(q.flushing, true);
    } else if (!q.flushing) {
      arm = !std::exchange(q.lingering, true);
    }
  }
  if (spawn) asio::co_spawn(ex, flush(tenant_id), asio::detached);
  if (arm) arm_linger(tenant_id, ex);
}

void Admission::arm_linger(const std::string& tenant_id, const asio::any_io_executor& ex) {
  after(kSettleLinger, ex, [this, tenant_id, ex] {
    bool go = false;
    {
      std::lock_guard lock(queues_mu_);
      const auto it = queues_.find(tenant_id);
      if (it == queues_.end()) return;
      it->second.lingering = false;
      go = !it->second.ops.empty() && !std::exchange(it->second.flushing, true);
    }
    if (go) asio::co_spawn(ex, flush(tenant_id), asio::detached);
  });
}

void Admission::enqueue_all(const std::string& tenant_id, std::vector<Op> ops, const asio::any_io_executor& ex) {
  if (ops.empty()) return;
  bool spawn = false;
  {
    std::lock_guard lock(queues_mu_);
    spawn = push_locked(tenant_id, ops);
  }
  if (spawn) asio::co_spawn(ex, flush(tenant_id), asio::detached);
}

bool Admission::push_locked(const std::string& tenant_id, std::vector<Op>& ops) {
  if (ops.empty()) return false;
  TenantQueue& q = queues_[tenant_id];
  for (Op& op : ops) q.ops.push_back(std::move(op));
  ops.clear();
  return !std::exchange(q.flushing, true);
}

std::string Admission::profile_key(const Op& op) {
  std::string k = op.key_id;
  for (const std::int64_t l : op.limits) {
    k += '|';
    k += std::to_string(l);
  }
  k += '|' + op.periods.day + '|' + op.periods.month + '|' + std::to_string(op.periods.day_end_ms) + '|' +
       std::to_string(op.periods.month_end_ms);
  return k;
}

void Admission::note_left(Pool& pool, const infra::RedisReply& admitted) {
  const auto& e = admitted.elements;
  if (e.size() < 8) return;
  pool.left[0] = e[2].integer;  // requests this minute (-1 when unlimited)
  pool.left[1] = e[4].integer;  // tokens this minute
  pool.left[2] = e[5].integer;  // slots
  pool.left[3] = e[6].integer;  // tokens today
  pool.left[4] = e[7].integer;  // tokens this month
  pool.left_known = true;
}

Admission::Op Admission::release_op(const std::string& tenant_id, const std::string& id, const asio::any_io_executor& ex,
                                    bool ahead) {
  Op op;
  op.settle = true;
  op.id = id;
  op.tokens = kUnused;
  op.done = std::make_shared<CallbackCompletion>([this, tenant_id, id, ex, ahead](std::exception_ptr error, const std::optional<BatchReply>&) {
    // The release of an admission that failed is tried twice and no more (release_maybe_admitted):
    // while Redis is down every refused request has one, and most of them were never admitted.
    if (!error || !ahead) return;
    // Retried like any settlement (until then, or should that fail too, it holds its units
    // until its expiry).
    settle_errors_->inc();
    infra::log::warn("releasing an unused reservation failed; retrying in the background",
                     {{"reservation", id}, {"tenant", tenant_id}});
    Reservation r;
    r.id = id;
    r.tenant_id = tenant_id;
    spawn_retry(ex, std::move(r), kUnused);
  });
  if (ahead) prefetch_released_->inc();
  return op;
}

void Admission::release_maybe_admitted(const std::string& tenant_id, const std::string& id,
                                       const asio::any_io_executor& ex) {
  enqueue_all(tenant_id, {release_op(tenant_id, id, ex, /*ahead=*/false)}, ex);
  after(kLateAdmissionRelease, ex, [this, tenant_id, id, ex] {
    enqueue_all(tenant_id, {release_op(tenant_id, id, ex, /*ahead=*/false)}, ex);
  });
}

std::vector<Admission::Op> Admission::take_stale(const std::string& tenant_id, TenantPools& tp, std::int64_t now,
                                                 bool all, const asio::any_io_executor& ex) {
  std::vector<Op> out;
  const std::int64_t minute = now / 60000;
  for (auto it = tp.by_profile.begin(); it != tp.by_profile.end();) {
    Pool& pool = it->second;
    for (auto r = pool.ready.begin(); r != pool.ready.end();) {
      if (all || r->minute != minute || now - r->granted_ms >= kPrefetchMaxAgeMs) {
        out.push_back(release_op(tenant_id, r->id, ex));
        r = pool.ready.erase(r);
      } else {
        ++r;
      }
    }
    // A profile nobody asked for lately (an old period, a key gone quiet) goes.
    if (pool.ready.empty() && pool.requested == 0 && now / kDemandBucketMs > pool.bucket + 1) {
      it = tp.by_profile.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

void Admission::arm_pool_timer(const std::string& tenant_id, const asio::any_io_executor& ex) {
  // Under queues_mu_. One timer per tenant while its pools hold reservations.
  TenantPools& tp = pools_[tenant_id];
  if (std::exchange(tp.timer_armed, true)) return;
  after(std::chrono::milliseconds(kPrefetchMaxAgeMs / 2), ex, [this, tenant_id, ex] {
    bool spawn = false;
    {
      std::lock_guard lock(queues_mu_);
      const auto it = pools_.find(tenant_id);
      if (it == pools_.end()) return;
      it->second.timer_armed = false;
      std::vector<Op> stale = take_stale(tenant_id, it->second, now_ms(), false, ex);
      spawn = push_locked(tenant_id, stale);
      bool holding = false;
      for (const auto& [k, pool] : it->second.by_profile) holding = holding || !pool.ready.empty() || pool.requested > 0;
      if (holding) {
        arm_pool_timer(tenant_id, ex);
      } else if (it->second.by_profile.empty()) {
        pools_.erase(it);
      }
    }
    if (spawn) asio::co_spawn(ex, flush(tenant_id), asio::detached);
  });
}

void Admission::prefetch_more(const std::string& tenant_id, const std::string& profile, Pool& pool, std::int64_t now,
                              const asio::any_io_executor& ex, std::vector<Op>& out) {
  // Under queues_mu_.
  if (prefetch_stopped_ || !pool.left_known || now < pool.cooldown_until_ms) return;
  const std::int64_t demand = std::max(pool.count, pool.prev_count);  // requests per 100 ms
  if (demand < kPrefetchMinDemand) return;
  const std::size_t target = std::min<std::size_t>(kPrefetchMax, static_cast<std::size_t>(demand / 2));
  const std::size_t have = pool.ready.size() + pool.requested;
  if (have * 2 > target) return;  // refilled when half is gone: fewer, fuller calls
  const std::int64_t tokens = std::max<std::int64_t>(1, std::max(pool.need, pool.prev_need));
  // Never more than a sixteenth of what any limit had left (requests and slots: 1 each; tokens:
  // `tokens`): near a limit every request goes to Redis itself.
  std::int64_t n = std::min<std::int64_t>(kMaxGroupUnits, static_cast<std::int64_t>(target - have));
  const std::int64_t per[5] = {1, tokens, 1, tokens, tokens};
  for (int d = 0; d < 5; ++d) {
    if (pool.left[d] >= 0) n = std::min(n, pool.left[d] / kPrefetchShareOfLeft / per[d]);
  }
  if (n < 1) return;
  // One admission of n units: one record in Redis however many requests use it.
  Op op = pool.proto;
  op.id = infra::unique_hex(12);
  op.tokens = tokens;
  op.count = n;
  op.ahead = true;
  op.done = std::make_shared<CallbackCompletion>(
      [this, tenant_id, profile, id = op.id, tokens, n, ex](std::exception_ptr error, const std::optional<BatchReply>& reply) {
        prefetch_landed(tenant_id, profile, id, tokens, n, error, reply, ex);
      });
  out.push_back(std::move(op));
  pool.requested += static_cast<std::size_t>(n);
}

namespace {
// The reservation id of unit `u` (from 1) of an admission of `count` units.
std::string unit_id(const std::string& id, std::int64_t count, std::int64_t u) {
  return count == 1 ? id : id + "#" + std::to_string(u);
}
}  // namespace

void Admission::prefetch_landed(const std::string& tenant_id, const std::string& profile, const std::string& id,
                                std::int64_t tokens, std::int64_t count, std::exception_ptr error, const std::optional<BatchReply>& reply,
                                const asio::any_io_executor& ex) {
  const bool admitted = !error && reply && !reply->reply.elements.empty() && reply->reply.elements[0].integer == 1;
  bool spawn = false;
  {
    std::lock_guard lock(queues_mu_);
    Pool* pool = nullptr;
    if (const auto t = pools_.find(tenant_id); t != pools_.end()) {
      if (const auto p = t->second.by_profile.find(profile); p != t->second.by_profile.end()) pool = &p->second;
    }
    if (pool) pool->requested -= std::min<std::size_t>(pool->requested, static_cast<std::size_t>(count));
    const std::int64_t now = now_ms();
    if (admitted && pool && !prefetch_stopped_ && now >= pool->cooldown_until_ms) {
      note_left(*pool, reply->reply);
      const RateLimitState rate = rate_of(reply->reply, reply->minute_left_ms);
      for (std::int64_t u = 1; u <= count; ++u)
        pool->ready.push_back(Prefetched{unit_id(id, count, u), tokens, reply->minute, now, rate});
      arm_pool_timer(tenant_id, ex);
    } else if (admitted || error) {
      // Not wanted any more (stopped, or a request of the tenant was refused meanwhile), or its
      // call failed after perhaps admitting it: release it (a release of what was never admitted
      // changes nothing).
      std::vector<Op> release;
      for (std::int64_t u = 1; u <= count; ++u) release.push_back(release_op(tenant_id, unit_id(id, count, u), ex));
      spawn = push_locked(tenant_id, release);
    } else if (pool) {
      pool->cooldown_until_ms = now + kPrefetchCooldownMs;  // refused: a limit is near
    }
  }
  if (spawn) asio::co_spawn(ex, flush(tenant_id), asio::detached);
}

std::optional<Admission::Prefetched> Admission::take_prefetched(const std::string& tenant_id, const Op& op,
                                                                const std::string& profile, std::int64_t now,
                                                                const asio::any_io_executor& ex, bool& spawn) {
  std::lock_guard lock(queues_mu_);
  if (prefetch_stopped_) return std::nullopt;
  std::vector<Op> out;
  TenantPools& tp = pools_[tenant_id];
  if (tp.by_profile.size() > 1) {  // profiles gone quiet (an old period, a key no longer used)
    for (auto q = tp.by_profile.begin(); q != tp.by_profile.end();) {
      const Pool& p = q->second;
      if (q->first != profile && p.ready.empty() && p.requested == 0 && now / kDemandBucketMs > p.bucket + 1)
        q = tp.by_profile.erase(q);
      else
        ++q;
    }
  }
  auto [it, fresh] = tp.by_profile.try_emplace(profile);
  Pool& pool = it->second;
  if (fresh) {
    pool.proto.key_id = op.key_id;
    std::copy(std::begin(op.limits), std::end(op.limits), std::begin(pool.proto.limits));
    pool.proto.periods = op.periods;
  }
  const std::int64_t bucket = now / kDemandBucketMs;
  if (bucket != pool.bucket) {
    const bool next = bucket == pool.bucket + 1;
    pool.prev_count = next ? pool.count : 0;
    pool.prev_need = next ? pool.need : 0;
    pool.count = 0;
    pool.need = 0;
    pool.bucket = bucket;
  }
  ++pool.count;
  pool.need = std::max(pool.need, op.tokens);
  const std::int64_t minute = now / 60000;
  std::optional<Prefetched> got;
  for (auto r = pool.ready.begin(); r != pool.ready.end();) {
    if (r->minute != minute || now - r->granted_ms >= kPrefetchMaxAgeMs) {
      out.push_back(release_op(tenant_id, r->id, ex));
      r = pool.ready.erase(r);
    } else if (!got && r->tokens >= op.tokens) {
      got = std::move(*r);
      r = pool.ready.erase(r);
    } else {
      ++r;
    }
  }
  prefetch_more(tenant_id, profile, pool, now, ex, out);
  spawn = push_locked(tenant_id, out);
  return got;
}

void Admission::release_prefetched(const asio::any_io_executor& ex) {
  std::vector<std::string> start;
  {
    std::lock_guard lock(queues_mu_);
    prefetch_stopped_ = true;  // queued admissions ahead are not sent either (flush drops them)
    const std::int64_t now = now_ms();
    for (auto& [tenant, tp] : pools_) {
      std::vector<Op> ops = take_stale(tenant, tp, now, true, ex);
      if (push_locked(tenant, ops)) start.push_back(tenant);
    }
  }
  for (const std::string& tenant : start) asio::co_spawn(ex, flush(tenant), asio::detached);
}

std::size_t Admission::prefetched() const {
  std::lock_guard lock(queues_mu_);
  std::size_t n = 0;
  for (const auto& [tenant, tp] : pools_)
    for (const auto& [k, pool] : tp.by_profile) n += pool.ready.size();
  return n;
}

asio::awaitable<BatchReply> Admission::submit(const std::string& tenant_id, const Op& op) {
  auto ex = co_await asio::this_coro::executor;
  // Named std::functions, not lambdas: await_completion takes std::function, and a conversion
  // inside the co_await expression would be a temporary (the GCC 12 rule in async_op.h).
  const std::function<void(std::shared_ptr<infra::Completion<BatchReply>>)> start =
      [this, &tenant_id, &op, &ex](std::shared_ptr<infra::Completion<BatchReply>> done) {
        Op queued = op;
        queued.done = std::move(done);
        enqueue(tenant_id, std::move(queued), ex);
      };
  const std::function<std::exception_ptr()> on_timeout = [] {
    return std::make_exception_ptr(infra::RedisTimeout("the admission call did not complete in time"));
  };
  // Queued behind a call in flight, then a call of its own (each up to three round trips when
  // the script must be loaded again). The call's own commands time out first; this is a backstop.
  BatchReply reply = co_await infra::await_completion<BatchReply>(cfg_.redis_timeout * 4, start, on_timeout);
  co_return reply;
}

asio::awaitable<void> Admission::flush(std::string tenant_id) {
  const std::string t = tenant_prefix(tenant_id);
  const asio::any_io_executor ex = co_await asio::this_coro::executor;
  for (bool first = true;; first = false) {
    std::vector<Op> settles, admits;
    bool housekeeping = false, linger = false;
    const std::int64_t now = now_ms();
    {
      std::lock_guard lock(queues_mu_);
      auto it = queues_.find(tenant_id);
      TenantQueue& q = it->second;
      // What queued during the last call: a few settlements nobody waits for wait for company
      // (kLingerSendAtOnce); anything else goes now.
      if (!first && !q.ops.empty() && q.ops.size() < kLingerSendAtOnce &&
          std::all_of(q.ops.begin(), q.ops.end(), [](const Op& o) { return o.lingers; })) {
        q.flushing = false;
        if (std::exchange(q.lingering, true)) co_return;  // the armed linger starts the next flush
        linger = true;
      }
      while (!linger && !q.ops.empty() && settles.size() + admits.size() < kMaxBatch) {
        Op op = std::move(q.ops.front());
        q.ops.pop_front();
        if (op.done->done()) continue;  // its caller stopped waiting: it is not sent
        if (op.ahead && prefetch_stopped_) {  // admissions ahead have stopped: not sent
          if (const auto pools = pools_.find(tenant_id); pools != pools_.end()) {
            const auto p = pools->second.by_profile.find(profile_key(op));
            if (p != pools->second.by_profile.end())
              p->second.requested -= std::min<std::size_t>(p->second.requested, static_cast<std::size_t>(op.count));
          }
          continue;
        }
        (op.settle ? settles : admits).push_back(std::move(op));
      }
      if (!linger && settles.empty() && admits.empty()) {
        if (q.ops.empty()) {
          queues_.erase(it);
          co_return;
        }
        continue;
      }
      if (!linger) {
        q.in_flight = settles.size() + admits.size();
        std::int64_t& last = housekeeping_ms_[tenant_id];
        if (now - last >= kHousekeepingMs) {
          housekeeping = true;
          last = now;
        }
      }
    }
    if (linger) {
      arm_linger(tenant_id, ex);
      co_return;
    }
    // The call's time: its minute windows, the admissions' expiry.
    const std::int64_t minute = now / 60000;
    const std::int64_t minute_left = (minute + 1) * 60000 - now;
    const std::string m = std::to_string(minute);
    // Admissions with the same key, limits and periods share a profile.
    std::vector<const Op*> profiles;
    std::vector<std::size_t> profile_of;
    for (const Op& op : admits) {
      std::size_t p = 0;
      for (; p < profiles.size(); ++p) {
        const Op& o = *profiles[p];
        if (o.key_id == op.key_id && std::equal(std::begin(o.limits), std::end(o.limits), std::begin(op.limits)) &&
            o.periods.day == op.periods.day && o.periods.month == op.periods.month &&
            o.periods.day_end_ms == op.periods.day_end_ms && o.periods.month_end_ms == op.periods.month_end_ms)
          break;
      }
      if (p == profiles.size()) profiles.push_back(&op);
      profile_of.push_back(p + 1);
    }
    std::vector<std::string> keys{t + "res", t + "resexp"};
    std::vector<std::string> args{std::to_string(now),
                                  std::to_string(settles.size()),
                                  std::to_string(profiles.size()),
                                  std::to_string(admits.size()),
                                  std::to_string(now + cfg_.reservation_ttl.count()),
                                  std::to_string(minute_left),
                                  housekeeping ? "1" : "0"};
    args.reserve(args.size() + 2 * settles.size() + 18 * profiles.size() + 4 * admits.size());
    for (const Op& op : settles) args.push_back(op.id);
    for (const Op& op : settles) args.push_back(std::to_string(op.tokens));
    for (const Op* op : profiles) {
      for (const std::int64_t l : op->limits) args.push_back(std::to_string(l));
      args.push_back(std::to_string(std::max<std::int64_t>(0, op->periods.day_end_ms - now)));
      args.push_back(std::to_string(std::max<std::int64_t>(0, op->periods.month_end_ms - now)));
      const std::string k = t + "k:" + op->key_id + ":";
      for (std::string name : {t + "rpm:" + m, t + "tpm:" + m, t + "inflight", k + "rpm:" + m, k + "tpm:" + m,
                               k + "inflight", t + "qd:" + op->periods.day, t + "qm:" + op->periods.month}) {
        const auto at = std::find(keys.begin(), keys.end(), name);
        args.push_back(std::to_string(at - keys.begin() + 1));
        if (at == keys.end()) keys.push_back(std::move(name));
      }
    }
    for (const Op& op : admits) args.push_back(op.id);
    for (const Op& op : admits) args.push_back(std::to_string(op.tokens));
    for (const std::size_t p : profile_of) args.push_back(std::to_string(p));
    for (const Op& op : admits) args.push_back(std::to_string(op.count));
    batch_sizes_->observe(static_cast<double>(settles.size() + admits.size()));
    std::exception_ptr error;
    infra::RedisReply reply;
    try {
      reply = co_await eval(Script::batch, keys, args);
      if (reply.elements.size() != settles.size() + admits.size() + 1) {
        throw std::runtime_error("the admission script answered " + std::to_string(reply.elements.size()) +
                                 " replies for " + std::to_string(settles.size() + admits.size()) + " calls");
      }
      if (reply.elements.back().integer >= kSweepMax) {  // more expired records are due: again next call
        std::lock_guard lock(queues_mu_);
        housekeeping_ms_[tenant_id] = 0;
      }
    } catch (const std::exception&) {
      error = std::current_exception();
    }
    std::size_t i = 0;
    for (std::vector<Op>* ops : {&settles, &admits}) {
      for (Op& op : *ops) {
        if (error) {
          op.done->complete(error, std::nullopt);
        } else {
          op.done->complete(nullptr, BatchReply{std::move(reply.elements[i]), minute, minute_left});
        }
        ++i;
      }
    }
    {
      // Only now: what the replies queued (releases of admissions ahead nobody wants) is already
      // in the queue, so pending() never reads 0 in between.
      std::lock_guard lock(queues_mu_);
      queues_.at(tenant_id).in_flight = 0;
    }
  }
}

asio::awaitable<AdmissionDecision> Admission::admit(const AdmissionRequest& req) {
  Op op;
  op.id = infra::unique_hex(12);
  op.tokens = req.tokens;
  op.key_id = req.key_id;
  const std::optional<std::int64_t> limits[8] = {
      req.tenant.requests_per_minute, req.tenant.tokens_per_minute, req.tenant.max_concurrent_requests,
      req.key.requests_per_minute,    req.key.tokens_per_minute,    req.key.max_concurrent_requests,
      req.tenant.tokens_per_day,      req.tenant.tokens_per_month};
  for (int i = 0; i < 8; ++i) op.limits[i] = limits[i].value_or(-1);
  op.periods = req.periods;

  AdmissionDecision d;
  const std::string profile = cfg_.prefetch ? profile_key(op) : std::string();
  if (cfg_.prefetch) {
    const auto ex = co_await asio::this_coro::executor;
    const std::int64_t now = now_ms();
    bool spawn = false;
    std::optional<Prefetched> got = take_prefetched(req.tenant_id, op, profile, now, ex, spawn);
    if (spawn) asio::co_spawn(ex, flush(req.tenant_id), asio::detached);
    if (got) {
      d.outcome = AdmissionOutcome::admitted;
      d.rate = got->rate;
      d.rate.reset_ms = (got->minute + 1) * 60000 - now;
      d.reservation = new_reservation(req, got->minute, /*local=*/false);
      d.reservation->id = got->id;
      d.reservation->tokens = got->tokens;  // what it holds in Redis
      d.reservation->admitted_ms = got->granted_ms;
      prefetch_used_->inc();
      outcome_counters_[0]->inc();
      co_return d;
    }
  }
  std::string error;
  bool maybe_admitted = false;  // a call for op.id failed: Redis may have run it nonetheless
  try {
    BatchReply got = co_await submit(req.tenant_id, op);
    if (cfg_.prefetch && (got.reply.elements.empty() || got.reply.elements[0].integer != 1)) {
      // Refused: a limit is near. The tenant's pools stop admitting ahead for a while, and if
      // reservations admitted ahead hold what this request needed, they are released and it is
      // tried once more (the releases go first in its call). Should that try fail, the refusal
      // stands: Redis refused the request once already (fail-open must not admit it).
      const auto ex = co_await asio::this_coro::executor;
      bool released = false, spawn = false;
      {
        std::lock_guard lock(queues_mu_);
        if (const auto t = pools_.find(req.tenant_id); t != pools_.end()) {
          const std::int64_t now = now_ms();
          for (auto& [k, pool] : t->second.by_profile) {
            pool.cooldown_until_ms = now + kPrefetchCooldownMs;
            pool.left_known = false;
          }
          std::vector<Op> release = take_stale(req.tenant_id, t->second, now, true, ex);
          released = !release.empty();
          spawn = push_locked(req.tenant_id, release);
        }
      }
      if (spawn) asio::co_spawn(ex, flush(req.tenant_id), asio::detached);
      if (released) {
        try {
          BatchReply again = co_await submit(req.tenant_id, op);
          got = std::move(again);
        } catch (const std::exception& e) {
          infra::log::warn("admission retry after releasing reservations failed; the refusal stands",
                           {{"tenant", req.tenant_id}, {"error", e.what()}});
          maybe_admitted = true;
        }
      }
    }
    const auto& e = got.reply.elements;
    d.rate.reset_ms = got.minute_left_ms;
    auto num = [&](std::size_t i) { return i < e.size() ? e[i].integer : -1; };
    if (num(0) == 1) {
      d.outcome = AdmissionOutcome::admitted;
      d.rate = rate_of(got.reply, got.minute_left_ms);
      d.reservation = new_reservation(req, got.minute, /*local=*/false);
      d.reservation->id = op.id;
      if (cfg_.prefetch) {
        std::lock_guard lock(queues_mu_);
        if (const auto t = pools_.find(req.tenant_id); t != pools_.end()) {
          if (const auto p = t->second.by_profile.find(profile); p != t->second.by_profile.end())
            note_left(p->second, got.reply);
        }
      }
    } else {
      d.limit = e.size() > 1 ? e[1].str : "unknown";
      d.outcome = (d.limit == "tokens_per_day" || d.limit == "tokens_per_month")
                      ? AdmissionOutcome::quota_exceeded
                      : AdmissionOutcome::rate_limited;
      d.retry_after_ms = num(2);
      d.rate.limit_requests = from_limit(num(3));
      d.rate.remaining_requests = from_limit(num(4));
      d.rate.limit_tokens = from_limit(num(5));
      d.rate.remaining_tokens = from_limit(num(6));
    }
  } catch (const std::exception& ex) {
    error = ex.what();
    maybe_admitted = true;
  }
  if (maybe_admitted) {
    const auto ex = co_await asio::this_coro::executor;
    release_maybe_admitted(req.tenant_id, op.id, ex);
  }
  if (!error.empty()) {
    if (cfg_.fail_open) {
      d = admit_locally(req, now_ms(), error);
    } else {
      d.outcome = AdmissionOutcome::redis_error;
      d.error = error;
    }
  }
  int idx = 0;
  switch (d.outcome) {
    case AdmissionOutcome::admitted: idx = 0; break;
    case AdmissionOutcome::rate_limited: idx = 1; break;
    case AdmissionOutcome::quota_exceeded: idx = 2; break;
    case AdmissionOutcome::redis_error: idx = 3; break;
    case AdmissionOutcome::fail_open: idx = d.reservation ? 4 : 1; break;
  }
  outcome_counters_[idx]->inc();
  co_return d;
}

AdmissionDecision Admission::admit_locally(const AdmissionRequest& req, std::int64_t now,
                                           const std::string& error) {
  // This instance alone: per-minute requests and tokens and in-flight requests of the tenant.
  // Quotas cannot be checked without Redis; reconcile restores exact counters afterwards.
  AdmissionDecision d;
  d.error = error;
  const std::int64_t minute = now / 60000;
  d.rate.reset_ms = (minute + 1) * 60000 - now;
  std::lock_guard lock(local_mu_);
  auto& w = local_[req.tenant_id];
  if (w.minute != minute) {
    w.minute = minute;
    w.requests = 0;
    w.tokens = 0;
  }
  auto over = [](const std::optional<std::int64_t>& limit, std::int64_t value) {
    return limit && value > *limit;
  };
  std::string refused;
  if (over(req.tenant.requests_per_minute, w.requests + 1) ||
      over(req.key.requests_per_minute, w.requests + 1))
    refused = "requests_per_minute";
  else if (over(req.tenant.tokens_per_minute, w.tokens + req.tokens) ||
           over(req.key.tokens_per_minute, w.tokens + req.tokens))
    refused = "tokens_per_minute";
  else if (over(req.tenant.max_concurrent_requests, w.in_flight + 1))
    refused = "max_concurrent_requests";
  d.outcome = AdmissionOutcome::fail_open;
  if (!refused.empty()) {
    d.limit = refused;
    d.retry_after_ms = refused == "max_concurrent_requests" ? 1000 : d.rate.reset_ms;
    return d;
  }
  ++w.requests;
  w.tokens += req.tokens;
  ++w.in_flight;
  d.reservation = new_reservation(req, minute, /*local=*/true);
  return d;
}

void Admission::release_locally(const Reservation& r) {
  std::lock_guard lock(local_mu_);
  auto it = local_.find(r.tenant_id);
  if (it != local_.end() && it->second.in_flight > 0) --it->second.in_flight;
}

asio::awaitable<SettleResult> Admission::settle(const Reservation& r, std::int64_t used_tokens) {
  used_tokens = std::max<std::int64_t>(0, used_tokens);  // what was used: never a release
  SettleResult out;
  if (r.local) {
    release_locally(r);
    out.outcome = SettleOutcome::local;
    co_return out;
  }
  try {
    infra::RedisReply reply = co_await settle_call(r, used_tokens);
    const std::string state = reply.elements.size() > 0 ? reply.elements[0].str : "";
    out.tokens = reply.elements.size() > 1 ? reply.elements[1].integer : 0;
    if (state == "refunded") out.outcome = SettleOutcome::refunded;
    else if (state == "charged") out.outcome = SettleOutcome::charged_after_expiry;
    else if (state == "already") out.outcome = SettleOutcome::already_settled;
    else out.outcome = SettleOutcome::unknown;
  } catch (const std::exception& e) {
    settle_errors_->inc();
    infra::log::warn("settlement failed; retrying in the background",
                     {{"reservation", r.id}, {"tenant", r.tenant_id}, {"error", e.what()}});
    out.outcome = SettleOutcome::redis_error;
  }
  if (out.outcome == SettleOutcome::redis_error) {
    // Settling is idempotent, so keep trying: after the reservation's expiry the script still
    // charges what was used (the tombstone lives an hour), so the used tokens are never lost.
    auto ex = co_await asio::this_coro::executor;
    spawn_retry(ex, r, std::max<std::int64_t>(0, used_tokens));
  }
  co_return out;
}

namespace {
// A settlement nobody waits for: on failure it hands itself to the background retry.
class BackgroundSettle final : public infra::Completion<BatchReply> {
 public:
  explicit BackgroundSettle(std::function<void()> on_error) : on_error_(std::move(on_error)) {}
  bool complete(std::exception_ptr error, std::optional<BatchReply>) override {
    if (done_.exchange(true)) return false;
    if (error) on_error_();
    return true;
  }
  bool done() const override { return done_.load(); }

 private:
  std::function<void()> on_error_;
  std::atomic<bool> done_{false};
};
}  // namespace

void Admission::settle_in_background(const Reservation& r, std::int64_t used_tokens, const asio::any_io_executor& ex) {
  if (r.local) {
    release_locally(r);
    return;
  }
  Op op;
  op.settle = true;
  op.id = r.id;
  op.tokens = std::max<std::int64_t>(0, used_tokens);
  op.done = std::make_shared<BackgroundSettle>([this, r, used = op.tokens, ex] {
    settle_errors_->inc();
    infra::log::warn("settlement failed; retrying in the background", {{"reservation", r.id}, {"tenant", r.tenant_id}});
    spawn_retry(ex, r, used);
  });
  enqueue(r.tenant_id, std::move(op), ex, /*linger=*/true);
}

asio::awaitable<infra::RedisReply> Admission::settle_call(const Reservation& r, std::int64_t used_tokens) {
  Op op;
  op.settle = true;
  op.id = r.id;
  // Usage above the reservation (it should not happen) is charged too, never dropped; kUnused
  // (a reservation admitted ahead that nobody took) releases it.
  op.tokens = used_tokens == kUnused ? kUnused : std::max<std::int64_t>(0, used_tokens);
  BatchReply got = co_await submit(r.tenant_id, op);
  co_return std::move(got.reply);
}

void Admission::spawn_retry(const asio::any_io_executor& ex, Reservation r, std::int64_t used_tokens) {
  ++*retrying_;  // before the spawn, which may post it to another thread: pending() sees it at once
  asio::co_spawn(ex, retry_settle(std::move(r), used_tokens, retrying_), asio::detached);
}

asio::awaitable<void> Admission::retry_settle(Reservation r, std::int64_t used_tokens,
                                              std::shared_ptr<std::atomic<std::size_t>> count) {
  struct Done {
    std::shared_ptr<std::atomic<std::size_t>> n;
    ~Done() { --*n; }
  } done{std::move(count)};
  // A reservation never settled is released at its expiry and leaves a tombstone for an hour,
  // against which a late settlement still charges what was used: retry inside that hour. The
  // expiry is reservation_ttl after the admission, or later for a request that held it
  // (hold(): moved every third of reservation_ttl, so at least a third of it from now).
  const std::int64_t now = now_ms();
  const std::int64_t admitted = r.admitted_ms > 0 ? r.admitted_ms : now;
  const std::int64_t expiry = std::max(admitted + cfg_.reservation_ttl.count(), now + cfg_.reservation_ttl.count() / 3);
  const auto give_up =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(expiry - now) + std::chrono::minutes(55);
  auto delay = std::chrono::milliseconds(500);
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (std::chrono::steady_clock::now() < give_up) {
    timer.expires_after(delay);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    try {
      const infra::RedisReply reply = co_await settle_call(r, used_tokens);
      const std::string state = reply.elements.empty() ? std::string() : reply.elements[0].str;
      if (state == "unknown" && used_tokens != kUnused) {
        // No reservation and no tombstone: an earlier attempt that timed out was applied after
        // all (nothing lost), or, far less likely, the retry came after the tombstone's hour
        // (what was used is then missing from the quota counters; the ledger has it).
        infra::log::warn("settlement retry found no reservation (an earlier attempt was applied, or it "
                         "came too late for the quota counters)",
                         {{"reservation", r.id}, {"tenant", r.tenant_id}, {"used_tokens", used_tokens}});
      } else {
        infra::log::info("settlement retried successfully", {{"reservation", r.id}, {"result", state}});
      }
      co_return;
    } catch (const std::exception&) {
      delay = std::min(delay * 2, std::chrono::milliseconds(10000));
    }
  }
  infra::log::error("settlement abandoned; run infergate reconcile",
                    {{"reservation", r.id}, {"tenant", r.tenant_id}});
}

std::shared_ptr<void> Admission::hold(const Reservation& r, const asio::any_io_executor& ex) {
  if (r.local) return nullptr;
  std::uint64_t id = 0;
  bool arm = false;
  {
    std::lock_guard lock(held_mu_);
    id = ++next_held_;
    held_.emplace(id, Held{r.tenant_id, r.key_id, r.id.substr(0, r.id.find('#')),
                           r.admitted_ms > 0 ? r.admitted_ms : now_ms()});
    arm = !std::exchange(renewal_armed_, true);
  }
  if (arm) {
    after(std::max(cfg_.reservation_ttl / 3, std::chrono::milliseconds(10)), ex, [this, ex] { renew_due(ex); });
  }
  return std::shared_ptr<void>(nullptr, [this, id, alive = std::weak_ptr<int>(alive_)](void*) {
    if (const auto keep = alive.lock()) {
      std::lock_guard lock(held_mu_);
      held_.erase(id);
    }
  });
}

void Admission::renew_due(const asio::any_io_executor& ex) {
  const std::int64_t now = now_ms();
  const std::int64_t third = std::max<std::int64_t>(cfg_.reservation_ttl.count() / 3, 10);
  std::vector<Held> due;
  {
    std::lock_guard lock(held_mu_);
    for (auto& [id, h] : held_) {
      if (now - h.renewed_ms >= third) {
        h.renewed_ms = now;
        due.push_back(h);
      }
    }
    renewal_armed_ = !held_.empty();
    if (renewal_armed_) after(std::chrono::milliseconds(third), ex, [this, ex] { renew_due(ex); });
  }
  if (!due.empty()) asio::co_spawn(ex, push_expiries(std::move(due)), asio::detached);
}

asio::awaitable<void> Admission::push_expiries(std::vector<Held> due) {
  // Per tenant, one ZADD: only members still there (XX: a settled one is gone), and only later
  // (GT: a tombstone's hour is never cut short). And what the script would renew, were the
  // tenant calling (a quiet tenant's long request): the records' hash and zset and the
  // in-flight counters of the tenant and its keys live as long past the new expiry as the
  // script keeps them (two tombstone hours), never shorter (GT; a key without expiry is left so).
  std::sort(due.begin(), due.end(), [](const Held& a, const Held& b) { return a.tenant_id < b.tenant_id; });
  const std::int64_t ttl = cfg_.reservation_ttl.count();
  const std::string expiry = std::to_string(now_ms() + ttl);
  const std::string keep = std::to_string(ttl + 2 * 3600000);
  std::vector<std::vector<std::string>> cmds;
  for (std::size_t i = 0; i < due.size();) {
    const std::string t = tenant_prefix(due[i].tenant_id);
    std::vector<std::string> cmd{"ZADD", t + "resexp", "XX", "GT"};
    std::vector<std::string> keys{t + "res", t + "resexp", t + "inflight"};
    std::size_t j = i;
    for (; j < due.size() && due[j].tenant_id == due[i].tenant_id; ++j) {
      cmd.push_back(expiry);
      cmd.push_back(due[j].member);
      std::string k = t + "k:" + due[j].key_id + ":inflight";
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(std::move(k));
    }
    cmds.push_back(std::move(cmd));
    for (std::string& k : keys) cmds.push_back({"PEXPIRE", std::move(k), keep, "GT"});
    i = j;
  }
  try {
    const std::vector<infra::RedisReply> replies = co_await redis_.pipeline(cmds, cfg_.redis_timeout);
    for (const auto& reply : replies)
      if (reply.is_error()) throw std::runtime_error(reply.str);
  } catch (const std::exception& e) {
    // Tried again a third of reservation_ttl later: the reservations are due again by then.
    std::unordered_set<std::string> failed;
    for (const Held& d : due) failed.insert(d.tenant_id + '\n' + d.member);
    std::lock_guard lock(held_mu_);
    for (auto& [id, h] : held_)
      if (failed.count(h.tenant_id + '\n' + h.member) != 0) h.renewed_ms = 0;
    infra::log::warn("could not move the expiry of reservations held by running requests",
                     {{"reservations", static_cast<std::int64_t>(due.size())}, {"error", e.what()}});
  }
}

asio::awaitable<Admission::ReconcileResult> Admission::reconcile(const std::string& tenant_id,
                                                                 const QuotaPeriods& periods,
                                                                 std::int64_t used_day,
                                                                 std::int64_t used_month) {
  const std::int64_t now = now_ms();
  const QuotaKeys k = quota_keys(tenant_id, periods);
  const std::vector<std::string> keys{k.day, k.month, k.res};
  const std::vector<std::string> args{
      std::to_string(used_day), std::to_string(used_month),
      std::to_string(std::max<std::int64_t>(0, periods.day_end_ms - now)),
      std::to_string(std::max<std::int64_t>(0, periods.month_end_ms - now))};
  infra::RedisReply reply = co_await eval(Script::reconcile, keys, args);
  ReconcileResult r;
  const auto& e = reply.elements;
  if (e.size() == 4) {
    r.reserved_day = e[0].integer;
    r.reserved_month = e[1].integer;
    r.day = e[2].integer;
    r.month = e[3].integer;
  }
  co_return r;
}

}  // namespace infergate::gateway
