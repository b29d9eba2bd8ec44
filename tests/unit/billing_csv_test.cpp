// CSV output (RFC 4180) and ISO 4217 minor units.
#include <gtest/gtest.h>

#include "infergate/billing/csv.h"
#include "infergate/billing/currency.h"

namespace infergate::billing {
namespace {

TEST(CsvTest, QuotesOnlyWhatNeedsIt) {
  EXPECT_EQ(csv_field("plain"), "plain");
  EXPECT_EQ(csv_field(""), "");
  EXPECT_EQ(csv_field("12.50"), "12.50");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(csv_field("cr\r"), "\"cr\r\"");
  EXPECT_EQ(csv_field(" padded "), "\" padded \"");
  EXPECT_EQ(csv_row({"a", "b,c", ""}), "a,\"b,c\",\r\n");
}

TEST(CurrencyTest, CodesAndMinorUnits) {
  EXPECT_TRUE(is_currency_code("USD"));
  EXPECT_FALSE(is_currency_code("usd"));
  EXPECT_FALSE(is_currency_code("US"));
  EXPECT_FALSE(is_currency_code("USDX"));
  EXPECT_FALSE(is_currency_code("U$D"));
  EXPECT_EQ(minor_unit_digits("EUR"), 2);
  EXPECT_EQ(minor_unit_digits("USD"), 2);
  EXPECT_EQ(minor_unit_digits("JPY"), 0);
  EXPECT_EQ(minor_unit_digits("KWD"), 3);
  EXPECT_EQ(minor_unit_digits("CLF"), 4);
  // The CFA and CFP francs have no minor unit; the Uruguayan unitary wage index has four.
  EXPECT_EQ(minor_unit_digits("XOF"), 0);
  EXPECT_EQ(minor_unit_digits("XAF"), 0);
  EXPECT_EQ(minor_unit_digits("XPF"), 0);
  EXPECT_EQ(minor_unit_digits("UYW"), 4);
}

}  // namespace
}  // namespace infergate::billing
