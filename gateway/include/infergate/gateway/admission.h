// Admission: rate limits and token quotas, exact across instances. An admission is one Redis
// round trip running a Lua script (lua/admission.lua) that checks every applicable limit of the
// tenant and the key and, only if all pass, counts the request and reserves `tokens` (prompt +
// max_tokens, an upper bound) against the tokens-per-minute windows and the day and month
// quotas. Settlement charges what was actually used and refunds the rest; a reservation never
// settled is released at its expiry. Outcomes: admitted, rate limited, out of quota, Redis error
// (fail closed) or admitted by the local limiter (fail open), each a counter in /metrics.
//
// Calls are batched per tenant: while a tenant's script call is in flight, its next admissions
// and settlements queue, and go together in the next call (settlements first, then admissions,
// each in arrival order, each seeing the effect of the ones before). A lone request goes at once;
// under load one call serves many requests, with each counter read and written once.
//
// Admission ahead of demand (admission.prefetch): when one key's requests arrive at 80/s or more,
// the tenant's calls also admit a few reservations for nobody yet (about 50 ms of its demand, at
// most 96, sized for the largest recent request), exactly as that many requests would be
// admitted, in groups of up to 48: one record in Redis whose units are used and settled one by one. A
// request that fits one takes it without waiting for Redis. Nothing is counted twice or skipped:
// a reservation admitted ahead is counted in Redis from the start, settles like any other once a
// request has used it, and one that nobody used within a second (or whose minute ended) is
// released with every unit it took, its request count included (a failed release is retried).
// The pool never holds more than a sixteenth of what any limit had left at the last admission
// (near a limit, every request goes to Redis itself). A request refused while the pool holds
// reservations of its tenant has them released and is tried once more, and the tenant's pools
// stop admitting ahead for a second. Even so a request can be turned away that a limit would
// have allowed, rarely: when reservations admitted ahead were still on their way from Redis, or
// were held by another instance (at most that sixteenth, for at most a second). Limits are never
// exceeded. Should the instance crash, the pool's reservations are released at their expiry
// like those of requests in flight.
// Thread-safe.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "infergate/infra/async_op.h"
#include "infergate/infra/config.h"
#include "infergate/infra/metrics.h"
#include "infergate/infra/redis_client.h"

namespace infergate::gateway {

// nullopt = unlimited
struct TenantLimits {
  std::optional<std::int64_t> requests_per_minute, tokens_per_minute, max_concurrent_requests,
      tokens_per_day, tokens_per_month;
};
struct KeyLimits {
  std::optional<std::int64_t> requests_per_minute, tokens_per_minute, max_concurrent_requests;
};

// The tenant's current quota periods in its billing time zone.
struct QuotaPeriods {
  std::string day;    // "2026-11-22"
  std::string month;  // "2026-11"
  std::int64_t day_end_ms = 0, month_end_ms = 0;  // Unix ms of the (exclusive) ends
};

struct AdmissionRequest {
  std::string tenant_id, key_id;
  std::int64_t tokens = 0;  // reserved: prompt tokens + max_tokens
  TenantLimits tenant;
  KeyLimits key;
  QuotaPeriods periods;
};

enum class AdmissionOutcome { admitted, rate_limited, quota_exceeded, redis_error, fail_open };

// What a later settle() needs.
struct Reservation {
  std::string id, tenant_id, key_id;
  std::int64_t tokens = 0;
  std::int64_t minute = 0;  // the admission's minute window (Unix minutes)
  QuotaPeriods periods;
  bool local = false;  // admitted by the fail-open local limiter: nothing in Redis to settle
  std::int64_t admitted_ms = 0;  // Unix ms when Redis admitted it (its expiry counts from then)
};

// For the x-ratelimit-* headers: the tighter of the tenant and key windows.
struct RateLimitState {
  std::optional<std::int64_t> limit_requests, remaining_requests;
  std::optional<std::int64_t> limit_tokens, remaining_tokens;
  std::int64_t reset_ms = 0;  // until the minute window ends
};

struct AdmissionDecision {
  AdmissionOutcome outcome = AdmissionOutcome::redis_error;
  std::string limit;  // which limit refused ("tokens_per_day", "key_requests_per_minute", ...)
  std::int64_t retry_after_ms = 0;
  RateLimitState rate;
  std::optional<Reservation> reservation;  // set when admitted (also fail-open)
  std::string error;                       // Redis problem, for redis_error / fail_open
  bool admitted() const {
    return outcome == AdmissionOutcome::admitted || outcome == AdmissionOutcome::fail_open;
  }
};

// A settled reservation's record is deleted: a repeated settle in a later call finds none and is
// `unknown` (one in the same call is `already_settled`); either way it changes nothing.
enum class SettleOutcome { refunded, charged_after_expiry, already_settled, unknown, local,
                           redis_error };
struct SettleResult {
  SettleOutcome outcome = SettleOutcome::redis_error;
  std::int64_t tokens = 0;  // refunded, or charged after expiry
};

// How many tokens a request reserves: prompt + max_tokens, always an upper bound of what it can
// use. An absent max_tokens becomes min(default, room left in the model's context, the
// tenant's and the key's tokens-per-minute limits). A prompt that leaves no room, or a
// max_tokens beyond the room, is an error whose message gives the token counts.
struct ReservationSize {
  std::int64_t max_tokens = 0;  // what the request may generate
  std::int64_t reserve = 0;     // prompt_tokens + max_tokens
  std::string error;            // set when the request cannot run as asked
};
ReservationSize reservation_size(std::int64_t prompt_tokens,
                                 std::optional<std::int64_t> requested_max_tokens,
                                 std::int64_t context_length, std::int64_t default_max_tokens,
                                 const TenantLimits& limits, const KeyLimits& key_limits = {});

// One op's part of a batched script call's reply, and the minute window the call counted in.
struct BatchReply {
  infra::RedisReply reply;
  std::int64_t minute = 0, minute_left_ms = 0;
};

class Admission {
 public:
  Admission(infra::RedisClient& redis, infra::AdmissionConfig cfg,
            infra::MetricsRegistry& metrics);
  // Waits for a timer handler that is running on another thread (timers that fire later do
  // nothing).
  ~Admission();
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;

