// Usage reports and prices against a real Postgres: buckets in a time zone, grouping, exact
// cost by the price in force at each request's start, keyset pagination, CSV, and refusals.
#include "billing_fixture.h"

#include "infergate/billing/timestamp.h"
#include "infergate/billing/usage_report.h"

#include <algorithm>
#include <set>

namespace infergate {
namespace {

using billing::BillingError;
using Kind = BillingError::Kind;
using billing::parse_rfc3339_us;

class UsageReport : public test::BillingDb {
 protected:
  billing::UsagePage report(billing::UsageQuery q) {
    return in_tx([&](pqxx::work& tx) { return billing::usage_report(tx, q); });
  }
  static billing::UsageQuery range(const char* start, const char* end) {
    billing::UsageQuery q;
    q.start_us = parse_rfc3339_us(start);
    q.end_us = parse_rfc3339_us(end);
    return q;
  }
};

TEST_F(UsageReport, DailyBucketsInTheTenantsTimeZoneWithExactCost) {
  const std::string t = tenant("tokyo", "Asia/Tokyo", "JPY");
  price("m", "input", "150", "2026-01-01T00:00:00Z", "JPY");
  price("m", "output", "600", "2026-01-01T00:00:00Z", "JPY");
  price("m", "output", "900", "2026-01-02T00:00:00+09:00", "JPY");  // from Tokyo's Jan 2
  usage(t, "a", "m", "2026-01-01T23:59:59.999+09:00", 1000, 10);   // Jan 1 Tokyo
  usage(t, "b", "m", "2026-01-02T00:00:00+09:00", 2000, 20, 500);  // Jan 2 Tokyo
  usage(t, "c", "m", "2026-01-02T10:00:00+09:00", 0, 0, 0, std::nullopt, "refused");
  auto q = range("2026-01-01T00:00:00+09:00", "2026-01-03T00:00:00+09:00");
  q.tenant = "tokyo";
  q.bucket = "1d";
  auto page = report(q);
  EXPECT_EQ(page.timezone, "Asia/Tokyo");
  ASSERT_EQ(page.rows.size(), 2u);
  EXPECT_EQ(billing::format_rfc3339_us(page.rows[0].bucket_start_us), "2025-12-31T15:00:00.000Z");
  EXPECT_EQ(billing::format_rfc3339_us(page.rows[0].bucket_end_us), "2026-01-01T15:00:00.000Z");
  EXPECT_EQ(page.rows[0].requests, 1);
  EXPECT_EQ(page.rows[0].prompt_tokens, 1000);
  // 1000 x 150 / 1e6 + 10 x 600 / 1e6 = 0.15 + 0.006
  EXPECT_EQ(page.rows[0].cost, billing::Decimal::parse("0.156"));
  EXPECT_EQ(page.rows[1].requests, 2);
  EXPECT_EQ(page.rows[1].refused, 1);
  EXPECT_EQ(page.rows[1].completed, 1);
  EXPECT_EQ(page.rows[1].cached_tokens, 500);
  // 500 cached tokens without a cached_input price are billed as input: 2000 x 150 + 20 x 900.
  EXPECT_EQ(page.rows[1].cost, billing::Decimal::parse("0.318"));
  EXPECT_EQ(page.rows[1].unpriced_tokens, 0);
  EXPECT_EQ(page.rows[0].currency, "JPY");
  // The same range cut in UTC days: a (14:59Z) and b (15:00Z) fall on Jan 1, c on Jan 2.
  q.timezone = "UTC";
  auto utc = report(q);
  EXPECT_EQ(utc.timezone, "UTC");
  ASSERT_EQ(utc.rows.size(), 2u);
  EXPECT_EQ(billing::format_rfc3339_us(utc.rows[0].bucket_start_us), "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(utc.rows[0].requests, 2);
  EXPECT_EQ(utc.rows[1].requests, 1);
}

// Cached prompt tokens cost the cached_input price where one is in force, else the input price;
// with neither they are unpriced.
TEST_F(UsageReport, CachedTokensCostTheCachePriceInForceElseTheInputPrice) {
  const std::string t = tenant("cache");
  price("m", "input", "4", "2026-03-01T00:00:00Z");
  price("m", "cached_input", "1", "2026-03-10T00:00:00Z");
  usage(t, "a", "m", "2026-03-05T00:00:00Z", 1000, 0, 400);  // 1000 x 4
  usage(t, "b", "m", "2026-03-15T00:00:00Z", 1000, 0, 400);  // 600 x 4 + 400 x 1
  usage(t, "c", "n", "2026-03-15T00:00:00Z", 100, 0, 30);    // model n has no price: unpriced
  auto q = range("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z");
  billing::parse_group_by("model", q);
  const auto page = report(q);
  ASSERT_EQ(page.rows.size(), 2u);
  EXPECT_EQ(*page.rows[0].model, "m");
  EXPECT_EQ(page.rows[0].cached_tokens, 800);
  EXPECT_EQ(page.rows[0].cost, billing::Decimal::parse("0.0068"));
  EXPECT_EQ(page.rows[0].unpriced_tokens, 0);
  EXPECT_EQ(*page.rows[1].model, "n");
  EXPECT_EQ(page.rows[1].unpriced_tokens, 100);
  EXPECT_EQ(page.rows[1].cost, billing::Decimal::parse("0"));
}

TEST_F(UsageReport, GroupsFiltersAndPagesThroughEveryRowOnce) {
  const std::string a = tenant("a"), b = tenant("b", "UTC", "EUR");
  const std::string key_a = in_tx([&](pqxx::work& tx) {
    gateway::accounts::NewKey k;
    k.tenant = a;
    k.scopes = {"inference"};
    return gateway::accounts::create_key(tx, k, "test").key.id;
  });
  for (int h = 0; h < 6; ++h) {
    const std::string at = "2026-02-01T0" + std::to_string(h) + ":30:00Z";
    usage(a, "a" + std::to_string(h), h % 2 ? "m1" : "m2", at, 10, 1, 0, key_a);
    usage(b, "b" + std::to_string(h), "m1", at, 20, 2);
  }
  auto q = range("2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z");
  q.bucket = "1h";
  billing::parse_group_by("tenant,model", q);
  std::int64_t requests = 0, rows = 0;
  std::optional<std::string> cursor;
  std::set<std::string> seen;
  do {
    q.cursor = cursor;
    q.limit = 4;
    auto page = report(q);
    for (const auto& r : page.rows) {
      ++rows;
      requests += r.requests;
      EXPECT_TRUE(seen.insert(std::to_string(r.bucket_start_us) + *r.tenant_id + *r.model).second);
      EXPECT_EQ(r.currency, *r.tenant_id == b ? "EUR" : "USD");
    }
    cursor = page.next_cursor;
  } while (cursor);
  EXPECT_EQ(rows, 12);
  EXPECT_EQ(requests, 12);
  // Filters: one key; one model; one tenant by name.
  auto byk = range("2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z");
  byk.api_key_id = key_a;
  billing::parse_group_by("key", byk);
  auto pk = report(byk);
  ASSERT_EQ(pk.rows.size(), 1u);
  EXPECT_EQ(pk.rows[0].requests, 6);
  EXPECT_EQ(*pk.rows[0].api_key_id, key_a);
  auto bym = range("2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z");
  bym.model = "m2";
  EXPECT_EQ(report(bym).rows.at(0).requests, 3);
  // End is exclusive.
  auto half = range("2026-02-01T00:00:00Z", "2026-02-01T00:30:00Z");
  EXPECT_TRUE(report(half).rows.empty());
  // CSV: a header and one line per row.
  const std::string csv = billing::usage_csv(report(bym).rows);
  EXPECT_EQ(csv.rfind("bucket_start,bucket_end,tenant_id,api_key_id,model,requests,", 0), 0u);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 2);
}

TEST_F(UsageReport, RefusesBadInputsNamingTheParameter) {
  const std::string a = tenant("a"), b = tenant("b");
  const std::string key_b = in_tx([&](pqxx::work& tx) {
    gateway::accounts::NewKey k;
    k.tenant = b;
    k.scopes = {"inference"};
    return gateway::accounts::create_key(tx, k, "test").key.id;
  });
  struct Case {
    std::function<void(billing::UsageQuery&)> change;
    Kind kind;
    std::string param;
  } cases[] = {
      {[](auto& q) { std::swap(q.start_us, q.end_us); }, Kind::invalid, "end"},
      {[](auto& q) { q.end_us = q.start_us; }, Kind::invalid, "end"},
      {[](auto& q) { q.bucket = "1w"; }, Kind::invalid, "bucket"},
      {[](auto& q) { q.timezone = "Mars/Olympus"; }, Kind::invalid, "tz"},
      {[](auto& q) { q.tenant = "nobody"; }, Kind::not_found, "tenant"},
      {[&](auto& q) { q.tenant = "a", q.api_key_id = key_b; }, Kind::not_found, "key"},
      {[](auto& q) { q.api_key_id = "nokey"; }, Kind::not_found, "key"},
      {[](auto& q) { q.cursor = "zz"; }, Kind::invalid, "cursor"},
      {[](auto& q) { q.cursor = "5b315d"; }, Kind::invalid, "cursor"},  // "[1]"
      {[](auto& q) { q.limit = 0; }, Kind::invalid, "limit"},
      {[](auto& q) { billing::parse_group_by("tenant,team", q); }, Kind::invalid, "group_by"},
      {[](auto& q) { billing::parse_group_by("", q); }, Kind::invalid, "group_by"},
  };
  for (auto& c : cases) {
    auto e = billing_error([&](pqxx::work& tx) {
      auto q = range("2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z");
      c.change(q);
      billing::usage_report(tx, q);
    });
    EXPECT_EQ(e.param(), c.param) << e.what();
    EXPECT_EQ(e.kind(), c.kind) << e.what();
  }
}

TEST_F(UsageReport, PricesAreValidatedStrictlyAndListedInPages) {
  struct Case {
    billing::NewPrice p;
    std::string param;
  } cases[] = {
      {{"", "input", "1", "USD", "2026-01-01T00:00:00Z"}, "model"},
      {{"m", "prompt", "1", "USD", "2026-01-01T00:00:00Z"}, "token_class"},
      {{"m", "input", "-1", "USD", "2026-01-01T00:00:00Z"}, "price_per_million"},
      {{"m", "input", "1e3", "USD", "2026-01-01T00:00:00Z"}, "price_per_million"},
      {{"m", "input", ".5", "USD", "2026-01-01T00:00:00Z"}, "price_per_million"},
      {{"m", "input", "0.1234567890123", "USD", "2026-01-01T00:00:00Z"}, "price_per_million"},
      {{"m", "input", "1000000000000", "USD", "2026-01-01T00:00:00Z"}, "price_per_million"},
      {{"m", "input", "1", "usd", "2026-01-01T00:00:00Z"}, "currency"},
      {{"m", "input", "1", "US", "2026-01-01T00:00:00Z"}, "currency"},
      {{"m", "input", "1", "USD", "2026-01-01"}, "effective_from"},
      {{"m", "input", "1", "USD", "2026-02-30T00:00:00Z"}, "effective_from"},
  };
  for (auto& c : cases) {
    auto e = billing_error([&](pqxx::work& tx) { billing::add_price(tx, c.p); });
    EXPECT_EQ(e.param(), c.param) << e.what();
    EXPECT_EQ(e.kind(), Kind::invalid);
  }
  EXPECT_EQ(count("SELECT count(*) FROM price_versions"), 0);
  const auto v = price("m", "input", "0.000000000001", "2026-01-01T01:00:00+01:00");
  EXPECT_EQ(v.effective_from, "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(v.price_per_million.to_string(), "0.000000000001");
  auto dup = billing_error([&](pqxx::work& tx) {
    billing::add_price(tx, {"m", "input", "2", "USD", "2026-01-01T00:00:00Z"});
  });
  EXPECT_EQ(dup.kind(), Kind::conflict);
  EXPECT_EQ(dup.param(), "effective_from");
  for (int i = 1; i <= 6; ++i)
    price(i % 2 ? "m" : "n", "output", std::to_string(i), "2026-0" + std::to_string(i) + "-01T00:00:00Z");
  std::vector<std::string> ids;
  std::optional<std::string> cursor;
  do {
    auto page = in_tx([&](pqxx::work& tx) {
      return billing::list_prices(tx, std::nullopt, std::nullopt, cursor, 3);
    });
    for (const auto& p : page.prices) ids.push_back(p.id);
    cursor = page.next_cursor;
  } while (cursor);
  EXPECT_EQ(ids.size(), 7u);
  EXPECT_EQ(in_tx([&](pqxx::work& tx) {
              return billing::list_prices(tx, std::string("n"), std::nullopt, std::nullopt, 100);
            }).prices.size(),
            3u);
}

}  // namespace
}  // namespace infergate
