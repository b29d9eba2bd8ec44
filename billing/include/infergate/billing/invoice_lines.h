// How invoice lines are priced, without a database: priced quantities (per model, token class
// and price version) become one line per model and token class (and, for adjustments, per
// source period). A line's exact amount is the sum over its price versions of
// quantity x price per million / 10^6; it is rounded once, half away from zero, to the
// currency's minor units; an invoice's total is the sum of its rounded lines. Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "infergate/billing/decimal.h"

namespace infergate::billing {

// Usage quantity of one model and token class priced by one price version. For adjustments,
// the source period it belongs to.
struct PricedQuantity {
  std::string model, token_class, price_version_id;
  Decimal unit_price_per_million;
  std::int64_t quantity = 0;
  std::optional<std::string> source_period;  // "YYYY-MM" for an adjustment
  std::int64_t source_start_us = 0, source_end_us = 0;
};

struct InvoiceLinePrice {
  std::string price_version_id;
  Decimal unit_price_per_million;
  std::int64_t quantity = 0;
  Decimal exact_amount;
};

struct InvoiceLine {
  int line_no = 0;
  std::string model, token_class;
  std::int64_t quantity = 0;
  std::optional<Decimal> unit_price_per_million;  // none when the line spans several prices
  Decimal exact_amount;
  std::int64_t amount_minor = 0;
  bool is_adjustment = false;
  std::optional<std::string> source_period;
  std::int64_t source_start_us = 0, source_end_us = 0;
  std::vector<InvoiceLinePrice> prices;
};

// Token classes in invoice order.
const std::vector<std::string>& token_classes();
bool is_token_class(const std::string& s);

// quantity x price / 10^6, exact.
Decimal line_amount(const Decimal& price_per_million, std::int64_t quantity);

// Groups and prices: base lines (ordered by model, then token class) first, then adjustment
// lines (by source period, model, token class); numbered from 1. Quantities of zero are left
// out, and so is a line whose parts cancel out entirely.
std::vector<InvoiceLine> build_lines(const std::vector<PricedQuantity>& base,
                                     const std::vector<PricedQuantity>& adjustments,
                                     int minor_digits);

std::int64_t total_minor(const std::vector<InvoiceLine>& lines);

// Minor units as a decimal string with exactly `digits` digits after the point ("12.30").
std::string minor_to_string(std::int64_t minor, int digits);

}  // namespace infergate::billing
