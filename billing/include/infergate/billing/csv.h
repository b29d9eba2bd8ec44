// CSV output as RFC 4180: comma-separated, CRLF line ends, a field quoted (with inner quotes
// doubled) when it holds a comma, a quote, CR or LF, or leading/trailing spaces. Pure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace infergate::billing {

std::string csv_field(std::string_view value);
// One record, terminated by CRLF.
std::string csv_row(const std::vector<std::string>& fields);

}  // namespace infergate::billing
