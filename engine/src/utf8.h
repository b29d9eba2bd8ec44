// UTF-8 scanning for the tokenizer. Never fails: bytes that are not valid UTF-8 come out as units
// of their own, so every byte string can be tokenized and decoded back unchanged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace infergate::engine::utf8 {

// One character of text, or one byte that does not start a valid sequence (valid = false,
// len = 1, cp = the byte).
struct Unit {
  std::uint32_t cp;
  std::uint8_t len;
  bool valid;
};

// The unit starting at s[i]; requires i < s.size().
Unit next(std::string_view s, std::size_t i);

// How the bytes at s[i..] start: a whole valid character (len bytes), an unfinished but so far
// valid one that runs into the end of s (more bytes may complete it), or an invalid sequence
// whose longest valid-looking start is len bytes (Unicode's "maximal subpart", replaced by one
// U+FFFD).
enum class Prefix { complete, unfinished, invalid };
struct PrefixInfo {
  Prefix kind;
  std::size_t len;
};
PrefixInfo classify_prefix(std::string_view s, std::size_t i);

void append(std::string& out, std::uint32_t cp);

inline constexpr std::string_view replacement_character = "\xEF\xBF\xBD";

}  // namespace infergate::engine::utf8
