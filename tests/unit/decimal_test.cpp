// Exact decimals for money: strict parsing, shortest text, rounding half away from zero, price
// arithmetic and overflow.
#include "infergate/billing/decimal.h"

#include <cstdint>
#include <limits>
#include <string>

#include <gtest/gtest.h>

namespace infergate::billing {
namespace {

std::string canon(std::string_view text) {
  return Decimal::parse(text).to_string();
}

template <class F>
std::string decimal_error(F&& f) {
  try {
    f();
  } catch (const DecimalError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a DecimalError";
  return {};
}

TEST(DecimalTest, ParseAndToStringRoundTrip) {
  EXPECT_EQ(canon("0"), "0");
  EXPECT_EQ(canon("-0"), "0");
  EXPECT_EQ(canon("0.000"), "0");
  EXPECT_EQ(canon("-0.00"), "0");
  EXPECT_EQ(canon("1"), "1");
  EXPECT_EQ(canon("-1.50"), "-1.5");
  EXPECT_EQ(canon("0.000001"), "0.000001");
  EXPECT_EQ(canon("-0.000001"), "-0.000001");
  EXPECT_EQ(canon("12.3400"), "12.34");
  EXPECT_EQ(canon("100"), "100");
  EXPECT_EQ(canon("100.0"), "100");
  EXPECT_EQ(canon("007.50"), "7.5");
  EXPECT_EQ(canon("-0.5"), "-0.5");
  EXPECT_EQ(canon("123456789012345678.123456789012"), "123456789012345678.123456789012");
  // 30 digits after the point is the most there can be.
  const std::string thirty = "0.000000000000000000000000000001";
  EXPECT_EQ(canon(thirty), thirty);
  EXPECT_EQ(Decimal::parse(thirty).scale(), 30);
}

TEST(DecimalTest, ParseKeepsTheScale) {
  EXPECT_EQ(Decimal::parse("1.50").scale(), 2);
  EXPECT_EQ(Decimal::parse("1").scale(), 0);
  EXPECT_EQ(Decimal::parse("-0.000").scale(), 3);
  EXPECT_TRUE(Decimal::parse("-1.5").is_negative());
  EXPECT_FALSE(Decimal::parse("-0").is_negative());
  EXPECT_FALSE(Decimal::parse("2").is_negative());
}

TEST(DecimalTest, BadInputsThrow) {
  const std::string thirty_one = "0.0000000000000000000000000000001";
  for (const std::string& bad :
       {std::string(""), std::string("-"), std::string("1."), std::string("."), std::string("-."),
        std::string(".5."), std::string("1.2.3"), std::string("1e5"), std::string("+1"),
        std::string(" 1"), std::string("1 "), std::string("abc"), std::string("1,5"),
        std::string("--1"), std::string("0x10"), std::string("1_000"), thirty_one}) {
    EXPECT_THROW(Decimal::parse(bad), DecimalError) << '"' << bad << '"';
  }
}

TEST(DecimalTest, ErrorMessagesSayWhatIsWrong) {
  EXPECT_EQ(decimal_error([] { Decimal::parse(""); }), "empty decimal: expected digits like 1.25");
  EXPECT_EQ(decimal_error([] { Decimal::parse("1.2.3"); }),
            "not a decimal: \"1.2.3\" has two points");
  EXPECT_EQ(decimal_error([] { Decimal::parse("1."); }), "not a decimal: \"1.\" ends with '.'");
  EXPECT_EQ(decimal_error([] { Decimal::parse("-"); }), "not a decimal: \"-\" has no digits");
  EXPECT_EQ(decimal_error([] { Decimal::parse("1e5"); }),
            "not a decimal: \"1e5\" (expected digits and at most one '.')");
  EXPECT_EQ(decimal_error([] { Decimal::parse("0.0000000000000000000000000000001"); }),
            "decimal \"0.0000000000000000000000000000001\" has more than 30 digits after the "
            "point");
}

TEST(DecimalTest, LeadingPointIsRejected) {
  // The grammar is "optional '-', digits, optional '.' and digits": a digit comes first.
  EXPECT_THROW(Decimal::parse(".5"), DecimalError);
  EXPECT_THROW(Decimal::parse("-.5"), DecimalError);
}

TEST(DecimalTest, RoundHalfAwayFromZero) {
  auto round = [](std::string_view text, int digits) {
    return Decimal::parse(text).round_half_away(digits).to_string_fixed(digits);
  };
  EXPECT_EQ(round("1.005", 2), "1.01");
  EXPECT_EQ(round("-1.005", 2), "-1.01");
  EXPECT_EQ(round("1.004", 2), "1.00");
  EXPECT_EQ(round("-1.004", 2), "-1.00");
  EXPECT_EQ(round("1.0049999", 2), "1.00");
  EXPECT_EQ(round("2.5", 0), "3");
  EXPECT_EQ(round("-2.5", 0), "-3");
  EXPECT_EQ(round("2.4999", 0), "2");
  EXPECT_EQ(round("0.5", 0), "1");
  EXPECT_EQ(round("-0.5", 0), "-1");
  EXPECT_EQ(round("-0.4", 0), "0");
  EXPECT_EQ(round("9.995", 2), "10.00");
  EXPECT_EQ(round("0.18518505", 2), "0.19");
  // Fewer digits than asked: unchanged.
  EXPECT_EQ(round("1.5", 4), "1.5000");
  EXPECT_EQ(Decimal::parse("1.5").round_half_away(4).scale(), 1);
  EXPECT_EQ(Decimal::parse("1.23456").round_half_away(3).scale(), 3);
  EXPECT_THROW(Decimal::parse("1").round_half_away(-1), DecimalError);
  EXPECT_THROW(Decimal::parse("1").round_half_away(31), DecimalError);
}

TEST(DecimalTest, ToMinorUnits) {
  EXPECT_EQ(Decimal::parse("1.005").to_minor_units(2), 101);
  EXPECT_EQ(Decimal::parse("-1.005").to_minor_units(2), -101);
  EXPECT_EQ(Decimal::parse("12").to_minor_units(2), 1200);
  EXPECT_EQ(Decimal::parse("0.18518505").to_minor_units(2), 19);
  EXPECT_EQ(Decimal::parse("0.18518505").to_minor_units(6), 185185);
  EXPECT_EQ(Decimal::parse("0.0049").to_minor_units(2), 0);
  EXPECT_EQ(Decimal::parse("7.5").to_minor_units(0), 8);
  EXPECT_EQ(Decimal::parse("92233720368547758.07").to_minor_units(2),
            std::numeric_limits<std::int64_t>::max());
  EXPECT_THROW(Decimal::parse("92233720368547758.08").to_minor_units(2), DecimalError);
  EXPECT_THROW(Decimal::parse("-92233720368547758.09").to_minor_units(2), DecimalError);
}

TEST(DecimalTest, PricePerMillionTokens) {
  // $0.15 per million tokens, 1,234,567 tokens.
  Decimal cost = Decimal::parse("0.15").shift_left(6) * 1234567;
  EXPECT_EQ(cost.to_string(), "0.18518505");
  EXPECT_EQ(cost.scale(), 8);
  EXPECT_EQ(Decimal::parse("0.15").shift_left(6).to_string(), "0.00000015");
  EXPECT_EQ((Decimal::parse("2.50").shift_left(6) * 1000000).to_string(), "2.5");
  EXPECT_EQ((Decimal::parse("10").shift_left(6) * 0).to_string(), "0");
  EXPECT_EQ((Decimal::parse("0.15") * -3).to_string(), "-0.45");
  EXPECT_EQ(Decimal::parse("1").shift_left(0).to_string(), "1");
  EXPECT_THROW(Decimal::parse("1").shift_left(-1), DecimalError);
  EXPECT_THROW(Decimal::parse("0.1").shift_left(30), DecimalError);
  EXPECT_EQ(Decimal::parse("0.1").shift_left(29).scale(), 30);
}

TEST(DecimalTest, SumOfManySmallCostsIsExact) {
  Decimal total;
  const Decimal per_token = Decimal::parse("0.15").shift_left(6);
  for (int i = 0; i < 1000; ++i)
    total = total + per_token * 1234567;
  EXPECT_EQ(total.to_string(), "185.18505");
}

TEST(DecimalTest, AdditionAndSubtractionAcrossScales) {
  EXPECT_EQ((Decimal::parse("1.5") + Decimal::parse("0.25")).to_string(), "1.75");
  EXPECT_EQ((Decimal::parse("1.5") + Decimal::parse("0.25")).scale(), 2);
  EXPECT_EQ((Decimal::parse("1") - Decimal::parse("0.001")).to_string(), "0.999");
  EXPECT_EQ((Decimal::parse("0.001") - Decimal::parse("1")).to_string(), "-0.999");
  EXPECT_EQ((Decimal::parse("-2.5") + Decimal::parse("2.50")).to_string(), "0");
  EXPECT_EQ(
      (Decimal::parse("10") - Decimal::parse("10.000000000000000000000000000001")).to_string(),
      "-0.000000000000000000000000000001");
  EXPECT_EQ((Decimal() + Decimal::from_integer(-42)).to_string(), "-42");
}

TEST(DecimalTest, ComparisonAcrossScales) {
  EXPECT_TRUE(Decimal::parse("1.50") == Decimal::parse("1.5"));
  EXPECT_TRUE(Decimal::parse("0") == Decimal::parse("-0.000"));
  EXPECT_FALSE(Decimal::parse("1.5") == Decimal::parse("1.51"));
  EXPECT_TRUE(Decimal::parse("1.5") < Decimal::parse("1.51"));
  EXPECT_FALSE(Decimal::parse("1.51") < Decimal::parse("1.5"));
  EXPECT_TRUE(Decimal::parse("-2") < Decimal::parse("-1.999"));
  EXPECT_FALSE(Decimal::parse("1.50") < Decimal::parse("1.5"));
}

TEST(DecimalTest, ToStringFixed) {
  EXPECT_EQ(Decimal::parse("1.5").to_string_fixed(2), "1.50");
  EXPECT_EQ(Decimal::parse("0").to_string_fixed(2), "0.00");
  EXPECT_EQ(Decimal::parse("-0.05").to_string_fixed(4), "-0.0500");
  EXPECT_EQ(Decimal::parse("0.001").to_string_fixed(3), "0.001");
  EXPECT_EQ(Decimal::parse("12").to_string_fixed(0), "12");
  EXPECT_EQ(Decimal::parse("-3").to_string_fixed(1), "-3.0");
  EXPECT_EQ(Decimal::from_integer(1234).to_string_fixed(6), "1234.000000");
  EXPECT_EQ(decimal_error([] { Decimal::parse("1.234").to_string_fixed(2); }),
            "to_string_fixed would drop digits: round first");
  EXPECT_THROW(Decimal::parse("1").to_string_fixed(31), DecimalError);
}

TEST(DecimalTest, FromInteger) {
  EXPECT_EQ(Decimal::from_integer(0).to_string(), "0");
  EXPECT_EQ(Decimal::from_integer(std::numeric_limits<std::int64_t>::max()).to_string(),
            "9223372036854775807");
  EXPECT_EQ(Decimal::from_integer(std::numeric_limits<std::int64_t>::min()).to_string(),
            "-9223372036854775808");
  EXPECT_EQ(Decimal::from_integer(5).scale(), 0);
}

TEST(DecimalTest, OverflowThrows) {
  // The mantissa is bounded by 2^120 (about 1.329e36).
  const std::string big = "1000000000000000000000000000000000000";  // 1e36
  EXPECT_EQ(canon(big), big);
  EXPECT_EQ(decimal_error([] { Decimal::parse("2000000000000000000000000000000000000"); }),
            "decimal overflow");
  EXPECT_THROW(Decimal::parse("99999999999999999999999999999999999999999999"), DecimalError);
  EXPECT_THROW(Decimal::parse(big) * 2, DecimalError);
  EXPECT_THROW(Decimal::parse(big) + Decimal::parse(big), DecimalError);
  EXPECT_THROW(Decimal::parse("-" + big) - Decimal::parse(big), DecimalError);
  EXPECT_THROW(Decimal::parse("1000000000000000000") * std::numeric_limits<std::int64_t>::max(),
               DecimalError);
  EXPECT_THROW(Decimal::parse("-1000000000000000000") * std::numeric_limits<std::int64_t>::min(),
               DecimalError);
  // Aligning scales multiplies the mantissa: 1e7 at scale 30 is 1e37 > 2^120.
  EXPECT_THROW(Decimal::parse("10000000") + Decimal::parse("0.000000000000000000000000000001"),
               DecimalError);
}

// Aligning scales must detect an overflow of the 128-bit product itself, not only a result above
// 2^120: 340282367 * 10^30 exceeds 2^128 and wraps around to about 7.9e28, which is under the
// bound, so the sum silently becomes 0.0790615... instead of throwing.
TEST(DecimalTest, ScaleAlignmentOverflowPast128BitsThrows) {
  const Decimal big = Decimal::parse("340282367");
  const Decimal tiny = Decimal::parse("0.000000000000000000000000000001");
  EXPECT_THROW(big + tiny, DecimalError);
  EXPECT_THROW(big - tiny, DecimalError);
  EXPECT_THROW(big.to_string_fixed(30), DecimalError);
  EXPECT_THROW((void)(big == tiny), DecimalError);
}

}  // namespace
}  // namespace infergate::billing
