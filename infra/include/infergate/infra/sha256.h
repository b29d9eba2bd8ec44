// SHA-256 (OpenSSL). Thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace infergate::infra {

// Lowercase hex digest of `data` (64 characters).
std::string sha256_hex(std::string_view data);

}  // namespace infergate::infra
