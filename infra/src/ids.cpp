#include "infergate/infra/ids.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

namespace infergate::infra {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void append_hex(std::string& out, std::uint64_t v, int digits) {
  for (int i = digits - 1; i >= 0; --i) out += kHex[(v >> (i * 4)) & 0xf];
}

std::mt19937_64& thread_rng() {
  thread_local std::mt19937_64 rng = [] {
    std::uint64_t seed[2];
    if (RAND_bytes(reinterpret_cast<unsigned char*>(seed), sizeof seed) != 1) {
      std::random_device rd;
      seed[0] = (std::uint64_t{rd()} << 32) ^ rd();
      seed[1] = (std::uint64_t{rd()} << 32) ^ rd();
    }
    std::seed_seq seq{seed[0], seed[0] >> 32, seed[1], seed[1] >> 32};
    return std::mt19937_64(seq);
  }();
  return rng;
}

}  // namespace

std::string new_request_id() {
  auto& rng = thread_rng();
  std::string id;
  id.reserve(28);
  id += "req_";
  append_hex(id, rng(), 16);
  append_hex(id, rng() >> 32, 8);
  return id;
}

std::string unique_hex(std::size_t n_bytes) {
  auto& rng = thread_rng();
  std::string out;
  out.reserve(2 * n_bytes);
  for (std::size_t done = 0; done < n_bytes; done += 8) {
    const std::size_t take = std::min<std::size_t>(8, n_bytes - done);
    append_hex(out, rng() >> (64 - 8 * take), static_cast<int>(2 * take));
  }
  return out;
}

std::string random_hex(std::size_t n_bytes) {
  std::vector<unsigned char> buf(n_bytes);
  if (n_bytes && RAND_bytes(buf.data(), static_cast<int>(n_bytes)) != 1)
    throw std::runtime_error("OpenSSL RAND_bytes failed: no entropy available");
  std::string out;
  out.reserve(2 * n_bytes);
  for (unsigned char b : buf) {
    out += kHex[b >> 4];
    out += kHex[b & 0xf];
  }
  return out;
}

}  // namespace infergate::infra
