// KeyCache: hits, cached absence, TTL, bounded size with oldest-first eviction, and the
// targeted erasures used by cache invalidation.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "infergate/gateway/auth.h"

namespace infergate::gateway {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<const KeyRecord> record(const std::string& key_id,
                                        std::optional<std::string> tenant_id,
                                        const std::string& plan_id) {
  KeyRecord r;
  r.secret_sha256 = std::string(32, 'x');
  r.principal.key_id = key_id;
  r.principal.tenant_id = std::move(tenant_id);
  r.principal.tenant_name = "tenant";
  r.principal.scopes = {"inference"};
  r.principal.plan_id = plan_id;
  r.tenant_status = "active";
  return std::make_shared<const KeyRecord>(std::move(r));
}

bool cached(KeyCache& c, const std::string& id) { return c.get(id).has_value(); }

TEST(KeyCacheTest, MissThenHit) {
  KeyCache c(10s, 100);
  EXPECT_FALSE(c.get("k1").has_value());
  auto rec = record("k1", "t1", "p1");
  c.put("k1", rec);
  auto got = c.get("k1");
  ASSERT_TRUE(got.has_value());
  ASSERT_NE(*got, nullptr);
  EXPECT_EQ(got->get(), rec.get());
  EXPECT_EQ((*got)->principal.key_id, "k1");
  EXPECT_EQ(c.size(), 1u);
  EXPECT_FALSE(c.get("k2").has_value());
}

TEST(KeyCacheTest, CachedAbsenceIsEngagedNull) {
  KeyCache c(10s, 100);
  c.put("ghost", nullptr);
  auto got = c.get("ghost");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, nullptr);
  EXPECT_EQ(c.size(), 1u);
}

TEST(KeyCacheTest, EntriesExpireAfterTtl) {
  KeyCache c(50ms, 100);
  c.put("k1", record("k1", "t1", "p1"));
  c.put("ghost", nullptr);
  EXPECT_TRUE(cached(c, "k1"));
  EXPECT_TRUE(cached(c, "ghost"));
  std::this_thread::sleep_for(80ms);
  EXPECT_FALSE(c.get("k1").has_value());
  EXPECT_FALSE(c.get("ghost").has_value());
  EXPECT_EQ(c.size(), 0u);  // a stale entry is dropped when found
}

TEST(KeyCacheTest, ZeroTtlCachesNothing) {
  KeyCache c(0ms, 100);
  c.put("k1", record("k1", "t1", "p1"));
  c.put("ghost", nullptr);
  EXPECT_EQ(c.size(), 0u);
  EXPECT_FALSE(c.get("k1").has_value());
  EXPECT_FALSE(c.get("ghost").has_value());
}

TEST(KeyCacheTest, EvictsOldestFirstAtCapacity) {
  KeyCache c(10s, 3);
  c.put("k1", record("k1", "t1", "p1"));
  c.put("k2", record("k2", "t1", "p1"));
  c.put("k3", nullptr);
  EXPECT_EQ(c.size(), 3u);
  c.put("k4", record("k4", "t1", "p1"));
  EXPECT_EQ(c.size(), 3u);
  EXPECT_FALSE(cached(c, "k1"));
  EXPECT_TRUE(cached(c, "k2"));
  EXPECT_TRUE(cached(c, "k3"));
  EXPECT_TRUE(cached(c, "k4"));
  c.put("k5", record("k5", "t1", "p1"));
  EXPECT_EQ(c.size(), 3u);
  EXPECT_FALSE(cached(c, "k2"));
  EXPECT_TRUE(cached(c, "k3"));
  EXPECT_TRUE(cached(c, "k4"));
  EXPECT_TRUE(cached(c, "k5"));
}

