#include "infergate/billing/timestamp.h"

#include <cstdio>

namespace infergate::billing {
namespace {

[[noreturn]] void bad(std::string_view text, const std::string& why) {
  throw std::invalid_argument("'" + std::string(text.substr(0, 64)) +
                              "' is not an RFC 3339 time such as 2026-03-01T00:00:00Z: " + why);
}

bool is_leap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int days_in_month(std::int64_t y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

}  // namespace

// Gregorian calendar arithmetic on eras of 400 years (146097 days).
std::int64_t days_from_civil(std::int64_t y, int m, int d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void civil_from_days(std::int64_t z, std::int64_t& y, int& m, int& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  y = yoe + era * 400 + (m <= 2);
}

std::int64_t parse_rfc3339_us(std::string_view t) {
  std::size_t i = 0;
  auto digits = [&](int n, const char* what) {
    int v = 0;
    for (int k = 0; k < n; ++k, ++i) {
      if (i >= t.size() || t[i] < '0' || t[i] > '9') bad(t, std::string("expected ") + what);
      v = v * 10 + (t[i] - '0');
    }
    return v;
  };
  auto expect = [&](char c, const char* what) {
    if (i >= t.size() || t[i] != c) bad(t, std::string("expected ") + what);
    ++i;
  };
  const int year = digits(4, "a 4-digit year");
  expect('-', "'-' after the year");
  const int month = digits(2, "a 2-digit month");
  expect('-', "'-' after the month");
  const int day = digits(2, "a 2-digit day");
  if (i >= t.size() || (t[i] != 'T' && t[i] != 't')) bad(t, "expected 'T' between date and time");
  ++i;
  const int hour = digits(2, "a 2-digit hour");
  expect(':', "':' after the hour");
  const int minute = digits(2, "2-digit minutes");
  expect(':', "':' after the minutes");
  const int second = digits(2, "2-digit seconds");
  std::int64_t micros = 0;
  if (i < t.size() && t[i] == '.') {
    ++i;
    int n = 0;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
      if (++n > 9) bad(t, "more than 9 fraction digits");
      if (n <= 6) micros = micros * 10 + (t[i] - '0');
      ++i;
    }
    if (n == 0) bad(t, "expected digits after '.'");
    for (; n < 6; ++n) micros *= 10;
  }
  std::int64_t offset_s = 0;
  if (i < t.size() && (t[i] == 'Z' || t[i] == 'z')) {
    ++i;
  } else if (i < t.size() && (t[i] == '+' || t[i] == '-')) {
    const int sign = t[i] == '-' ? -1 : 1;
    ++i;
    const int oh = digits(2, "a 2-digit offset hour");
    expect(':', "':' in the offset");
    const int om = digits(2, "2-digit offset minutes");
    if (oh > 23 || om > 59) bad(t, "offset out of range");
    offset_s = sign * (oh * 3600 + om * 60);
  } else if (i < t.size() && t[i] == ' ') {
    bad(t, "a space where the offset should be; in a URL write '+' as %2B");
  } else {
    bad(t, "expected 'Z' or an offset such as +01:00");
  }
  if (i != t.size()) bad(t, "unexpected text after the time");
  if (month < 1 || month > 12) bad(t, "month out of range");
  if (day < 1 || day > days_in_month(year, month)) bad(t, "day out of range");
  if (hour > 23 || minute > 59 || second > 59) bad(t, "time of day out of range");
  const std::int64_t secs = days_from_civil(year, month, day) * 86400 + hour * 3600 +
                            minute * 60 + second - offset_s;
  return secs * 1'000'000 + micros;
}

std::string format_rfc3339_us(std::int64_t us) {
  std::int64_t secs = us / 1'000'000, rem = us % 1'000'000;
  if (rem < 0) {
    rem += 1'000'000;
    --secs;
  }
  std::int64_t days = secs / 86400, sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    --days;
  }
  std::int64_t y = 0;
  int m = 0, d = 0;
  civil_from_days(days, y, m, d);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04lld-%02d-%02dT%02lld:%02lld:%02lld.%03lldZ",
                static_cast<long long>(y), m, d, static_cast<long long>(sod / 3600),
                static_cast<long long>(sod / 60 % 60), static_cast<long long>(sod % 60),
                static_cast<long long>(rem / 1000));
  return buf;
}

}  // namespace infergate::billing
