// Billing time pieces without a database: strict RFC 3339 parsing to microseconds and back, and
// calendar-month periods ("YYYY-MM") with their local wall-clock bounds.
#include <gtest/gtest.h>

#include "infergate/billing/billing_error.h"
#include "infergate/billing/period.h"
#include "infergate/billing/timestamp.h"

namespace infergate::billing {
namespace {

constexpr std::int64_t kS = 1'000'000;

TEST(Rfc3339Test, ParsesUtcOffsetsAndFractions) {
  EXPECT_EQ(parse_rfc3339_us("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_rfc3339_us("2026-03-01T00:00:00Z"), 1772323200 * kS);
  EXPECT_EQ(parse_rfc3339_us("2026-03-01T01:00:00+01:00"), 1772323200 * kS);
  EXPECT_EQ(parse_rfc3339_us("2026-02-28T19:00:00-05:00"), 1772323200 * kS);
  EXPECT_EQ(parse_rfc3339_us("2026-03-01t00:00:00.5z"), 1772323200 * kS + 500000);
  EXPECT_EQ(parse_rfc3339_us("2026-03-01T00:00:00.123456789Z"), 1772323200 * kS + 123456);
  EXPECT_EQ(parse_rfc3339_us("1969-12-31T23:59:59.999Z"), -1000);
  EXPECT_EQ(parse_rfc3339_us("2024-02-29T12:00:00Z"), 1709208000 * kS);  // leap day
}

TEST(Rfc3339Test, RefusesAnythingElseSayingWhy) {
  for (const char* bad :
       {"", "2026-03-01", "2026-03-01T00:00:00", "2026-03-01 00:00:00Z", "2026-3-01T00:00:00Z",
        "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z", "2026-04-31T00:00:00Z",
        "2026-03-01T24:00:00Z", "2026-03-01T00:60:00Z", "2026-03-01T00:00:60Z",
        "2026-03-01T00:00:00.Z", "2026-03-01T00:00:00.1234567890Z", "2026-03-01T00:00:00+0100",
        "2026-03-01T00:00:00+24:00", "2026-03-01T00:00:00Zjunk", "1772323200"}) {
    EXPECT_THROW(parse_rfc3339_us(bad), std::invalid_argument) << bad;
  }
  // A '+' decoded from a URL query arrives as a space: the message says how to send it.
  try {
    parse_rfc3339_us("2026-03-01T00:00:00 01:00");
    ADD_FAILURE();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("%2B"), std::string::npos) << e.what();
  }
}

TEST(Rfc3339Test, FormatsUtcWithMillisecondsAndRoundTrips) {
  EXPECT_EQ(format_rfc3339_us(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339_us(1772323200 * kS + 999999), "2026-03-01T00:00:00.999Z");
  EXPECT_EQ(format_rfc3339_us(-1000), "1969-12-31T23:59:59.999Z");
  for (std::int64_t us : {0LL, 951782400LL * kS, 4102444799LL * kS + 123000})
    EXPECT_EQ(parse_rfc3339_us(format_rfc3339_us(us)), us);
  std::int64_t y = 0;
  int m = 0, d = 0;
  for (std::int64_t day = -800000; day < 800000; day += 997) {
    civil_from_days(day, y, m, d);
    ASSERT_EQ(days_from_civil(y, m, d), day);
  }
}

TEST(BillingMonthTest, ParsesStrictlyAndNamesTheParam) {
  EXPECT_EQ(BillingMonth::parse("2026-03"), (BillingMonth{2026, 3}));
  EXPECT_EQ(BillingMonth::parse("1970-01").to_string(), "1970-01");
  for (const char* bad : {"", "2026-3", "2026-13", "2026-00", "26-03", "2026/03", "2026-03-01",
                          " 2026-03", "1969-12", "2026-0a"}) {
    try {
      BillingMonth::parse(bad, "period");
      ADD_FAILURE() << bad;
    } catch (const BillingError& e) {
      EXPECT_EQ(e.param(), "period");
      EXPECT_EQ(e.kind(), BillingError::Kind::invalid);
    }
  }
}

TEST(BillingMonthTest, BoundsAreHalfOpenLocalMonths) {
  const BillingMonth dec{2025, 12};
  EXPECT_EQ(dec.next(), (BillingMonth{2026, 1}));
  EXPECT_EQ(dec.local_start(), "2025-12-01 00:00:00");
  EXPECT_EQ(dec.local_end(), "2026-01-01 00:00:00");
  EXPECT_EQ((BillingMonth{2024, 2}).local_end(), "2024-03-01 00:00:00");
  EXPECT_LT((BillingMonth{2025, 12}), (BillingMonth{2026, 1}));
}

}  // namespace
}  // namespace infergate::billing
