#include "infergate/billing/invoice_lines.h"

#include <algorithm>
#include <map>
#include <tuple>

namespace infergate::billing {

const std::vector<std::string>& token_classes() {
  static const std::vector<std::string> classes{"input", "cached_input", "output"};
  return classes;
}

bool is_token_class(const std::string& s) {
  const auto& c = token_classes();
  return std::find(c.begin(), c.end(), s) != c.end();
}

Decimal line_amount(const Decimal& price_per_million, std::int64_t quantity) {
  return (price_per_million * quantity).shift_left(6);
}

namespace {

int class_rank(const std::string& c) {
  const auto& all = token_classes();
  return static_cast<int>(std::find(all.begin(), all.end(), c) - all.begin());
}

void add_lines(const std::vector<PricedQuantity>& parts, bool adjustment, int digits,
               std::vector<InvoiceLine>& out) {
  // (source period, model, class rank) -> line, in that order.
  std::map<std::tuple<std::string, std::string, int>, InvoiceLine> lines;
  for (const auto& p : parts) {
    if (p.quantity == 0) continue;
    auto key = std::make_tuple(p.source_period.value_or(""), p.model, class_rank(p.token_class));
    InvoiceLine& l = lines[key];
    if (l.prices.empty()) {
      l.model = p.model;
      l.token_class = p.token_class;
      l.is_adjustment = adjustment;
      l.source_period = adjustment ? p.source_period : std::nullopt;
      l.source_start_us = p.source_start_us;
      l.source_end_us = p.source_end_us;
    }
    auto same = std::find_if(l.prices.begin(), l.prices.end(), [&](const InvoiceLinePrice& x) {
      return x.price_version_id == p.price_version_id;
    });
    if (same == l.prices.end()) {
      l.prices.push_back({p.price_version_id, p.unit_price_per_million, 0, Decimal()});
      same = l.prices.end() - 1;
    }
    same->quantity += p.quantity;
  }
  for (auto& [key, l] : lines) {
    std::erase_if(l.prices, [](const InvoiceLinePrice& x) { return x.quantity == 0; });
    if (l.prices.empty()) continue;
    for (auto& x : l.prices) {
      x.exact_amount = line_amount(x.unit_price_per_million, x.quantity);
      l.quantity += x.quantity;
      l.exact_amount = l.exact_amount + x.exact_amount;
    }
    const bool one_price = std::all_of(l.prices.begin(), l.prices.end(), [&](const auto& x) {
      return x.unit_price_per_million == l.prices.front().unit_price_per_million;
    });
    if (one_price) l.unit_price_per_million = l.prices.front().unit_price_per_million;
    l.amount_minor = l.exact_amount.to_minor_units(digits);  // the one rounding
    out.push_back(std::move(l));
  }
}

}  // namespace

std::vector<InvoiceLine> build_lines(const std::vector<PricedQuantity>& base,
                                     const std::vector<PricedQuantity>& adjustments,
                                     int minor_digits) {
  std::vector<InvoiceLine> out;
  add_lines(base, false, minor_digits, out);
  add_lines(adjustments, true, minor_digits, out);
  for (std::size_t i = 0; i < out.size(); ++i) out[i].line_no = static_cast<int>(i + 1);
  return out;
}

std::int64_t total_minor(const std::vector<InvoiceLine>& lines) {
  std::int64_t total = 0;
  for (const auto& l : lines) total += l.amount_minor;
  return total;
}

std::string minor_to_string(std::int64_t minor, int digits) {
  return Decimal::from_integer(minor).shift_left(digits).to_string_fixed(digits);
}

}  // namespace infergate::billing
