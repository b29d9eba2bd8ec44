#include "infergate/billing/decimal.h"

#include <algorithm>

namespace infergate::billing {
namespace {

constexpr i128 kMaxMantissa = (static_cast<i128>(1) << 120);

i128 pow10(int n) {
  i128 p = 1;
  for (int i = 0; i < n; ++i) p *= 10;
  return p;
}

i128 checked(i128 v) {
  if (v > kMaxMantissa || v < -kMaxMantissa) throw DecimalError("decimal overflow");
  return v;
}

std::string digits_of(i128 v) {  // v >= 0
  if (v == 0) return "0";
  std::string s;
  while (v > 0) {
    s += static_cast<char>('0' + static_cast<int>(v % 10));
    v /= 10;
  }
  std::reverse(s.begin(), s.end());
  return s;
}

}  // namespace

Decimal Decimal::parse(std::string_view text) {
  const std::string shown = "\"" + std::string(text.substr(0, 40)) + "\"";
  if (text.empty()) throw DecimalError("empty decimal: expected digits like 1.25");
  std::size_t i = 0;
  bool negative = false;
  if (text[0] == '-') {
    negative = true;
    i = 1;
  }
  i128 m = 0;
  int scale = 0;
  bool seen_point = false, seen_digit = false;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c == '.') {
      if (seen_point) throw DecimalError("not a decimal: " + shown + " has two points");
      seen_point = true;
      continue;
    }
    if (c < '0' || c > '9')
      throw DecimalError("not a decimal: " + shown + " (expected digits and at most one '.')");
    seen_digit = true;
    m = checked(m * 10 + (c - '0'));
    if (seen_point && ++scale > kMaxScale)
      throw DecimalError("decimal " + shown + " has more than 30 digits after the point");
  }
  if (!seen_digit) throw DecimalError("not a decimal: " + shown + " has no digits");
  if (text[negative ? 1 : 0] == '.')
    throw DecimalError("not a decimal: " + shown + " must start with a digit (write 0.5, not .5)");
  if (seen_point && text.back() == '.')
    throw DecimalError("not a decimal: " + shown + " ends with '.'");
  return Decimal(negative ? -m : m, scale);
}

Decimal Decimal::with_scale(int scale) const {
  if (scale > kMaxScale) throw DecimalError("decimal scale over 30");
  const i128 factor = pow10(scale - scale_);
  // Check before multiplying: the product itself could overflow 128 bits.
  if (mantissa_ > kMaxMantissa / factor || mantissa_ < -kMaxMantissa / factor)
    throw DecimalError("decimal overflow");
  return Decimal(mantissa_ * factor, scale);
}

void Decimal::align(Decimal& a, Decimal& b) {
  int s = std::max(a.scale_, b.scale_);
  a = a.with_scale(s);
  b = b.with_scale(s);
}

Decimal Decimal::operator+(const Decimal& o) const {
  Decimal a = *this, b = o;
  align(a, b);
  return Decimal(checked(a.mantissa_ + b.mantissa_), a.scale_);
}

Decimal Decimal::operator-(const Decimal& o) const {
  Decimal a = *this, b = o;
  align(a, b);
  return Decimal(checked(a.mantissa_ - b.mantissa_), a.scale_);
}

Decimal Decimal::operator*(std::int64_t k) const {
  i128 r = mantissa_ * k;
  if (k != 0 && r / k != mantissa_) throw DecimalError("decimal overflow");
  return Decimal(checked(r), scale_);
}

Decimal Decimal::shift_left(int n) const {
  if (n < 0) throw DecimalError("shift_left takes a non-negative count");
  if (scale_ + n > kMaxScale) throw DecimalError("decimal scale over 30");
  return Decimal(mantissa_, scale_ + n);
}

Decimal Decimal::round_half_away(int digits) const {
  if (digits < 0 || digits > kMaxScale) throw DecimalError("rounding digits must be 0..30");
  if (digits >= scale_) return *this;
  i128 div = pow10(scale_ - digits);
  i128 q = mantissa_ / div;
  i128 r = mantissa_ % div;
  i128 twice = (r < 0 ? -r : r) * 2;
  if (twice >= div) q += (mantissa_ < 0 ? -1 : 1);
  return Decimal(q, digits);
}

std::int64_t Decimal::to_minor_units(int digits) const {
  Decimal r = round_half_away(digits).with_scale(digits);
  if (r.mantissa_ > INT64_MAX || r.mantissa_ < INT64_MIN)
    throw DecimalError("amount does not fit in 64-bit minor units");
  return static_cast<std::int64_t>(r.mantissa_);
}

std::string Decimal::to_string() const {
  i128 m = mantissa_;
  int s = scale_;
  while (s > 0 && m % 10 == 0) {
    m /= 10;
    --s;
  }
  return Decimal(m, s).to_string_fixed(s);
}

std::string Decimal::to_string_fixed(int digits) const {
  if (digits < scale_) throw DecimalError("to_string_fixed would drop digits: round first");
  Decimal d = with_scale(digits);
  i128 m = d.mantissa_;
  bool neg = m < 0;
  std::string s = digits_of(neg ? -m : m);
  if (digits > 0) {
    if (static_cast<int>(s.size()) <= digits) s.insert(0, digits - s.size() + 1, '0');
    s.insert(s.size() - digits, ".");
  }
  return neg ? "-" + s : s;
}

bool Decimal::operator==(const Decimal& o) const {
  Decimal a = *this, b = o;
  align(a, b);
  return a.mantissa_ == b.mantissa_;
}

bool Decimal::operator<(const Decimal& o) const {
  Decimal a = *this, b = o;
  align(a, b);
  return a.mantissa_ < b.mantissa_;
}

}  // namespace infergate::billing
