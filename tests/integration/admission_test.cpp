// Admission against a real Redis: every limit, exact settlement, expiry of unsettled
// reservations, exactness across processes, Redis failures (closed and open), NOSCRIPT.
#include <gtest/gtest.h>

#include <future>
#include <optional>
#include <regex>

#include <boost/asio/use_future.hpp>

#include "infergate/gateway/admission.h"
#include "support/io_thread.h"
#include "support/process.h"
#include "support/services.h"

namespace infergate {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
using gateway::AdmissionOutcome;

constexpr std::int64_t kFarFuture = 4102444800000;  // 2100-01-01

// Admission ahead of demand is off here (these tests pin the script's exact counts while requests
// race; an admission started after the first reply could be served ahead) and on in PrefetchTest.
class AdmissionTest : public ::testing::Test {
 protected:
  explicit AdmissionTest(bool prefetch = false) : acfg(config(prefetch)) {}
  static infra::AdmissionConfig config(bool prefetch) {
    infra::AdmissionConfig c;
    c.redis_timeout = 2000ms;
    c.prefetch = prefetch;
    return c;
  }
  void SetUp() override {
    redis.start();
    ASSERT_TRUE(test::wait_connected(redis));
  }
  void TearDown() override { redis.stop(); }

  gateway::AdmissionRequest request(std::int64_t tokens) {
    gateway::AdmissionRequest r;
    r.tenant_id = tenant;
    r.key_id = "key1";
    r.tokens = tokens;
    r.periods = {"2026-11-22", "2026-11", kFarFuture, kFarFuture};
    return r;
  }
  gateway::AdmissionDecision admit(const gateway::AdmissionRequest& r) {
    return io.run([&]() -> asio::awaitable<gateway::AdmissionDecision> {
      gateway::AdmissionDecision d = co_await admission.admit(r);
      co_return d;
    }());
  }
  gateway::SettleResult settle(const gateway::Reservation& r, std::int64_t used) {
    return io.run([&]() -> asio::awaitable<gateway::SettleResult> {
      gateway::SettleResult s = co_await admission.settle(r, used);
      co_return s;
    }());
  }
  std::int64_t counter(const std::string& suffix) {
    auto r = io.run([&]() -> asio::awaitable<infra::RedisReply> {
      const std::vector<std::string> cmd{"GET", gateway::Admission::tenant_prefix(tenant) + suffix};
      infra::RedisReply reply = co_await redis.command(cmd);
      co_return reply;
    }());
    return r.type == infra::RedisReply::Type::nil ? 0 : std::stoll(r.str);
  }

  test::IoThread io{2};
  infra::MetricsRegistry metrics;
  infra::RedisConfig rcfg = test::redis_config(test::shared_services().redis_port);
  infra::RedisClient redis{io.io(), rcfg, metrics};
  infra::AdmissionConfig acfg;
  gateway::Admission admission{redis, acfg, metrics};
  std::string tenant = "ten_" + test::unique_name("adm").substr(4);
};

TEST_F(AdmissionTest, RequestsPerMinuteAdmitsExactlyTheLimit) {
  auto r = request(0);
  r.tenant.requests_per_minute = 5;
  for (int i = 0; i < 5; ++i) {
    auto d = admit(r);
    ASSERT_EQ(d.outcome, AdmissionOutcome::admitted) << i;
    EXPECT_EQ(d.rate.limit_requests, 5);
    EXPECT_EQ(d.rate.remaining_requests, 4 - i);
  }
  auto refused = admit(r);
  EXPECT_EQ(refused.outcome, AdmissionOutcome::rate_limited);
  EXPECT_EQ(refused.limit, "requests_per_minute");
  EXPECT_GT(refused.retry_after_ms, 0);
  EXPECT_LE(refused.retry_after_ms, 60000);
  EXPECT_EQ(refused.rate.remaining_requests, 0);
  EXPECT_FALSE(refused.reservation);
}

// The reservation records outlive the counters they hold amounts in: a record whose instance
// crashed is swept (its tokens refunded) whenever the tenant comes back within the month, never
// left to expire while the month's counter keeps its tokens.
TEST_F(AdmissionTest, ReservationRecordsOutliveTheQuotaCountersTheyHoldTokensIn) {
  auto r = request(500);
  r.tenant.tokens_per_month = 1000000;
  const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch()).count();
  r.periods = {"2026-11-22", "2026-11", now + 3600000, now + 10 * 86400000LL};  // month ends in 10 days
  ASSERT_TRUE(admit(r).admitted());
  const auto pttl = [&](const std::string& suffix) {
    return io.run([&]() -> asio::awaitable<std::int64_t> {
      const std::vector<std::string> cmd{"PTTL", gateway::Admission::tenant_prefix(tenant) + suffix};
      infra::RedisReply reply = co_await redis.command(cmd);
      co_return reply.integer;
    }());
  };
  const std::int64_t month = pttl("qm:2026-11");
  EXPECT_GT(month, 10 * 86400000LL);  // to the month's end and a day more
  EXPECT_GE(pttl("res"), month - 1000);  // set in the same call (read a moment apart)
  EXPECT_GE(pttl("resexp"), month - 1000);
  // A later call with a nearer horizon (its admission's month ends sooner, as a key's limit
  // override or a clock might have it) does not shorten them.
  r.periods.month_end_ms = now + 86400000LL;
  auto d = admit(r);
  ASSERT_TRUE(d.admitted());
  settle(*d.reservation, 10);
  EXPECT_GE(pttl("res"), month - 60000);
  EXPECT_GE(pttl("resexp"), month - 60000);
}

TEST_F(AdmissionTest, KeyLimitsAreSeparateFromTenantLimits) {
  auto r = request(10);
  r.key.requests_per_minute = 2;
  EXPECT_EQ(admit(r).outcome, AdmissionOutcome::admitted);
  EXPECT_EQ(admit(r).outcome, AdmissionOutcome::admitted);
  auto d = admit(r);
  EXPECT_EQ(d.limit, "key_requests_per_minute");
  r.key_id = "key2";  // another key of the same tenant is not affected
  EXPECT_EQ(admit(r).outcome, AdmissionOutcome::admitted);
}

TEST_F(AdmissionTest, TokensPerMinuteAndConcurrency) {
  auto r = request(40);
  r.tenant.tokens_per_minute = 100;
  r.tenant.max_concurrent_requests = 2;
  auto a = admit(r), b = admit(r);
  ASSERT_TRUE(a.admitted() && b.admitted());
  EXPECT_EQ(b.rate.remaining_tokens, 20);
  auto c = admit(r);  // 120 > 100 tokens and 3 > 2 in flight: tokens are checked first
  EXPECT_EQ(c.limit, "tokens_per_minute");
  // Settle one with 10 used: 30 come back to the minute's budget, one slot frees.
  auto s = settle(*a.reservation, 10);
  EXPECT_EQ(s.outcome, gateway::SettleOutcome::refunded);
  EXPECT_EQ(s.tokens, 30);
  auto small = request(40);
  small.tenant = r.tenant;
  auto d = admit(small);  // 50 + 40 = 90 <= 100, 2 in flight
  EXPECT_TRUE(d.admitted()) << d.limit;
  auto e = admit(request(0));  // unlimited request of the same tenant: fine
  EXPECT_TRUE(e.admitted());
  auto f = request(0);
  f.tenant.max_concurrent_requests = 2;
  EXPECT_EQ(admit(f).limit, "max_concurrent_requests");  // b, d and e are in flight
}

