// Billing periods: calendar months named "YYYY-MM". A period is the half-open range
// [first day 00:00, first day of the next month 00:00) in the tenant's billing time zone; the
// conversion of those local wall-clock times to UTC instants happens in Postgres (which has the
// time zone database), from local_start()/local_end(). Pure value type.
#pragma once

#include <string>
#include <string_view>

namespace infergate::billing {

struct BillingMonth {
  int year = 1970;
  int month = 1;  // 1..12

  // Strict "YYYY-MM" (year 1970..9999). Throws BillingError (invalid, param `param`).
  static BillingMonth parse(std::string_view text, const std::string& param = "period");
  std::string to_string() const;  // "2026-03"
  BillingMonth next() const;
  // Local wall-clock bounds, as Postgres `timestamp` literals: "2026-03-01 00:00:00".
  std::string local_start() const;
  std::string local_end() const { return next().local_start(); }

  bool operator==(const BillingMonth&) const = default;
  auto operator<=>(const BillingMonth&) const = default;
};

}  // namespace infergate::billing
