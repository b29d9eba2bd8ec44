// Opaque identifiers. Thread-safe.
#pragma once

#include <string>

namespace infergate::infra {

// "req_" followed by 24 lowercase hex digits (96 random bits). Unique enough to be used as the
// idempotency key of a usage record, and cheap: no syscall after the first call on a thread.
std::string new_request_id();

// n random bytes from the OS CSPRNG, as lowercase hex (2n characters). For secrets.
std::string random_hex(std::size_t n_bytes);

// n bytes from the same per-thread generator as request ids, as lowercase hex: unique, not
// secret (reservation ids). A tenth of the cost of random_hex, which goes through OpenSSL.
std::string unique_hex(std::size_t n_bytes);

}  // namespace infergate::infra
