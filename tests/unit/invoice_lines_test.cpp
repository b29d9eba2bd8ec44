// Pricing invoice lines without a database: one line per model and token class, exact amounts
// summed per price version, one rounding per line (half away from zero), total = sum of lines.
#include "infergate/billing/invoice_lines.h"

#include <gtest/gtest.h>

namespace infergate::billing {
namespace {

PricedQuantity part(const std::string& model, const std::string& cls, const std::string& version,
                    const char* price, std::int64_t qty) {
  PricedQuantity p;
  p.model = model;
  p.token_class = cls;
  p.price_version_id = version;
  p.unit_price_per_million = Decimal::parse(price);
  p.quantity = qty;
  return p;
}

TEST(InvoiceLinesTest, OneLinePerModelAndClassInOrder) {
  auto lines = build_lines({part("b", "output", "p1", "10", 1000), part("a", "output", "p2", "4", 5),
                            part("a", "input", "p3", "1", 7), part("a", "cached_input", "p4", "0.5", 0)},
                           {}, 2);
  ASSERT_EQ(lines.size(), 3u);  // the zero quantity is left out
  EXPECT_EQ(lines[0].model, "a");
  EXPECT_EQ(lines[0].token_class, "input");
  EXPECT_EQ(lines[1].token_class, "output");
  EXPECT_EQ(lines[2].model, "b");
  for (std::size_t i = 0; i < lines.size(); ++i) EXPECT_EQ(lines[i].line_no, static_cast<int>(i + 1));
  EXPECT_EQ(lines[2].exact_amount, Decimal::parse("0.01"));  // 1000 x 10 / 1e6
  EXPECT_EQ(lines[2].amount_minor, 1);
}

TEST(InvoiceLinesTest, ExactPerVersionThenRoundedOnceHalfAwayFromZero) {
  // Two price versions at the same price, 2,500 tokens each: 0.005 + 0.005 = 0.01 exactly,
  // one cent. Rounding each version first would have made it two.
  auto lines = build_lines({part("m", "input", "v1", "2", 2500), part("m", "input", "v2", "2", 2500)},
                           {}, 2);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].quantity, 5000);
  EXPECT_EQ(lines[0].exact_amount, Decimal::parse("0.01"));
  EXPECT_EQ(lines[0].amount_minor, 1);
  ASSERT_TRUE(lines[0].unit_price_per_million.has_value());  // same price in both versions
  ASSERT_EQ(lines[0].prices.size(), 2u);

  auto mixed = build_lines({part("m", "input", "v1", "3", 1500), part("m", "input", "v2", "4", 1500)},
                           {}, 2);
  EXPECT_EQ(mixed[0].exact_amount, Decimal::parse("0.0105"));
  EXPECT_EQ(mixed[0].amount_minor, 1);
  EXPECT_FALSE(mixed[0].unit_price_per_million.has_value());

  // Exactly half a cent rounds away from zero, also for a credit.
  EXPECT_EQ(build_lines({part("m", "output", "v", "5", 1000)}, {}, 2)[0].amount_minor, 1);
  EXPECT_EQ(build_lines({}, {part("m", "output", "v", "5", -1000)}, 2)[0].amount_minor, -1);
  // Minor units follow the currency: 0 digits (JPY) and 3 (KWD).
  EXPECT_EQ(build_lines({part("m", "output", "v", "1500", 1000)}, {}, 0)[0].amount_minor, 2);
  EXPECT_EQ(build_lines({part("m", "output", "v", "1500", 1000)}, {}, 3)[0].amount_minor, 1500);
}

TEST(InvoiceLinesTest, TotalIsTheSumOfRoundedLines) {
  std::vector<PricedQuantity> parts;
  for (int i = 0; i < 40; ++i)
    parts.push_back(part("model-" + std::to_string(i), "output", "v" + std::to_string(i),
                         "0.333333", 1'234'567 + i * 7919));
  auto lines = build_lines(parts, {}, 2);
  ASSERT_EQ(lines.size(), 40u);
  std::int64_t sum = 0;
  Decimal exact;
  for (const auto& l : lines) {
    sum += l.amount_minor;
    exact = exact + l.exact_amount;
    EXPECT_EQ(l.amount_minor, l.exact_amount.to_minor_units(2));
  }
  EXPECT_EQ(total_minor(lines), sum);
  // Rounding the exact grand total instead would differ here: the invoice must not do that.
  EXPECT_NE(exact.to_minor_units(2), sum);
  EXPECT_EQ(minor_to_string(sum, 2), Decimal::from_integer(sum).shift_left(2).to_string_fixed(2));
}

TEST(InvoiceLinesTest, AdjustmentsFollowBaseLinesByPeriodAndCancelledPartsVanish) {
  PricedQuantity late = part("m", "input", "v1", "1", 1000);
  late.source_period = "2026-01";
  PricedQuantity later = part("m", "input", "v1", "1", 500);
  later.source_period = "2026-02";
  PricedQuantity moved_out = part("m", "output", "v1", "1", -200);
  moved_out.source_period = "2026-02";
  PricedQuantity moved_in = part("m", "output", "v1", "1", 200);
  moved_in.source_period = "2026-02";
  auto lines = build_lines({part("m", "input", "v1", "1", 10)}, {later, late, moved_out, moved_in}, 2);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_FALSE(lines[0].is_adjustment);
  EXPECT_TRUE(lines[1].is_adjustment);
  EXPECT_EQ(*lines[1].source_period, "2026-01");
  EXPECT_EQ(*lines[2].source_period, "2026-02");
  EXPECT_EQ(lines[2].token_class, "input");
  EXPECT_EQ(minor_to_string(-5, 2), "-0.05");
  EXPECT_EQ(minor_to_string(1234, 0), "1234");
}

}  // namespace
}  // namespace infergate::billing