  boost::asio::awaitable<AdmissionDecision> admit(const AdmissionRequest& req);
  // `used_tokens` actually processed (prompt + generated), at most the reservation.
  boost::asio::awaitable<SettleResult> settle(const Reservation& r, std::int64_t used_tokens);
  // The same, without waiting: the settlement joins the tenant's queue (so a later admission of
  // the tenant from this instance sees it) and goes with the next call, which it waits up to
  // 2 ms for (under load an admission comes first and carries it: one call for both); a failure
  // is retried in the background on `ex`, as settle() does. For a response that need not wait.
  void settle_in_background(const Reservation& r, std::int64_t used_tokens,
                            const boost::asio::any_io_executor& ex);
  // Keeps `r` from being released at its expiry while its request runs: reservation_ttl counts
  // from the admission, and a long generation can outlast it (its slot and tokens would be
  // freed for others while it still runs, and the quota overshot when it settles). Until the
  // returned handle is destroyed, the reservation's expiry is moved to reservation_ttl from
  // now every third of reservation_ttl (one Redis command per tenant for all its requests due).
  // Nothing to hold for a local (fail-open) reservation: null.
  std::shared_ptr<void> hold(const Reservation& r, const boost::asio::any_io_executor& ex);
  // Admissions and settlements queued or in a call in flight, and settlements waiting to be
  // retried (shutdown waits for none).
  std::size_t pending() const;
  // Releases every reservation admitted ahead of demand and admits no more ahead (for shutdown:
  // the releases then count in pending()).
  void release_prefetched(const boost::asio::any_io_executor& ex);
  // Reservations admitted ahead and not yet taken by a request, over all tenants.
  std::size_t prefetched() const;

  struct ReconcileResult {
    std::int64_t reserved_day = 0, reserved_month = 0;  // held by requests in flight
    std::int64_t day = 0, month = 0;                    // the counters as set
  };
  // Sets the tenant's quota counters for `periods` to the ledger's figures plus the open
  // reservations. Throws on Redis errors.
  boost::asio::awaitable<ReconcileResult> reconcile(const std::string& tenant_id,
                                                    const QuotaPeriods& periods,
                                                    std::int64_t used_day,
                                                    std::int64_t used_month);

  // The Redis key prefix of a tenant: one hash tag per tenant (Redis Cluster slot).
  static std::string tenant_prefix(const std::string& tenant_id);

