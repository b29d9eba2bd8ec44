// ISO 4217 currency codes and their minor units (digits after the point: 2 for EUR, 0 for JPY,
// 3 for KWD). Pure functions.
#pragma once

#include <string_view>

namespace infergate::billing {

// Three upper-case ASCII letters.
bool is_currency_code(std::string_view code);

// Digits of the currency's minor unit; 2 for any code without a listed exception.
int minor_unit_digits(std::string_view code);

}  // namespace infergate::billing
