// Instants on the wire: strict RFC 3339 parsing into Unix microseconds (UTC) and formatting
// back as RFC 3339 UTC. No time zone database needed: an RFC 3339 time carries its offset.
// Pure functions.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace infergate::billing {

// "2026-03-01T00:00:00Z", "2026-03-01T01:00:00.250+01:00" (T/Z in either case; up to 9
// fraction digits, kept to the microsecond, rounded down). Throws std::invalid_argument with a
// message saying what is wrong.
std::int64_t parse_rfc3339_us(std::string_view text);

// "2026-03-01T00:00:00.000Z" (milliseconds, like every other time in the API).
std::string format_rfc3339_us(std::int64_t unix_us);

// Days since 1970-01-01 of a proleptic Gregorian date (month 1..12); and its inverse.
std::int64_t days_from_civil(std::int64_t y, int m, int d);
void civil_from_days(std::int64_t days, std::int64_t& y, int& m, int& d);

}  // namespace infergate::billing
