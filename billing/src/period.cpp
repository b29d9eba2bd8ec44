#include "infergate/billing/period.h"

#include <cstdio>

#include "infergate/billing/billing_error.h"

namespace infergate::billing {

BillingMonth BillingMonth::parse(std::string_view text, const std::string& param) {
  auto fail = [&]() -> BillingMonth {
    throw BillingError(BillingError::Kind::invalid, param,
                       "'" + param + "' must be a month written YYYY-MM (e.g. 2026-03), got '" +
                           std::string(text.substr(0, 32)) + "'.");
  };
  if (text.size() != 7 || text[4] != '-') return fail();
  int v[2] = {0, 0};
  for (std::size_t i = 0; i < 7; ++i) {
    if (i == 4) continue;
    if (text[i] < '0' || text[i] > '9') return fail();
    v[i < 4 ? 0 : 1] = v[i < 4 ? 0 : 1] * 10 + (text[i] - '0');
  }
  if (v[0] < 1970 || v[1] < 1 || v[1] > 12) return fail();
  return BillingMonth{v[0], v[1]};
}

std::string BillingMonth::to_string() const {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d", year, month);
  return buf;
}

BillingMonth BillingMonth::next() const {
  return month == 12 ? BillingMonth{year + 1, 1} : BillingMonth{year, month + 1};
}

std::string BillingMonth::local_start() const { return to_string() + "-01 00:00:00"; }

}  // namespace infergate::billing