TEST(KeyCacheTest, RePutReplacesValueAndRefreshesOrder) {
  KeyCache c(10s, 3);
  c.put("k1", record("k1", "t1", "p1"));
  c.put("k2", record("k2", "t1", "p1"));
  c.put("k3", record("k3", "t1", "p1"));
  // k1 becomes the newest; the next insertion evicts k2 instead.
  auto replacement = record("k1", "t9", "p9");
  c.put("k1", replacement);
  EXPECT_EQ(c.size(), 3u);
  c.put("k4", record("k4", "t1", "p1"));
  EXPECT_EQ(c.size(), 3u);
  EXPECT_FALSE(cached(c, "k2"));
  auto got = c.get("k1");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->get(), replacement.get());
  EXPECT_EQ((*got)->principal.tenant_id, std::optional<std::string>("t9"));
  EXPECT_TRUE(cached(c, "k3"));
  EXPECT_TRUE(cached(c, "k4"));
}

TEST(KeyCacheTest, RePutRefreshesTtl) {
  KeyCache c(400ms, 100);
  c.put("k1", record("k1", "t1", "p1"));
  std::this_thread::sleep_for(250ms);
  c.put("k1", record("k1", "t1", "p1"));  // loaded again: a new TTL starts
  std::this_thread::sleep_for(250ms);     // 500ms after the first put, 250ms after the second
  EXPECT_TRUE(cached(c, "k1"));
}

TEST(KeyCacheTest, RePutCanTurnAbsenceIntoRecord) {
  KeyCache c(10s, 100);
  c.put("k1", nullptr);
  c.put("k1", record("k1", "t1", "p1"));
  auto got = c.get("k1");
  ASSERT_TRUE(got.has_value());
  ASSERT_NE(*got, nullptr);
  EXPECT_EQ(c.size(), 1u);
}

TEST(KeyCacheTest, EraseKey) {
  KeyCache c(10s, 100);
  c.put("k1", record("k1", "t1", "p1"));
  c.put("k2", record("k2", "t1", "p1"));
  c.put("ghost", nullptr);
  c.erase_key("k1");
  EXPECT_FALSE(cached(c, "k1"));
  EXPECT_TRUE(cached(c, "k2"));
  c.erase_key("ghost");
  EXPECT_FALSE(cached(c, "ghost"));
  c.erase_key("never-there");
  EXPECT_EQ(c.size(), 1u);
}

TEST(KeyCacheTest, EraseKeyKeepsEvictionOrderConsistent) {
  KeyCache c(10s, 2);
  c.put("k1", record("k1", "t1", "p1"));
  c.erase_key("k1");
  c.put("k2", record("k2", "t1", "p1"));
  c.put("k3", record("k3", "t1", "p1"));
  EXPECT_EQ(c.size(), 2u);
  EXPECT_TRUE(cached(c, "k2"));
  EXPECT_TRUE(cached(c, "k3"));
  c.put("k4", record("k4", "t1", "p1"));
  EXPECT_EQ(c.size(), 2u);
  EXPECT_FALSE(cached(c, "k2"));
  EXPECT_TRUE(cached(c, "k3"));
  EXPECT_TRUE(cached(c, "k4"));
}

TEST(KeyCacheTest, EraseTenantRemovesOnlyThatTenant) {
  KeyCache c(10s, 100);
  c.put("a1", record("a1", "tA", "p1"));
  c.put("a2", record("a2", "tA", "p2"));
  c.put("b1", record("b1", "tB", "p1"));
  c.put("admin", record("admin", std::nullopt, ""));
  c.put("ghost", nullptr);
  c.erase_tenant("tA");
  EXPECT_FALSE(cached(c, "a1"));
  EXPECT_FALSE(cached(c, "a2"));
  EXPECT_TRUE(cached(c, "b1"));
  EXPECT_TRUE(cached(c, "admin"));
  EXPECT_TRUE(cached(c, "ghost"));
  EXPECT_EQ(c.size(), 3u);
  c.erase_tenant("tZ");
  EXPECT_EQ(c.size(), 3u);
}

TEST(KeyCacheTest, ErasePlanRemovesOnlyThatPlan) {
  KeyCache c(10s, 100);
  c.put("a1", record("a1", "tA", "p1"));
  c.put("a2", record("a2", "tA", "p2"));
  c.put("b1", record("b1", "tB", "p1"));
  c.put("ghost", nullptr);
  c.erase_plan("p1");
  EXPECT_FALSE(cached(c, "a1"));
  EXPECT_TRUE(cached(c, "a2"));
  EXPECT_FALSE(cached(c, "b1"));
  EXPECT_TRUE(cached(c, "ghost"));
  EXPECT_EQ(c.size(), 2u);
}