 private:
  enum class Script { batch, reconcile };
  boost::asio::awaitable<infra::RedisReply> eval(Script script,
                                                 const std::vector<std::string>& keys,
                                                 const std::vector<std::string>& args);
  // One queued admission or settlement, with everything the script call needs copied in (a
  // caller that stops waiting leaves its op behind).
  struct Op {
    bool settle = false;
    std::string id;           // the reservation's
    std::int64_t tokens = 0;  // admission: to reserve; settlement: actually used
    std::string key_id;       // admission: the API key, its limits and the tenant's
    std::int64_t limits[8] = {};  // -1 = unlimited, in the script's order
    QuotaPeriods periods;
    bool ahead = false;  // an admission ahead of demand (not sent once those have stopped)
    bool lingers = false;  // a settlement nobody waits for (it may wait for company: enqueue)
    // Admission: units. More than one only ahead of demand: a group, one record in Redis, whose
    // units ("<id>#<n>", n from 1) are used and settled one by one.
    std::int64_t count = 1;
    std::shared_ptr<infra::Completion<BatchReply>> done;
  };
  struct TenantQueue {
    std::deque<Op> ops;
    bool flushing = false;
    bool lingering = false;     // a background settlement waits for an admission to go with
    std::size_t in_flight = 0;  // ops in the call being made
  };
  // Queues `op` for the tenant and waits for its part of the reply (throws what the call threw).
  boost::asio::awaitable<BatchReply> submit(const std::string& tenant_id, const Op& op);
  // Queues `op` (its `done` set) and starts the tenant's flush on `ex` if none is running; a
  // settlement nobody waits for (`linger`) instead gives an admission a moment to come and take
  // it along, and starts the flush itself only if none does.
  void enqueue(const std::string& tenant_id, Op op, const boost::asio::any_io_executor& ex,
               bool linger = false);
  // Starts the tenant's flush kSettleLinger from now unless one is running then (not under
  // queues_mu_; the caller set the queue's `lingering`).
  void arm_linger(const std::string& tenant_id, const boost::asio::any_io_executor& ex);
  // Runs `fn` on `ex` after `delay`, unless the Admission is gone by then (~Admission waits for
  // one running meanwhile).
  void after(std::chrono::milliseconds delay, const boost::asio::any_io_executor& ex, std::function<void()> fn);
  void enqueue_all(const std::string& tenant_id, std::vector<Op> ops, const boost::asio::any_io_executor& ex);
  // The same under queues_mu_ (so that pending() never misses them): true when the caller must
  // start the tenant's flush once it has let go of the lock.
  bool push_locked(const std::string& tenant_id, std::vector<Op>& ops);
  // Sends the tenant's queue, call after call, until it is empty.
  boost::asio::awaitable<void> flush(std::string tenant_id);