TEST_F(AdmissionTest, DailyAndMonthlyQuotasAreHardAndSettleExactly) {
  auto r = request(300);
  r.tenant.tokens_per_day = 1000;
  r.tenant.tokens_per_month = 5000;
  std::vector<gateway::Reservation> held;
  for (int i = 0; i < 3; ++i) {
    auto d = admit(r);
    ASSERT_TRUE(d.admitted());
    held.push_back(*d.reservation);
  }
  auto refused = admit(r);  // 900 + 300 > 1000: refused before, never charged after
  EXPECT_EQ(refused.outcome, AdmissionOutcome::quota_exceeded);
  EXPECT_EQ(refused.limit, "tokens_per_day");
  EXPECT_EQ(counter("qd:2026-11-22"), 900);

  EXPECT_EQ(settle(held[0], 120).tokens, 180);
  EXPECT_EQ(settle(held[1], 300).tokens, 0);
  EXPECT_EQ(settle(held[2], 0).tokens, 300);
  EXPECT_EQ(counter("qd:2026-11-22"), 420);  // exactly what was used
  EXPECT_EQ(counter("qm:2026-11"), 420);
  // Settling again changes nothing (the settled record is gone: nothing to settle).
  EXPECT_EQ(settle(held[0], 120).outcome, gateway::SettleOutcome::unknown);
  EXPECT_EQ(counter("qd:2026-11-22"), 420);
  EXPECT_EQ(counter("qm:2026-11"), 420);

  auto month = request(4600);
  month.tenant.tokens_per_month = 5000;
  auto m = admit(month);  // 420 + 4600 > 5000
  EXPECT_EQ(m.limit, "tokens_per_month");
  EXPECT_EQ(m.outcome, AdmissionOutcome::quota_exceeded);
}

// Many requests of one tenant at once: they queue behind the call in flight and share script
// calls, and every limit and counter stays exact.
TEST_F(AdmissionTest, ConcurrentRequestsShareScriptCallsAndStayExact) {
  auto r = request(30);
  r.tenant.tokens_per_day = 1000;  // room for 33 requests of 30 tokens
  constexpr int kN = 80;
  std::vector<std::future<gateway::AdmissionDecision>> admits;
  for (int i = 0; i < kN; ++i) admits.push_back(asio::co_spawn(io.io(), admission.admit(r), asio::use_future));
  std::vector<gateway::Reservation> held;
  for (auto& f : admits) {
    const gateway::AdmissionDecision d = f.get();
    if (d.admitted()) {
      held.push_back(*d.reservation);
    } else {
      EXPECT_EQ(d.limit, "tokens_per_day");
    }
  }
  EXPECT_EQ(held.size(), 33u);
  EXPECT_EQ(counter("qd:2026-11-22"), 33 * 30);
  EXPECT_EQ(counter("rpm:" + std::to_string(held[0].minute)), 33);
  gateway::Reservation settle_twice = held[0];
  std::vector<std::future<gateway::SettleResult>> settles;
  for (const auto& h : held) settles.push_back(asio::co_spawn(io.io(), admission.settle(h, 10), asio::use_future));
  settles.push_back(asio::co_spawn(io.io(), admission.settle(settle_twice, 10), asio::use_future));
  int refunded = 0, already = 0;
  for (auto& f : settles) {
    const gateway::SettleResult s = f.get();
    if (s.outcome == gateway::SettleOutcome::refunded) {
      ++refunded;
      EXPECT_EQ(s.tokens, 20);
    } else {  // the repeat: in the same call as the first, or in a later one (record gone)
      EXPECT_TRUE(s.outcome == gateway::SettleOutcome::already_settled || s.outcome == gateway::SettleOutcome::unknown);
      ++already;
    }
  }
  EXPECT_EQ(refunded, 33);
  EXPECT_EQ(already, 1);
  EXPECT_EQ(counter("qd:2026-11-22"), 33 * 10);  // exactly what was used
  EXPECT_EQ(counter("tpm:" + std::to_string(held[0].minute)), 33 * 10);

  // 194 calls went in fewer script calls: while one is in flight the others queue.
  const auto& sizes = metrics.histogram("infergate_admission_batch_size", "", {}).with({});
  EXPECT_EQ(sizes.sum(), kN + 34.0);
  EXPECT_LE(sizes.count(), static_cast<std::uint64_t>((kN + 34) / 2));

  // Concurrency limits hold the same way: 5 slots, 30 at once.
  auto c = request(1);
  c.key_id = "key_conc";
  c.key.max_concurrent_requests = 5;
  std::vector<std::future<gateway::AdmissionDecision>> racing;
  for (int i = 0; i < 30; ++i) racing.push_back(asio::co_spawn(io.io(), admission.admit(c), asio::use_future));
  int in = 0;
  for (auto& f : racing) {
    const gateway::AdmissionDecision d = f.get();
    if (d.admitted()) ++in;
    else EXPECT_EQ(d.limit, "key_max_concurrent_requests");
  }
  EXPECT_EQ(in, 5);
}

// Requests of several keys, limits and quota periods at once share calls (each set of them a
// profile of its own, their counters named once); every key's limits and every period's counter
// come out exact.
TEST_F(AdmissionTest, ConcurrentRequestsOfSeveralKeysAndPeriodsStayExact) {
  struct Kind {
    std::string key;
    std::optional<std::int64_t> key_rpm;
    std::string day;
    int sent, expect_admitted;
  };
  const std::vector<Kind> kinds = {{"key_a", 5, "2026-11-22", 20, 5},
                                   {"key_b", 3, "2026-11-22", 20, 3},
                                   {"key_c", std::nullopt, "2026-11-22", 20, 20},
                                   {"key_c", std::nullopt, "2026-11-23", 10, 10}};  // the next day
  std::vector<gateway::AdmissionRequest> reqs;
  for (const Kind& k : kinds) {
    auto r = request(7);
    r.key_id = k.key;
    r.key.requests_per_minute = k.key_rpm;
    r.periods.day = k.day;
    reqs.push_back(r);
  }
  std::vector<std::pair<std::size_t, std::future<gateway::AdmissionDecision>>> futures;
  for (int round = 0; round < 20; ++round) {  // interleaved, so calls mix the kinds
    for (std::size_t i = 0; i < kinds.size(); ++i) {
      if (round < kinds[i].sent) futures.emplace_back(i, asio::co_spawn(io.io(), admission.admit(reqs[i]), asio::use_future));
    }
  }
  std::vector<int> admitted(kinds.size(), 0);
  for (auto& [i, f] : futures) {
    const gateway::AdmissionDecision d = f.get();
    if (d.admitted()) {
      ++admitted[i];
    } else {
      EXPECT_EQ(d.limit, "key_requests_per_minute") << kinds[i].key;
    }
  }
  for (std::size_t i = 0; i < kinds.size(); ++i) EXPECT_EQ(admitted[i], kinds[i].expect_admitted) << i;
  EXPECT_EQ(counter("qd:2026-11-22"), 7 * (5 + 3 + 20));
  EXPECT_EQ(counter("qd:2026-11-23"), 7 * 10);
  EXPECT_EQ(counter("qm:2026-11"), 7 * (5 + 3 + 20 + 10));
  EXPECT_EQ(counter("inflight"), 5 + 3 + 20 + 10);
  EXPECT_EQ(counter("k:key_a:inflight"), 5);
  EXPECT_EQ(counter("k:key_b:inflight"), 3);
  EXPECT_EQ(counter("k:key_c:inflight"), 30);
  const auto& sizes = metrics.histogram("infergate_admission_batch_size", "", {}).with({});
  EXPECT_LT(sizes.count(), futures.size());  // calls were shared
}

}  // namespace
}  // namespace infergate

namespace infergate::gateway::scripts {
std::string_view admission_lua();
}