TEST(KeyCacheTest, ErasuresFreeCapacity) {
  KeyCache c(10s, 3);
  c.put("a1", record("a1", "tA", "p1"));
  c.put("b1", record("b1", "tB", "p1"));
  c.put("b2", record("b2", "tB", "p1"));
  c.erase_tenant("tA");
  c.put("c1", record("c1", "tC", "p1"));  // room was freed: nothing evicted
  EXPECT_EQ(c.size(), 3u);
  EXPECT_TRUE(cached(c, "b1"));
  EXPECT_TRUE(cached(c, "b2"));
  EXPECT_TRUE(cached(c, "c1"));
}

TEST(KeyCacheTest, ClearAndSize) {
  KeyCache c(10s, 100);
  EXPECT_EQ(c.size(), 0u);
  c.put("k1", record("k1", "t1", "p1"));
  c.put("k2", nullptr);
  EXPECT_EQ(c.size(), 2u);
  c.clear();
  EXPECT_EQ(c.size(), 0u);
  EXPECT_FALSE(cached(c, "k1"));
  EXPECT_FALSE(cached(c, "k2"));
  c.put("k3", record("k3", "t1", "p1"));
  EXPECT_EQ(c.size(), 1u);
  EXPECT_TRUE(cached(c, "k3"));
}

TEST(KeyCacheTest, ConcurrentUseStaysBounded) {
  KeyCache c(10s, 50);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&c, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::string id = "k" + std::to_string(t) + "_" + std::to_string(i % 100);
        c.put(id, i % 3 == 0 ? nullptr : record(id, "t" + std::to_string(t), "p"));
        (void)c.get(id);
        if (i % 50 == 0) c.erase_tenant("t" + std::to_string(t));
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(c.size(), 50u);
}

// Past half its TTL, one lookup (and only one) is told to reload the entry; the others go on
// using it. What is put back starts a new TTL; a reload that failed can be claimed again after
// an eighth of the TTL, one whose read an invalidation overtook at once. (Margins of a second:
// a stalled CI machine must not turn "within the TTL" into "past it".)
TEST(KeyCacheTest, OneLookupPastHalfTheTtlIsToldToReload) {
  KeyCache c(2000ms, 100);
  c.put("k1", record("k1", "t1", "p1"));
  bool due = true;
  ASSERT_TRUE(c.get("k1", &due).has_value());
  EXPECT_FALSE(due);  // fresh
  std::this_thread::sleep_for(1050ms);
  ASSERT_TRUE(c.get("k1", &due).has_value());
  EXPECT_TRUE(due);
  ASSERT_TRUE(c.get("k1", &due).has_value());
  EXPECT_FALSE(due);  // claimed already
  EXPECT_TRUE(c.get("k1").has_value());

  c.refresh_failed("k1");
  ASSERT_TRUE(c.get("k1", &due).has_value());
  EXPECT_FALSE(due);  // not at once after a failure
  std::this_thread::sleep_for(300ms);
  ASSERT_TRUE(c.get("k1", &due).has_value());
  EXPECT_TRUE(due);  // claimable again

  // Read before an invalidation: not stored, and the claim is given up.
  const auto before = c.generation();
  c.erase_tenant("someone-else");
  c.put("k1", record("k1", "t1", "p2"), before);
  auto got = c.get("k1", &due);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ((*got)->principal.plan_id, "p1");
  EXPECT_TRUE(due);

  // Stored: a new TTL, nothing due.
  c.put("k1", record("k1", "t1", "p3"), c.generation());
  got = c.get("k1", &due);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ((*got)->principal.plan_id, "p3");
  EXPECT_FALSE(due);
  std::this_thread::sleep_for(2050ms);
  EXPECT_FALSE(c.get("k1", &due).has_value());  // never reloaded: gone at its TTL, as before
  EXPECT_FALSE(due);
}

}  // namespace
}  // namespace infergate::gateway