  // Reservations admitted ahead of demand, per tenant and profile (key, limits and periods).
  struct Prefetched {
    std::string id;
    std::int64_t tokens = 0, minute = 0, granted_ms = 0;
    RateLimitState rate;
  };
  struct Pool {
    Op proto;  // the key, limits and periods its admissions carry
    std::deque<Prefetched> ready;
    std::size_t requested = 0;  // admissions ahead in a call now
    // Demand: requests and the largest reservation asked for, in this and the last 100 ms.
    std::int64_t bucket = -1, count = 0, prev_count = 0, need = 0, prev_need = 0;
    // What each limit had left after the last admission (-1 = unlimited): requests and tokens
    // this minute, slots, tokens today, this month. Nothing is admitted ahead before one is seen.
    std::int64_t left[5] = {};
    bool left_known = false;
    std::int64_t cooldown_until_ms = 0;  // after one was refused
  };
  struct TenantPools {
    std::unordered_map<std::string, Pool> by_profile;
    bool timer_armed = false;
  };
  static std::string profile_key(const Op& op);
  // The admission path's use of the pool (`profile`: profile_key(op)): takes a reservation that
  // fits `op` if there is one, and queues what the pool should send (releases of stale ones,
  // admissions ahead); `spawn`: the caller must start the tenant's flush.
  std::optional<Prefetched> take_prefetched(const std::string& tenant_id, const Op& op, const std::string& profile,
                                            std::int64_t now, const boost::asio::any_io_executor& ex, bool& spawn);
  void prefetch_more(const std::string& tenant_id, const std::string& profile, Pool& pool, std::int64_t now,
                     const boost::asio::any_io_executor& ex, std::vector<Op>& out);
  void prefetch_landed(const std::string& tenant_id, const std::string& profile, const std::string& id,
                       std::int64_t tokens, std::int64_t count, std::exception_ptr error, const std::optional<BatchReply>& reply,
                       const boost::asio::any_io_executor& ex);
  static void note_left(Pool& pool, const infra::RedisReply& admitted);
  // `ahead`: a reservation admitted ahead of demand (counted as released unused); otherwise one
  // whose admission failed after perhaps reaching Redis (release_maybe_admitted).
  Op release_op(const std::string& tenant_id, const std::string& id, const boost::asio::any_io_executor& ex,
                bool ahead = true);
  // An admission whose call failed (no reply in time, connection lost) may still have been run
  // by Redis, then or later: its reservation is released, behind the call on the connection and
  // once more a few seconds later (should a reconnect have put the release first), so that its
  // tokens and slot are not held until its expiry. Releasing what was never admitted changes
  // nothing.
  void release_maybe_admitted(const std::string& tenant_id, const std::string& id,
                              const boost::asio::any_io_executor& ex);
  // Releases the tenant's stale reservations (all of them with `all`); returns the ops to send.
  std::vector<Op> take_stale(const std::string& tenant_id, TenantPools& tp, std::int64_t now, bool all,
                             const boost::asio::any_io_executor& ex);
  void arm_pool_timer(const std::string& tenant_id, const boost::asio::any_io_executor& ex);
  boost::asio::awaitable<infra::RedisReply> settle_call(const Reservation& r,
                                                        std::int64_t used_tokens);
  // Runs detached after a failed settle (takes its arguments by value: it outlives the caller).
  // `used_tokens` -1 releases a reservation nobody used.
  // Retries a settlement in the background on `ex` (counted in pending() from now on).
  void spawn_retry(const boost::asio::any_io_executor& ex, Reservation r, std::int64_t used_tokens);
  boost::asio::awaitable<void> retry_settle(Reservation r, std::int64_t used_tokens,
                                            std::shared_ptr<std::atomic<std::size_t>> count);
  AdmissionDecision admit_locally(const AdmissionRequest& req, std::int64_t now_ms,
                                  const std::string& error);
  void release_locally(const Reservation& r);

  infra::RedisClient& redis_;
  infra::AdmissionConfig cfg_;
  std::mutex sha_mu_;
  std::string shas_[2];  // by Script

  mutable std::mutex queues_mu_;
  std::unordered_map<std::string, TenantQueue> queues_;
  std::unordered_map<std::string, TenantPools> pools_;  // under queues_mu_
  bool prefetch_stopped_ = false;                     // under queues_mu_
  // Settlements waiting in retry_settle; shared with them, as a retry's frame can outlive this
  // object (destroyed with its event loop).
  std::shared_ptr<std::atomic<std::size_t>> retrying_ = std::make_shared<std::atomic<std::size_t>>(0);
  // Reservations held by running requests (hold()): their expiry is pushed forward.
  struct Held {
    std::string tenant_id, key_id, member;  // member: the id in the expiry zset (a group's, for a unit)
    std::int64_t renewed_ms = 0;    // admitted or last moved
  };
  std::mutex held_mu_;
  std::unordered_map<std::uint64_t, Held> held_;
  std::uint64_t next_held_ = 0;
  bool renewal_armed_ = false;  // under held_mu_
  void renew_due(const boost::asio::any_io_executor& ex);
  boost::asio::awaitable<void> push_expiries(std::vector<Held> due);
  std::unordered_map<std::string, std::int64_t> housekeeping_ms_;  // per tenant, the last
  // Linger timers hold a weak reference: one that fires after the Admission is gone does nothing
  // (the owner destroys it only once the io threads are done or after pending() reached 0).
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);

  // Fail-open limiter: per tenant, this instance's minute window and in-flight count.
  struct LocalWindow {
    std::int64_t minute = -1, requests = 0, tokens = 0, in_flight = 0;
  };
  std::mutex local_mu_;
  std::unordered_map<std::string, LocalWindow> local_;

  infra::Counter* outcome_counters_[5];
  infra::Counter* settle_errors_;
  infra::Histogram* batch_sizes_;
  infra::Counter* prefetch_used_;
  infra::Counter* prefetch_released_;
};

}  // namespace infergate::gateway
