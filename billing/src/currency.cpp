#include "infergate/billing/currency.h"

#include <array>
#include <utility>

namespace infergate::billing {

bool is_currency_code(std::string_view code) {
  if (code.size() != 3) return false;
  for (char c : code)
    if (c < 'A' || c > 'Z') return false;
  return true;
}

int minor_unit_digits(std::string_view code) {
  // ISO 4217 currencies whose minor unit is not 2 digits.
  static constexpr std::array<std::pair<std::string_view, int>, 26> kExceptions{{
      {"BHD", 3}, {"BIF", 0}, {"CLF", 4}, {"CLP", 0}, {"DJF", 0}, {"GNF", 0},
      {"IQD", 3}, {"ISK", 0}, {"JOD", 3}, {"JPY", 0}, {"KMF", 0}, {"KRW", 0},
      {"KWD", 3}, {"LYD", 3}, {"OMR", 3}, {"PYG", 0}, {"RWF", 0}, {"TND", 3},
      {"UGX", 0}, {"UYI", 0}, {"UYW", 4}, {"VND", 0}, {"VUV", 0}, {"XAF", 0},
      {"XOF", 0}, {"XPF", 0},
  }};
  for (const auto& [c, d] : kExceptions)
    if (c == code) return d;
  return 2;
}

}  // namespace infergate::billing