namespace infergate {
namespace {

// One script call with settlements and admissions: settlements go first (a slot freed there
// serves an admission of the same call), a repeated or unknown id changes nothing, and
// admissions are decided in order, each seeing the ones before.
TEST_F(AdmissionTest, OneScriptCallSettlesFirstThenAdmitsInOrder) {
  const std::string t = gateway::Admission::tenant_prefix(tenant);
  const std::vector<std::string> keys{t + "res",          t + "resexp",       t + "rpm:1",       t + "tpm:1",
                                      t + "inflight",     t + "k:a:rpm:1",    t + "k:a:tpm:1",   t + "k:a:inflight",
                                      t + "qd:d",         t + "qm:m"};
  const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  // One profile: tenant concurrency 2, everything else unlimited; its counters are KEYS 3..10.
  std::vector<std::string> profile{"-1", "-1", "2", "-1", "-1", "-1", "-1", "-1", "3600000", "86400000"};
  for (int k = 3; k <= 10; ++k) profile.push_back(std::to_string(k));
  bool housekeeping = true;
  auto call = [&](const std::vector<std::pair<std::string, int>>& settles, const std::vector<std::string>& admits,
                  const std::vector<int>& counts = {}) {
    std::vector<std::string> cmd{"EVAL", std::string(gateway::scripts::admission_lua()), std::to_string(keys.size())};
    cmd.insert(cmd.end(), keys.begin(), keys.end());
    for (const std::int64_t v : {now, static_cast<std::int64_t>(settles.size()), std::int64_t{1},
                                 static_cast<std::int64_t>(admits.size()), now + 60000, std::int64_t{30000},
                                 std::int64_t{housekeeping ? 1 : 0}})
      cmd.push_back(std::to_string(v));
    for (const auto& s : settles) cmd.push_back(s.first);
    for (const auto& s : settles) cmd.push_back(std::to_string(s.second));
    cmd.insert(cmd.end(), profile.begin(), profile.end());
    for (const auto& id : admits) cmd.push_back(id);
    for (std::size_t i = 0; i < admits.size(); ++i) cmd.push_back("10");
    for (std::size_t i = 0; i < admits.size(); ++i) cmd.push_back("1");
    for (std::size_t i = 0; i < admits.size(); ++i) cmd.push_back(std::to_string(i < counts.size() ? counts[i] : 1));
    return io.run([&]() -> asio::awaitable<infra::RedisReply> {
      infra::RedisReply reply = co_await redis.command(cmd);
      co_return reply;
    }());
  };
  auto first = call({}, {"a1", "a2", "a3"});
  ASSERT_EQ(first.elements.size(), 4u) << first.str;  // 3 replies, then how many expired were handled
  EXPECT_EQ(first.elements[3].integer, 0);
  EXPECT_EQ(first.elements[0].elements.at(0).integer, 1);
  EXPECT_EQ(first.elements[1].elements.at(0).integer, 1);
  EXPECT_EQ(first.elements[2].elements.at(0).integer, 0);
  EXPECT_EQ(first.elements[2].elements.at(1).str, "max_concurrent_requests");
  EXPECT_EQ(counter("inflight"), 2);

  auto second = call({{"a1", 4}, {"a1", 4}, {"nope", 1}}, {"a4", "a5"});
  ASSERT_EQ(second.elements.size(), 6u) << second.str;
  EXPECT_EQ(second.elements[0].elements.at(0).str, "refunded");
  EXPECT_EQ(second.elements[0].elements.at(1).integer, 6);
  EXPECT_EQ(second.elements[1].elements.at(0).str, "already");
  EXPECT_EQ(second.elements[2].elements.at(0).str, "unknown");
  EXPECT_EQ(second.elements[3].elements.at(0).integer, 1);  // a1's slot was freed first
  EXPECT_EQ(second.elements[4].elements.at(0).integer, 0);  // a2 and a4 hold both slots
  EXPECT_EQ(counter("tpm:1"), 10 + 10 - 6 + 10);
  EXPECT_EQ(counter("qd:d"), 24);
  EXPECT_EQ(counter("k:a:tpm:1"), 24);
  EXPECT_EQ(counter("rpm:1"), 3);
  EXPECT_EQ(counter("inflight"), 2);
  EXPECT_EQ(counter("k:a:inflight"), 2);
  auto pttl = [&](const std::string& key) {
    return io.run([&]() -> asio::awaitable<std::int64_t> {
      const std::vector<std::string> cmd{"PTTL", key};
      infra::RedisReply reply = co_await redis.command(cmd);
      co_return reply.integer;
    }());
  };
  for (const char* k : {"res", "resexp", "inflight", "k:a:inflight", "rpm:1", "qd:d"}) {
    EXPECT_GT(pttl(t + k), 0) << k;  // nothing this script writes lives forever
  }
  auto third = call({{"a2", 10}, {"a4", 0}}, {});
  ASSERT_EQ(third.elements.size(), 3u) << third.str;
  EXPECT_EQ(counter("inflight"), 0);
  EXPECT_EQ(counter("qd:d"), 14);
  // Settled records are deleted, not kept as tombstones; a repeat finds nothing and changes nothing.
  {
    const std::vector<std::string> hlen{"HLEN", t + "res"}, zcard{"ZCARD", t + "resexp"};
    EXPECT_EQ(io.run([&]() -> asio::awaitable<std::int64_t> {
                infra::RedisReply r = co_await redis.command(hlen);
                co_return r.integer;
              }()),
              0);
    EXPECT_EQ(io.run([&]() -> asio::awaitable<std::int64_t> {
                infra::RedisReply r = co_await redis.command(zcard);
                co_return r.integer;
              }()),
              0);
  }
  auto repeat = call({{"a1", 4}, {"a2", 10}}, {});
  ASSERT_EQ(repeat.elements.size(), 3u) << repeat.str;
  EXPECT_EQ(repeat.elements[0].elements.at(0).str, "unknown");
  EXPECT_EQ(repeat.elements[1].elements.at(0).str, "unknown");
  EXPECT_EQ(counter("qd:d"), 14);
  EXPECT_EQ(counter("inflight"), 0);

  // Records of versions that kept in-flight sets (R, zset members) are settled and expired too.
  auto redis_do = [&](const std::vector<std::string>& cmd) {
    return io.run([&]() -> asio::awaitable<infra::RedisReply> {
      infra::RedisReply reply = co_await redis.command(cmd);
      co_return reply;
    }());
  };
  const std::string legacy = "R|50|" + t + "tpm:1|" + t + "k:a:tpm:1|" + t + "qd:d|" + t + "qm:m|" + t + "conc|" + t + "k:a:conc";
  redis_do({"HSET", t + "res", "old1", legacy, "old2", legacy});
  redis_do({"ZADD", t + "resexp", std::to_string(now + 60000), "old1", std::to_string(now - 1), "old2"});
  redis_do({"ZADD", t + "conc", std::to_string(now + 60000), "old1", std::to_string(now + 60000), "old2"});
  redis_do({"INCRBY", t + "qd:d", "100"});
  auto legacy_settle = call({{"old1", 20}}, {});  // old2 expired: released by the same call
  ASSERT_EQ(legacy_settle.elements.size(), 2u) << legacy_settle.str;
  EXPECT_EQ(legacy_settle.elements[1].integer, 1);  // old2
  EXPECT_EQ(legacy_settle.elements[0].elements.at(0).str, "refunded");
  EXPECT_EQ(legacy_settle.elements[0].elements.at(1).integer, 30);
  EXPECT_EQ(counter("qd:d"), 14 + 100 - 30 - 50);
  EXPECT_EQ(redis_do({"ZCARD", t + "conc"}).integer, 0);
  EXPECT_EQ(redis_do({"HGET", t + "res", "old2"}).str.substr(0, 2), "X|");

  // A record this script did not write is settled as unknown; the rest of the call goes on.
  redis_do({"HSET", t + "res", "bad", "O|not-a-number"});
  auto odd = call({{"bad", 1}}, {"a6"});
  ASSERT_EQ(odd.elements.size(), 3u) << odd.str;
  EXPECT_EQ(odd.elements[0].elements.at(0).str, "unknown");
  EXPECT_EQ(odd.elements[1].elements.at(0).integer, 1);

  // Records and slots written outside housekeeping get their expiry too (a hash the last sweep
  // emptied comes back new, and must not live forever).
  redis_do({"DEL", t + "res", t + "resexp", t + "inflight"});
  housekeeping = false;
  auto fresh = call({}, {"a7"});
  ASSERT_EQ(fresh.elements.size(), 2u) << fresh.str;
  for (const char* k : {"res", "resexp", "inflight"}) EXPECT_GT(pttl(t + k), 0) << k;

  // A group admitted ahead: one record for its units, counted as that many requests; each unit
  // settles (or is released) once; the group goes when its last unit has.
  redis_do({"DEL", t + "res", t + "resexp", t + "inflight", t + "rpm:1", t + "tpm:1", t + "qd:d", t + "k:a:rpm:1",
            t + "k:a:tpm:1", t + "k:a:inflight"});
  housekeeping = true;
  auto too_many = call({}, {"g0"}, {3});  // tenant concurrency 2
  ASSERT_EQ(too_many.elements.size(), 2u) << too_many.str;
  EXPECT_EQ(too_many.elements[0].elements.at(0).integer, 0);
  EXPECT_EQ(too_many.elements[0].elements.at(1).str, "max_concurrent_requests");
  EXPECT_EQ(counter("inflight"), 0);
  auto group = call({}, {"g1"}, {2});
  ASSERT_EQ(group.elements.size(), 2u) << group.str;
  EXPECT_EQ(group.elements[0].elements.at(0).integer, 1);
  EXPECT_EQ(counter("rpm:1"), 2);
  EXPECT_EQ(counter("k:a:rpm:1"), 2);
  EXPECT_EQ(counter("tpm:1"), 20);
  EXPECT_EQ(counter("qd:d"), 20);
  EXPECT_EQ(counter("inflight"), 2);
  EXPECT_EQ(redis_do({"HLEN", t + "res"}).integer, 1);
  auto units = call({{"g1#1", 4}, {"g1#1", 4}, {"g1#3", 1}, {"g1", 1}, {"g1#x", 1}}, {});
  ASSERT_EQ(units.elements.size(), 6u) << units.str;
  EXPECT_EQ(units.elements[0].elements.at(0).str, "refunded");
  EXPECT_EQ(units.elements[0].elements.at(1).integer, 6);
  EXPECT_EQ(units.elements[1].elements.at(0).str, "already");  // the same unit again
  EXPECT_EQ(units.elements[2].elements.at(0).str, "already");  // a unit the group never had
  EXPECT_EQ(units.elements[3].elements.at(0).str, "unknown");  // the group itself is no unit
  EXPECT_EQ(units.elements[4].elements.at(0).str, "unknown");
  EXPECT_EQ(counter("tpm:1"), 14);
  EXPECT_EQ(counter("qd:d"), 14);
  EXPECT_EQ(counter("inflight"), 1);
  EXPECT_EQ(counter("rpm:1"), 2);
  // Unit 2 expires unsettled (its instance died): its tokens and slot go back, and a late settle
  // still charges what it used, once.
  redis_do({"ZADD", t + "resexp", std::to_string(now - 1), "g1"});
  auto expired = call({}, {});
  ASSERT_EQ(expired.elements.size(), 1u) << expired.str;
  EXPECT_EQ(expired.elements[0].integer, 1);
  EXPECT_EQ(counter("tpm:1"), 4);
  EXPECT_EQ(counter("qd:d"), 4);
  EXPECT_EQ(counter("inflight"), 0);
  EXPECT_EQ(redis_do({"HGET", t + "res", "g1"}).str.substr(0, 2), "X|");
  auto late = call({{"g1#2", 7}, {"g1#1", 4}}, {});
  ASSERT_EQ(late.elements.size(), 3u) << late.str;
  EXPECT_EQ(late.elements[0].elements.at(0).str, "charged");
  EXPECT_EQ(late.elements[0].elements.at(1).integer, 7);
  EXPECT_EQ(late.elements[1].elements.at(0).str, "already");  // settled before the expiry
  EXPECT_EQ(counter("qd:d"), 11);
  EXPECT_EQ(redis_do({"HLEN", t + "res"}).integer, 0);  // the last unit took the tombstone along
  // A group's unused unit is released with its request count; the last one deletes the group.
  auto g2 = call({}, {"g2"}, {2});
  ASSERT_EQ(g2.elements[0].elements.at(0).integer, 1) << g2.str;
  EXPECT_EQ(counter("rpm:1"), 4);
  auto released = call({{"g2#2", -1}, {"g2#1", 3}}, {});
  ASSERT_EQ(released.elements.size(), 3u) << released.str;
  EXPECT_EQ(released.elements[0].elements.at(1).integer, 10);
  EXPECT_EQ(released.elements[1].elements.at(1).integer, 7);
  EXPECT_EQ(counter("rpm:1"), 3);
  EXPECT_EQ(counter("k:a:rpm:1"), 3);
  EXPECT_EQ(counter("inflight"), 0);
  EXPECT_EQ(counter("qd:d"), 14);
  EXPECT_EQ(redis_do({"HLEN", t + "res"}).integer, 0);
  EXPECT_EQ(redis_do({"ZCARD", t + "resexp"}).integer, 0);
  // A malformed unit count is refused before anything is written.
  auto bad = call({}, {"g3"}, {0});
  EXPECT_NE(bad.str.find("bad unit count"), std::string::npos) << bad.str;
  EXPECT_EQ(counter("rpm:1"), 3);
}

// The shared Redis, an Admission whose reservations expire after `ttl`, and a request of a
// fresh tenant (its limits set by the test).
struct ShortLivedReservations {
  test::IoThread io{2};
  infra::MetricsRegistry metrics;
  infra::RedisClient redis{io.io(), test::redis_config(test::shared_services().redis_port), metrics};
  std::optional<gateway::Admission> admission;
  gateway::AdmissionRequest r;

