#include "utf8.h"

namespace infergate::engine::utf8 {
namespace {

// Length of the sequence a lead byte starts, 0 for bytes that cannot start one.
int sequence_length(unsigned char b) {
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 0;
}

// The second byte carries the constraints that rule out overlong forms, surrogates and code
// points above U+10FFFF; later bytes are plain continuation bytes.
bool valid_second(unsigned char lead, unsigned char b) {
  switch (lead) {
    case 0xE0:
      return b >= 0xA0 && b <= 0xBF;
    case 0xED:
      return b >= 0x80 && b <= 0x9F;
    case 0xF0:
      return b >= 0x90 && b <= 0xBF;
    case 0xF4:
      return b >= 0x80 && b <= 0x8F;
    default:
      return b >= 0x80 && b <= 0xBF;
  }
}

}  // namespace

PrefixInfo classify_prefix(std::string_view s, std::size_t i) {
  const auto lead = static_cast<unsigned char>(s[i]);
  const int n = sequence_length(lead);
  if (n == 0) return {Prefix::invalid, 1};
  if (n == 1) return {Prefix::complete, 1};
  std::size_t k = 1;
  for (; k < static_cast<std::size_t>(n); ++k) {
    if (i + k >= s.size()) return {Prefix::unfinished, k};
    const auto b = static_cast<unsigned char>(s[i + k]);
    const bool ok = k == 1 ? valid_second(lead, b) : (b >= 0x80 && b <= 0xBF);
    if (!ok) return {Prefix::invalid, k};
  }
  return {Prefix::complete, k};
}

Unit next(std::string_view s, std::size_t i) {
  const auto lead = static_cast<unsigned char>(s[i]);
  if (lead < 0x80) return {lead, 1, true};
  const PrefixInfo p = classify_prefix(s, i);
  if (p.kind != Prefix::complete) return {lead, 1, false};
  std::uint32_t cp = lead & (0xFFu >> (p.len + 1));
  for (std::size_t k = 1; k < p.len; ++k)
    cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3Fu);
  return {cp, static_cast<std::uint8_t>(p.len), true};
}

void append(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace infergate::engine::utf8
