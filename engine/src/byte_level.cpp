#include "byte_level.h"

#include <array>

#include "utf8.h"

namespace infergate::engine::byte_level {
namespace {

// Printable bytes stand for themselves; the others (controls, space, DEL, NBSP, soft hyphen)
// take the code points 256, 257, ... in byte order. This is the table GPT-2 defined.
constexpr bool printable(int b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

constexpr std::array<std::uint16_t, 256> forward = [] {
  std::array<std::uint16_t, 256> t{};
  std::uint16_t next = 256;
  for (int b = 0; b < 256; ++b) {
    t[b] = printable(b) ? static_cast<std::uint16_t>(b) : next++;
  }
  return t;
}();

constexpr std::array<std::int16_t, 512> backward = [] {
  std::array<std::int16_t, 512> t{};
  for (auto& v : t)
    v = -1;
  for (int b = 0; b < 256; ++b)
    t[forward[b]] = static_cast<std::int16_t>(b);
  return t;
}();

}  // namespace

std::uint32_t byte_to_codepoint(std::uint8_t b) {
  return forward[b];
}

std::optional<std::uint8_t> codepoint_to_byte(std::uint32_t cp) {
  if (cp >= backward.size() || backward[cp] < 0) return std::nullopt;
  return static_cast<std::uint8_t>(backward[cp]);
}

std::string to_text(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes)
    utf8::append(out, forward[static_cast<unsigned char>(c)]);
  return out;
}

std::string from_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const utf8::Unit u = utf8::next(text, i);
    const auto b = u.valid ? codepoint_to_byte(u.cp) : std::nullopt;
    if (b) {
      out += static_cast<char>(*b);
    } else {
      out.append(text.substr(i, u.len));
    }
    i += u.len;
  }
  return out;
}

}  // namespace infergate::engine::byte_level
