// Exact decimal numbers for money: a 128-bit integer mantissa and a decimal scale (digits after
// the point, 0..30). Prices per million tokens times integer token counts are exact; rounding
// happens once, explicitly, half away from zero. Never a floating-point value. Value type.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace infergate::billing {

__extension__ typedef __int128 i128;  // GNU extension, spelled once

class DecimalError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

class Decimal {
 public:
  static constexpr int kMaxScale = 30;

  Decimal() = default;
  static Decimal from_integer(std::int64_t v) { return Decimal(v, 0); }

  // Strict parser: optional '-', digits, optional '.' and digits ("0.5", not ".5"). No exponent,
  // no spaces, no '+'.
  // Throws DecimalError saying what is wrong.
  static Decimal parse(std::string_view text);

  // Shortest exact text (trailing zeros after the point removed; "0" for zero).
  std::string to_string() const;
  // Exactly `digits` digits after the point (must not lose digits: round first).
  std::string to_string_fixed(int digits) const;

  Decimal operator+(const Decimal& o) const;
  Decimal operator-(const Decimal& o) const;
  Decimal operator*(std::int64_t k) const;
  // Divides by 10^n exactly (moves the point); used for "per million tokens".
  Decimal shift_left(int n) const;

  // Rounds to `digits` after the point, half away from zero.
  Decimal round_half_away(int digits) const;
  // Value in minor units (e.g. cents for digits = 2), after rounding half away from zero.
  std::int64_t to_minor_units(int digits) const;

  bool operator==(const Decimal& o) const;
  bool operator<(const Decimal& o) const;
  bool is_negative() const { return mantissa_ < 0; }
  int scale() const { return scale_; }

 private:
  Decimal(i128 m, int scale) : mantissa_(m), scale_(scale) {}
  static void align(Decimal& a, Decimal& b);
  Decimal with_scale(int scale) const;  // only ever increases the scale

  i128 mantissa_ = 0;
  int scale_ = 0;
};

}  // namespace infergate::billing
