// Wall-clock helpers. Times on the wire and in logs are RFC 3339 in UTC.
#pragma once

#include <chrono>
#include <string>

namespace infergate::infra {

// "2026-11-22T01:02:03.456Z"
std::string format_rfc3339_millis(std::chrono::system_clock::time_point t);

}  // namespace infergate::infra