  ShortLivedReservations(std::chrono::milliseconds ttl, const std::string& name, std::int64_t tokens) {
    redis.start();
    if (!test::wait_connected(redis)) throw std::runtime_error("redis did not come up");
    infra::AdmissionConfig cfg;
    cfg.reservation_ttl = ttl;
    cfg.redis_timeout = 2000ms;  // a loaded machine's Redis round trip is no failure here
    cfg.prefetch = false;  // crashed requests only
    admission.emplace(redis, cfg, metrics);
    r.tenant_id = "ten_" + test::unique_name(name).substr(4);
    r.key_id = "k";
    r.tokens = tokens;
    r.periods = {"2026-11-22", "2026-11", kFarFuture, kFarFuture};
  }
  ~ShortLivedReservations() { redis.stop(); }
  gateway::AdmissionDecision admit() {
    return io.run([&]() -> asio::awaitable<gateway::AdmissionDecision> {
      gateway::AdmissionDecision d = co_await admission->admit(r);
      co_return d;
    }());
  }
  std::string get(const std::string& suffix) {
    return io.run([&]() -> asio::awaitable<std::string> {
      const std::vector<std::string> cmd{"GET", gateway::Admission::tenant_prefix(r.tenant_id) + suffix};
      infra::RedisReply reply = co_await redis.command(cmd);
      co_return reply.str;
    }());
  }
};

TEST(AdmissionExpiry, UnsettledReservationsAreReleasedAndALateSettleChargesWhatWasUsed) {
  ShortLivedReservations s(1000ms, "exp", 500);
  s.r.tenant.max_concurrent_requests = 1;
  s.r.tenant.tokens_per_day = 600;
  auto first = s.admit();
  ASSERT_TRUE(first.admitted());
  EXPECT_EQ(s.admit().limit, "max_concurrent_requests");  // the crashed request holds the slot
  std::this_thread::sleep_for(1200ms);
  auto second = s.admit();  // the expired reservation is released: slot and tokens back
  ASSERT_TRUE(second.admitted()) << second.limit;
  // The first request's instance comes back and settles late: what it used is charged now.
  auto late = s.io.run([&]() -> asio::awaitable<gateway::SettleResult> {
    gateway::SettleResult x = co_await s.admission->settle(*first.reservation, 70);
    co_return x;
  }());
  EXPECT_EQ(late.outcome, gateway::SettleOutcome::charged_after_expiry);
  EXPECT_EQ(late.tokens, 70);
  EXPECT_EQ(s.get("qd:2026-11-22"), "570");  // second's 500 reserved + first's 70 used
}

// A call releases at most 256 expired reservations; while a sweep comes back full, the next call
// sweeps again, so a backlog of crashed requests is worked off within a few calls.
TEST(AdmissionExpiry, ABacklogOfExpiredReservationsIsReleasedOverTheNextCalls) {
  ShortLivedReservations s(300ms, "sweep", 1);
  std::vector<std::future<gateway::AdmissionDecision>> crashed;
  for (int i = 0; i < 600; ++i) crashed.push_back(asio::co_spawn(s.io.io(), s.admission->admit(s.r), asio::use_future));
  for (auto& f : crashed) ASSERT_TRUE(f.get().admitted());  // never settled
  EXPECT_EQ(s.get("inflight"), "600");
  std::this_thread::sleep_for(1100ms);  // past their expiry, and past the housekeeping interval
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(s.admit().admitted());
  EXPECT_EQ(s.get("inflight"), "4");        // 256 + 256 + 88 released by the first three calls
  EXPECT_EQ(s.get("qd:2026-11-22"), "4");   // and their tokens refunded
}

// Three processes with admissions racing (each 100, in `waves` rounds of concurrent ones):
// `prefetch` "0" or "1".
struct ProbeTotals {
  int admitted = 0;
  long long reserved = 0, ahead = 0;  // ahead: admissions served by reservations admitted ahead
};
ProbeTotals race_three_probes(const std::string& tenant, const std::string& tokens, const std::string& quota,
                              const std::string& rpm, const std::string& prefetch, const std::string& waves = "1") {
  const int port = test::shared_services().redis_port;
  std::vector<test::Child> procs;
  std::string dir = test::make_temp_dir("probe");
  for (int i = 0; i < 3; ++i)
    procs.push_back(test::Child::spawn(
        {IG_ADMISSION_PROBE, std::to_string(port), tenant, "100", tokens, quota, rpm, prefetch, waves}, {},
        dir + "/out" + std::to_string(i)));
  ProbeTotals t;
  for (int i = 0; i < 3; ++i) {
    auto code = procs[static_cast<std::size_t>(i)].wait(60s);
    EXPECT_TRUE(code && *code == 0);
    std::string out = test::read_file(dir + "/out" + std::to_string(i));
    std::smatch m;
    EXPECT_TRUE(std::regex_search(out, m, std::regex("admitted=(\\d+) reserved=(\\d+) errors=0 ahead=(\\d+)"))) << out;
    if (m.size() == 4) {
      t.admitted += std::stoi(m[1]);
      t.reserved += std::stoll(m[2]);
      t.ahead += std::stoll(m[3]);
    }
  }
  return t;
}

std::int64_t redis_counter(const std::string& tenant, const std::string& suffix) {
  test::IoThread io;
  infra::MetricsRegistry metrics;
  infra::RedisClient redis{io.io(), test::redis_config(test::shared_services().redis_port), metrics};
  redis.start();
  if (!test::wait_connected(redis)) throw std::runtime_error("redis did not come up");
  const infra::RedisReply r = io.run([&]() -> asio::awaitable<infra::RedisReply> {
    const std::vector<std::string> cmd{"GET", gateway::Admission::tenant_prefix(tenant) + suffix};
    infra::RedisReply reply = co_await redis.command(cmd);
    co_return reply;
  }());
  redis.stop();
  return r.type == infra::RedisReply::Type::nil ? 0 : std::stoll(r.str);
}

TEST(AdmissionAcrossProcesses, ThreeProcessesNeverOvershootTheQuota) {
  // 300 admissions of 70 tokens against 10,000: exactly 142 fit (9,940 tokens).
  const ProbeTotals t = race_three_probes("ten_" + test::unique_name("multi").substr(4), "70", "10000", "-1", "0");
  EXPECT_LE(t.reserved, 10000);  // zero overshoot
  EXPECT_EQ(t.admitted, 142);    // and as many as fit
  EXPECT_EQ(t.ahead, 0);
  // Admitting ahead of demand never overshoots either, and once the processes have released
  // what they admitted ahead, Redis holds exactly what their requests reserved. (Across
  // instances a request can be turned away while another holds reservations admitted ahead:
  // see admission.h.) In waves of 10, so that later waves are served ahead.
  const std::string tenant = "ten_" + test::unique_name("multi").substr(4);
  const ProbeTotals p = race_three_probes(tenant, "70", "100000", "-1", "1", "10");
  EXPECT_GT(p.ahead, 0);
  EXPECT_EQ(p.admitted, 300);  // far from the quota: all fit
  EXPECT_EQ(redis_counter(tenant, "qm:2026-11"), p.reserved);
  EXPECT_EQ(redis_counter(tenant, "inflight"), p.admitted);  // never settled, and nothing more
  const ProbeTotals q = race_three_probes("ten_" + test::unique_name("multi").substr(4), "70", "10000", "-1", "1", "10");
  EXPECT_LE(q.reserved, 10000);
  EXPECT_LE(q.admitted, 142);
}

TEST(AdmissionAcrossProcesses, RequestsPerMinuteIsExactAcrossProcesses) {
  const std::string tenant = "ten_" + test::unique_name("rpm").substr(4);
  const int port = test::shared_services().redis_port;
  // Stay clear of a minute boundary: the limit holds per minute window.
  auto ms_into_minute = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count() %
                        60000;
  if (ms_into_minute > 50000) std::this_thread::sleep_for(std::chrono::milliseconds(61000 - ms_into_minute));
  std::vector<test::Child> procs;
  std::string dir = test::make_temp_dir("probe");
  for (int i = 0; i < 3; ++i)
    procs.push_back(test::Child::spawn({IG_ADMISSION_PROBE, std::to_string(port), tenant, "100",
                                        "0", "-1", "137", "0"},
                                       {}, dir + "/out" + std::to_string(i)));
  int admitted = 0;
  for (int i = 0; i < 3; ++i) {
    auto code = procs[static_cast<std::size_t>(i)].wait(60s);
    ASSERT_TRUE(code && *code == 0);
    std::smatch m;
    std::string out = test::read_file(dir + "/out" + std::to_string(i));
    ASSERT_TRUE(std::regex_search(out, m, std::regex("admitted=(\\d+)"))) << out;
    admitted += std::stoi(m[1]);
  }
  EXPECT_EQ(admitted, 137);
}

TEST(AdmissionFailures, RedisDownFailsClosedOrOpenAndBothRecover) {
  test::PrivateRedis server;
  test::IoThread io{2};
  infra::MetricsRegistry metrics;
  auto rc = test::redis_config(server.port());
  infra::RedisClient redis(io.io(), rc, metrics);
  redis.start();
  ASSERT_TRUE(test::wait_connected(redis));
  infra::AdmissionConfig closed_cfg, open_cfg;
  open_cfg.fail_open = true;
  gateway::Admission closed(redis, closed_cfg, metrics), open(redis, open_cfg, metrics);
  gateway::AdmissionRequest r;
  r.tenant_id = "ten_" + test::unique_name("down").substr(4);
  r.key_id = "k";
  r.tokens = 10;
  r.tenant.requests_per_minute = 3;
  r.periods = {"2026-11-22", "2026-11", kFarFuture, kFarFuture};
  auto run = [&](gateway::Admission& a) {
    return io.run([&]() -> asio::awaitable<gateway::AdmissionDecision> {
      gateway::AdmissionDecision d = co_await a.admit(r);
      co_return d;
    }());
  };
  ASSERT_EQ(run(closed).outcome, AdmissionOutcome::admitted);

  server.stop();
  for (int i = 0; i < 300 && redis.connected(); ++i) std::this_thread::sleep_for(10ms);
  auto c = run(closed);
  EXPECT_EQ(c.outcome, AdmissionOutcome::redis_error);
  EXPECT_FALSE(c.error.empty());
  EXPECT_FALSE(c.reservation);
  // Fail open: the local limiter admits up to the tenant's limit on this instance, no more.
  int local_admitted = 0;
  std::optional<gateway::Reservation> one;
  for (int i = 0; i < 5; ++i) {
    auto d = run(open);
    EXPECT_EQ(d.outcome, AdmissionOutcome::fail_open);
    if (d.reservation) {
      ++local_admitted;
      one = d.reservation;
    }
  }
  EXPECT_EQ(local_admitted, 3);
  auto s = io.run([&]() -> asio::awaitable<gateway::SettleResult> {
    gateway::SettleResult res = co_await open.settle(*one, 5);
    co_return res;
  }());
  EXPECT_EQ(s.outcome, gateway::SettleOutcome::local);
  auto text = metrics.render();
  EXPECT_NE(text.find("infergate_admission_total{outcome=\"redis_error\"} 1"), std::string::npos);
  EXPECT_NE(text.find("infergate_admission_total{outcome=\"fail_open\"} 3"), std::string::npos)
      << text;

  // Redis back (empty: it lost its scripts too): both modes use it again.
  server.start();
  ASSERT_TRUE(test::wait_connected(redis));
  EXPECT_EQ(run(closed).outcome, AdmissionOutcome::admitted);
  EXPECT_EQ(run(open).outcome, AdmissionOutcome::admitted);
  redis.stop();
}

TEST_F(AdmissionTest, ConcurrencyNeverLeaksWhateverTheOutcome) {
  auto r = request(20);
  r.tenant.max_concurrent_requests = 50;
  r.key.max_concurrent_requests = 50;
  std::vector<gateway::Reservation> held;
  for (int i = 0; i < 50; ++i) {
    auto d = admit(r);
    ASSERT_TRUE(d.admitted()) << i;
    held.push_back(*d.reservation);
  }
  EXPECT_EQ(admit(r).limit, "max_concurrent_requests");
  // Finished, cancelled half-way, failed before the first token, settled twice.
  for (std::size_t i = 0; i < held.size(); ++i) {
    const std::int64_t used = i % 3 == 0 ? 20 : (i % 3 == 1 ? 7 : 0);
    settle(held[i], used);
    if (i % 10 == 0) settle(held[i], used);
  }
  auto zcard = [&](const std::string& suffix) {
    return io.run([&]() -> asio::awaitable<std::int64_t> {
      const std::vector<std::string> cmd{"ZCARD",
                                         gateway::Admission::tenant_prefix(tenant) + suffix};
      infra::RedisReply reply = co_await redis.command(cmd);
      co_return reply.integer;
    }());
  };
  EXPECT_EQ(zcard("conc"), 0);
  EXPECT_EQ(zcard("k:key1:conc"), 0);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(admit(r).admitted()) << i;  // all 50 slots free again
}

// A settlement nobody waits for still comes before the tenant's next admission from this
// instance: the slot and the unused tokens are back in time for it.
TEST_F(AdmissionTest, ABackgroundSettlementIsSeenByTheTenantsNextAdmission) {
  auto r = request(100);
  r.tenant.max_concurrent_requests = 1;
  r.tenant.tokens_per_day = 150;  // two open reservations of 100 would not fit
  for (int i = 0; i < 20; ++i) {
    const auto d = admit(r);
    ASSERT_TRUE(d.admitted()) << i << ": " << d.limit;
    admission.settle_in_background(*d.reservation, 1, io.io().get_executor());
  }
  std::int64_t day = -1;
  for (int i = 0; i < 100 && day != 20; ++i) {
    day = counter("qd:2026-11-22");
    if (day != 20) std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(day, 20);
  EXPECT_EQ(counter("inflight"), 0);
}

// A settlement nobody waits for lingers a moment in an idle queue: the tenant's next admission
// takes it along (one call for both), and without one it goes by itself.
TEST_F(AdmissionTest, ABackgroundSettlementRidesWithTheNextAdmission) {
  auto r = request(10);
  auto d = admit(r);
  ASSERT_TRUE(d.admitted());
  const auto& sizes = metrics.histogram("infergate_admission_batch_size", "", {}).with({});
  const auto calls_before = sizes.count();
  for (int i = 0; i < 20; ++i) {
    admission.settle_in_background(*d.reservation, 4, io.io().get_executor());
    d = admit(r);
    ASSERT_TRUE(d.admitted());
  }
  // 40 operations; pairs that shared a call make it fewer calls (on a loaded machine an
  // admission can come after the linger, so not necessarily 20).
  EXPECT_LT(sizes.count() - calls_before, 35u);
  admission.settle_in_background(*d.reservation, 4, io.io().get_executor());  // alone
  std::int64_t day = -1;
  for (int i = 0; i < 200 && day != 21 * 4; ++i) {
    day = counter("qd:2026-11-22");
    if (day != 21 * 4) std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(day, 21 * 4);
  EXPECT_EQ(admission.pending(), 0u);
}

// Settlements nobody waits for, arriving steadily while none of their tenant's admissions go to
// Redis (a busy key's requests take reservations admitted ahead): after each call the few that
// queued meanwhile wait for company again, so a call carries about a linger's worth of them
// instead of each call's return sending whatever arrived during it. Every one is settled.
TEST_F(AdmissionTest, SteadyBackgroundSettlementsGoInLingerSizedCalls) {
  auto r = request(10);
  constexpr int kN = 1000;
  std::vector<gateway::Reservation> held;
  for (int i = 0; i < kN; ++i) {
    const auto d = admit(r);
    ASSERT_TRUE(d.admitted()) << i;
    held.push_back(*d.reservation);
  }
  const auto& sizes = metrics.histogram("infergate_admission_batch_size", "", {}).with({});
  const auto calls_before = sizes.count();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kN; ++i) {  // one every 100 us
    admission.settle_in_background(held[static_cast<std::size_t>(i)], 4, io.io().get_executor());
    std::this_thread::sleep_until(t0 + std::chrono::microseconds(100) * (i + 1));
  }
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  for (int i = 0; i < 400 && admission.pending() > 0; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(admission.pending(), 0u);
  EXPECT_EQ(counter("qd:2026-11-22"), kN * 4);
  EXPECT_EQ(counter("inflight"), 0);
  // A linger (admission.cpp's kSettleLinger, 10 ms) gathers about 100 of them, sent in calls of
  // at most 64: two calls per linger (and a few more); sent as soon as each call returned, they
  // would take one call per round trip (a few hundred).
  const auto calls = sizes.count() - calls_before;
  const auto lingers = static_cast<std::uint64_t>(elapsed / 10ms) + 1;
  EXPECT_LE(calls, 2 * lingers + 10) << "over " << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms";
  EXPECT_GE(calls, 2u);
}

// A private Redis that a test can stall, an Admission on it, and one admitted reservation of
// `tokens` against a day quota of 5000.
struct StallableAdmission {
  test::PrivateRedis server;
  test::IoThread io{2};
  infra::MetricsRegistry metrics;
  infra::RedisClient redis{io.io(), test::redis_config(server.port()), metrics};
  std::optional<gateway::Admission> admission;
  std::string tenant;

  StallableAdmission(std::string tenant_id, std::chrono::milliseconds redis_timeout) : tenant(std::move(tenant_id)) {
    redis.start();
    if (!test::wait_connected(redis)) throw std::runtime_error("private redis did not come up");
    infra::AdmissionConfig cfg;
    cfg.redis_timeout = redis_timeout;
    admission.emplace(redis, cfg, metrics);
  }
  ~StallableAdmission() { redis.stop(); }
  gateway::Reservation admitted(std::int64_t tokens) {
    gateway::AdmissionRequest r;
    r.tenant_id = tenant;
    r.key_id = "k";
    r.tokens = tokens;
    r.tenant.tokens_per_day = 5000;
    r.periods = {"2026-11-22", "2026-11", kFarFuture, kFarFuture};
    auto d = io.run([&]() -> asio::awaitable<gateway::AdmissionDecision> {
      gateway::AdmissionDecision x = co_await admission->admit(r);
      co_return x;
    }());
    if (!d.admitted()) throw std::runtime_error("not admitted: " + d.limit + d.error);
    return *d.reservation;
  }
  // The day counter, once it reads `want` (or what it reads after 10 s).
  std::string day_counter_reaching(const std::string& want) {
    std::string day;
    for (int i = 0; i < 100 && day != want; ++i) {
      std::this_thread::sleep_for(100ms);
      try {
        day = io.run([&]() -> asio::awaitable<std::string> {
          const std::vector<std::string> cmd{"GET", gateway::Admission::tenant_prefix(tenant) + "qd:2026-11-22"};
          infra::RedisReply reply = co_await redis.command(cmd);
          co_return reply.str;
        }());
      } catch (const std::exception&) {
      }
    }
    return day;
  }
};

TEST(AdmissionFailures, AFailedSettleIsRetriedUntilRedisReturns) {
  StallableAdmission a("ten_retry", infra::AdmissionConfig{}.redis_timeout);
  const auto r = a.admitted(1000);
  a.server.pause();  // Redis stalls: the settle times out
  auto s = a.io.run([&]() -> asio::awaitable<gateway::SettleResult> {
    gateway::SettleResult x = co_await a.admission->settle(r, 100);
    co_return x;
  }());
  EXPECT_EQ(s.outcome, gateway::SettleOutcome::redis_error);
  EXPECT_GE(a.admission->pending(), 1u);  // shutdown waits for the retry too
  a.server.resume();
  // The background retry settles it: 900 of the 1000 reserved tokens come back.
  EXPECT_EQ(a.day_counter_reaching("100"), "100");
  for (int i = 0; i < 200 && a.admission->pending() > 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(a.admission->pending(), 0u);
}

// An admission whose reply does not come in time is refused (503), but Redis may still run it
// (here: it was stopped, and runs the call once it is resumed). Its reservation, the tenant's
// only concurrency slot included, must not stay held until its expiry (10 minutes): the gateway
// releases it, and the tenant's next request is admitted.
TEST(AdmissionFailures, AnAdmissionThatTimedOutIsReleasedEvenIfRedisRanItLater) {
  StallableAdmission a("ten_late_admit", 300ms);
  gateway::AdmissionRequest r;
  r.tenant_id = a.tenant;
  r.key_id = "k";
  r.tokens = 700;
  r.tenant.max_concurrent_requests = 1;
  r.tenant.tokens_per_day = 5000;
  r.periods = {"2026-11-22", "2026-11", kFarFuture, kFarFuture};
  const auto admit = [&] {
    return a.io.run([&]() -> asio::awaitable<gateway::AdmissionDecision> {
      gateway::AdmissionDecision x = co_await a.admission->admit(r);
      co_return x;
    }());
  };
  const auto first = admit();  // the script is loaded, and the one slot taken and given back
  ASSERT_TRUE(first.admitted()) << first.limit << first.error;
  a.io.run([&]() -> asio::awaitable<gateway::SettleResult> {
    gateway::SettleResult x = co_await a.admission->settle(*first.reservation, 0);
    co_return x;
  }());
  a.server.pause();
  const auto timed_out = admit();
  EXPECT_EQ(timed_out.outcome, gateway::AdmissionOutcome::redis_error);
  a.server.resume();  // Redis now runs the admission, then the release queued behind it
  EXPECT_EQ(a.day_counter_reaching("0"), "0");  // its 700 tokens came back
  const auto next = admit();
  ASSERT_TRUE(next.admitted()) << next.limit << next.error;  // and its slot
  auto s = a.io.run([&]() -> asio::awaitable<gateway::SettleResult> {
    gateway::SettleResult x = co_await a.admission->settle(*next.reservation, 100);
    co_return x;
  }());
  EXPECT_EQ(s.outcome, gateway::SettleOutcome::refunded);
  EXPECT_EQ(a.day_counter_reaching("100"), "100");
}

// A request that runs longer than reservation_ttl (a long generation) keeps its reservation:
// held, its expiry moves forward, so the sweeps that run in its tenant's calls leave it alone and
// its concurrency slot stays taken (and its tokens reserved) until it settles.
TEST(AdmissionHold, ARequestRunningPastTheReservationTtlKeepsItsReservation) {
  ShortLivedReservations a(900ms, "hold", 100);
  a.r.tenant.max_concurrent_requests = 1;
  auto& io = a.io;
  auto& admission = *a.admission;
  const auto admit = [&] { return a.admit(); };
  const auto first = admit();
  ASSERT_TRUE(first.admitted()) << first.limit << first.error;
  std::shared_ptr<void> held = admission.hold(*first.reservation, io.io().get_executor());
  // Three times its reservation_ttl, with the tenant's calls (and their once-a-second sweeps of
  // expired reservations) going on: the one slot stays taken.
  for (int i = 0; i < 12; ++i) {
    std::this_thread::sleep_for(250ms);
    const auto d = admit();
    ASSERT_FALSE(d.admitted()) << "the running request's reservation was released after " << (i + 1) * 250 << " ms";
    EXPECT_EQ(d.limit, "max_concurrent_requests");
  }
  // The in-flight counter lives on with it too (refused calls do not renew it; the script keeps
  // it reservation_ttl + 2 h from the last admission): a quiet tenant's request of many hours
  // must not see its slot's counter expire under it.
  const std::int64_t keep = 900 + 2 * 3600000;
  const std::int64_t inflight_ttl = io.run([&]() -> asio::awaitable<std::int64_t> {
    const std::vector<std::string> cmd{"PTTL", gateway::Admission::tenant_prefix(a.r.tenant_id) + "inflight"};
    infra::RedisReply reply = co_await a.redis.command(cmd);
    co_return reply.integer;
  }());
  EXPECT_GT(inflight_ttl, keep - 800) << "renewed every 300 ms; 3 s have passed since the admission";
  io.run([&]() -> asio::awaitable<gateway::SettleResult> {
    gateway::SettleResult s = co_await admission.settle(*first.reservation, 10);
    co_return s;
  }());
  held.reset();
  const auto after = admit();
  EXPECT_TRUE(after.admitted()) << after.limit << after.error;
}

// What shutdown waits for: a settlement nobody waits for counts as pending until its call is done.
TEST(AdmissionFailures, BackgroundSettlementsArePendingUntilTheirCallIsDone) {
  StallableAdmission a("ten_pending", 3000ms);
  const auto r = a.admitted(50);
  EXPECT_EQ(a.admission->pending(), 0u);
  a.server.pause();
  a.admission->settle_in_background(r, 20, a.io.io().get_executor());
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(a.admission->pending(), 1u);  // its call waits on Redis
  a.server.resume();
  EXPECT_EQ(a.day_counter_reaching("20"), "20");
  for (int i = 0; i < 200 && a.admission->pending() > 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(a.admission->pending(), 0u);
}

TEST(AdmissionFailures, AFailedBackgroundSettlementIsRetriedUntilRedisReturns) {
  StallableAdmission a("ten_bg_retry", 300ms);
  const auto r = a.admitted(1000);
  a.server.pause();  // Redis stalls: the settlement's call times out
  a.admission->settle_in_background(r, 100, a.io.io().get_executor());
  std::this_thread::sleep_for(500ms);
  a.server.resume();
  EXPECT_EQ(a.day_counter_reaching("100"), "100");
  const auto& errors = a.metrics.counter("infergate_admission_settle_errors_total", "").with({});
  EXPECT_GE(errors.value(), 1u);
}

// Releasing reservations admitted ahead fails while Redis stalls, and is retried until it comes
// back: nothing stays held until the reservations' expiry.
TEST(AdmissionFailures, AFailedReleaseOfUnusedReservationsIsRetried) {
  StallableAdmission a("ten_rel_retry", 300ms);
  for (int i = 0; i < 60; ++i) a.admission->settle_in_background(a.admitted(10), 1, a.io.io().get_executor());
  for (int i = 0; i < 300 && a.admission->pending() > 0; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_GT(a.admission->prefetched(), 0u) << "60 quick admissions are served ahead";
  a.server.pause();
  a.admission->release_prefetched(a.io.io().get_executor());
  std::this_thread::sleep_for(600ms);  // the release's call times out
  a.server.resume();
  EXPECT_EQ(a.day_counter_reaching("60"), "60");  // what was used, and nothing held
  const auto& errors = a.metrics.counter("infergate_admission_settle_errors_total", "").with({});
  EXPECT_GE(errors.value(), 1u);
}

// Admission ahead of demand (admission.h). A key admitted many times a second gets reservations
// admitted ahead; requests take them without a round trip, and once every request has settled
// and the unused ones are released, Redis holds exactly what the requests used: tokens, slots and
// the count of requests alike.
class PrefetchTest : public AdmissionTest {
 protected:
  PrefetchTest() : AdmissionTest(true) {}
  std::uint64_t served_ahead() {
    return metrics.counter("infergate_admission_prefetched_total", "", {"result"}).with({"used"}).value();
  }
  std::uint64_t released_unused() {
    return metrics.counter("infergate_admission_prefetched_total", "", {"result"}).with({"released"}).value();
  }
  void wait_until_sent() {
    for (int i = 0; i < 400 && admission.pending() > 0; ++i) std::this_thread::sleep_for(5ms);
    ASSERT_EQ(admission.pending(), 0u);
  }
  // The requests counted this minute and the one before (the test may cross a minute boundary).
  std::int64_t requests_counted(const std::string& prefix = "") {
    const std::int64_t minute = std::chrono::duration_cast<std::chrono::minutes>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
    return counter(prefix + "rpm:" + std::to_string(minute)) + counter(prefix + "rpm:" + std::to_string(minute - 1));
  }
};

TEST_F(PrefetchTest, ABusyKeyIsServedAheadAndRedisEndsExact) {
  auto r = request(10);
  r.tenant.requests_per_minute = 100000;
  r.tenant.max_concurrent_requests = 1000;
  r.key.tokens_per_minute = 10000000;
  r.tenant.tokens_per_day = 100000000;
  constexpr int kN = 400;
  int admitted = 0, units = 0;
  for (int i = 0; i < kN; ++i) {
    const auto d = admit(r);
    ASSERT_TRUE(d.admitted()) << i << ": " << d.limit << d.error;
    ASSERT_TRUE(d.reservation);
    EXPECT_GE(d.reservation->tokens, 10);
    ++admitted;
    if (d.reservation->id.find('#') != std::string::npos) ++units;
    admission.settle_in_background(*d.reservation, 4, io.io().get_executor());
  }
  EXPECT_GT(served_ahead(), kN / 4u) << "a busy key is served ahead";
  EXPECT_GT(units, kN / 4) << "admitted ahead in groups: units of one record each";
  // While reservations admitted ahead are held, Redis counts them (never less than used).
  wait_until_sent();
  EXPECT_GE(counter("qd:2026-11-22"), kN * 4);
  admission.release_prefetched(io.io().get_executor());
  wait_until_sent();
  EXPECT_EQ(admission.prefetched(), 0u);
  EXPECT_EQ(counter("qd:2026-11-22"), kN * 4);
  EXPECT_EQ(counter("qm:2026-11"), kN * 4);
  EXPECT_EQ(counter("inflight"), 0);
  EXPECT_EQ(counter("k:key1:inflight"), 0);
  EXPECT_EQ(requests_counted(), admitted);  // unused ones do not count as requests
  EXPECT_EQ(requests_counted("k:key1:"), admitted);
  EXPECT_GT(released_unused(), 0u);
  // Released, nothing is admitted ahead any more.
  ASSERT_TRUE(admit(r).admitted());
  EXPECT_EQ(admission.prefetched(), 0u);
}

// A busy key whose pool was emptied while its demand stayed high (here by a cooldown after a
// refusal; in service also at every minute's end) asks for a whole pool at once: 96 reservations,
// which go as groups the script accepts (at most 48 units each). None of them fails (a failed
// one would be released at once), the requests take them again, and Redis ends exact.
TEST_F(PrefetchTest, AnEmptiedPoolRefillsInGroupsTheScriptAccepts) {
  // Within one minute throughout (a minute's end releases the pool too): started again after the
  // next minute begins when fewer than 6 s of this one are left.
  const auto into_minute = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch()) % std::chrono::minutes(1);
  if (into_minute > 54s) std::this_thread::sleep_for(std::chrono::minutes(1) - into_minute + 200ms);
  auto r = request(10);
  // Admits `r` one after another on the event loop for `span`: thousands a second when served
  // ahead, hundreds when each goes to Redis.
  auto busy = [&](std::chrono::milliseconds span) {
    return io.run([&]() -> asio::awaitable<int> {
      int n = 0;
      for (const auto end = std::chrono::steady_clock::now() + span; std::chrono::steady_clock::now() < end;) {
        const gateway::AdmissionDecision d = co_await admission.admit(r);
        if (!d.admitted()) co_return -1;
        ++n;
        admission.settle_in_background(*d.reservation, 4, io.io().get_executor());
      }
      co_return n;
    }());
  };
  int admitted = busy(200ms);
  ASSERT_GT(admitted, 0);
  ASSERT_GT(served_ahead(), 0u);
  // Another key of the tenant hits its limit: the tenant's pools are released and stop for a
  // second, while key1's requests go on arriving (each to Redis).
  auto other = request(10);
  other.key_id = "key_limited";
  other.key.requests_per_minute = 1;
  const auto first = admit(other);
  ASSERT_TRUE(first.admitted());
  ASSERT_FALSE(admit(other).admitted());
  admission.settle_in_background(*first.reservation, 4, io.io().get_executor());
  wait_until_sent();
  const auto released_by_refusal = released_unused();
  EXPECT_GT(released_by_refusal, 0u);
  const auto ahead_before = served_ahead();
  const int during = busy(1500ms);  // the cooldown ends about a second in
  ASSERT_GT(during, 0);
  admitted += during + 1;
  EXPECT_EQ(released_unused(), released_by_refusal) << "an admission ahead failed and was released";
  EXPECT_GT(served_ahead(), ahead_before) << "served ahead again after the cooldown";
  wait_until_sent();
  admission.release_prefetched(io.io().get_executor());
  wait_until_sent();
  EXPECT_EQ(admission.prefetched(), 0u);
  EXPECT_EQ(counter("qd:2026-11-22"), admitted * 4);
  EXPECT_EQ(counter("inflight"), 0);
  EXPECT_EQ(requests_counted("k:key1:"), admitted - 1);
}

// Near a limit the pool shrinks, and a request refused while it holds reservations of the tenant
// has them released and is tried again: every limit admits exactly what it allows.
TEST_F(PrefetchTest, ThePoolNeverTurnsAwayARequestALimitAllows) {
  auto r = request(10);
  r.tenant.tokens_per_day = 3000;  // 300 requests of 10
  int admitted = 0;
  for (int i = 0; i < 360; ++i) {
    const auto d = admit(r);
    if (d.admitted()) {
      ++admitted;
      admission.settle_in_background(*d.reservation, 10, io.io().get_executor());
    } else {
      EXPECT_EQ(d.limit, "tokens_per_day") << i;
    }
  }
  EXPECT_EQ(admitted, 300);
  EXPECT_GT(served_ahead(), 0u);
  wait_until_sent();
  EXPECT_EQ(counter("qd:2026-11-22"), 3000);

  // Slots: 40 held at once, none settled; the 41st is refused, and all 40 come back.
  auto c = request(1);
  c.key_id = "key_conc";
  c.tenant.max_concurrent_requests = 40;
  std::vector<gateway::Reservation> held;
  for (int i = 0; i < 60; ++i) {
    const auto d = admit(c);
    if (d.admitted()) held.push_back(*d.reservation);
    else EXPECT_EQ(d.limit, "max_concurrent_requests") << i;
  }
  EXPECT_EQ(held.size(), 40u);
  for (const auto& h : held) admission.settle_in_background(h, 1, io.io().get_executor());
  admission.release_prefetched(io.io().get_executor());
  wait_until_sent();
  EXPECT_EQ(counter("inflight"), 0);
}

// Reservations admitted ahead that no request takes are released within about a second, by
// themselves.
TEST_F(PrefetchTest, UnusedReservationsGoBackWhenTheKeyGoesQuiet) {
  auto r = request(25);
  r.tenant.tokens_per_day = 1000000;
  r.tenant.max_concurrent_requests = 500;
  for (int i = 0; i < 100; ++i) {
    const auto d = admit(r);
    ASSERT_TRUE(d.admitted()) << i;
    admission.settle_in_background(*d.reservation, 5, io.io().get_executor());
  }
  ASSERT_GT(served_ahead(), 0u);
  for (int i = 0; i < 300 && (admission.prefetched() > 0 || admission.pending() > 0); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(admission.prefetched(), 0u);
  EXPECT_EQ(admission.pending(), 0u);
  EXPECT_EQ(counter("qd:2026-11-22"), 100 * 5);
  EXPECT_EQ(counter("inflight"), 0);
  EXPECT_EQ(requests_counted(), 100);
}

// With admission.prefetch off every request makes its own admission.
TEST(AdmissionPrefetchOff, EveryRequestGoesToRedis) {
  ShortLivedReservations a(infra::AdmissionConfig{}.reservation_ttl, "pfo", 3);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(a.admit().admitted());
  EXPECT_EQ(a.admission->prefetched(), 0u);
  EXPECT_EQ(a.metrics.counter("infergate_admission_prefetched_total", "", {"result"}).with({"used"}).value(), 0u);
  EXPECT_EQ(a.metrics.histogram("infergate_admission_batch_size", "", {}).with({}).sum(), 100.0);
}

TEST_F(AdmissionTest, ScriptFlushIsRecoveredFromNoscript) {
  ASSERT_TRUE(admit(request(1)).admitted());
  io.run([&]() -> asio::awaitable<int> {
    const std::vector<std::string> flush{"SCRIPT", "FLUSH"};
    co_await redis.command(flush);
    co_return 0;
  }());
  EXPECT_TRUE(admit(request(1)).admitted());
}

}  // namespace
}  // namespace infergate
