// SHA-256 (OpenSSL). Thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace infergate::infra {

// The 32-byte digest of `data`, as raw bytes.
std::string sha256(std::string_view data);

// Lowercase hex digest of `data` (64 characters).
std::string sha256_hex(std::string_view data);

}  // namespace infergate::infra
