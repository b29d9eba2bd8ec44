// GPT-2's byte-level alphabet: every byte is shown as a printable code point (space is "Ġ",
// newline "Ċ"), so that byte-level BPE tokens are ordinary text in the vocabulary.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace infergate::engine::byte_level {

std::uint32_t byte_to_codepoint(std::uint8_t b);
std::optional<std::uint8_t> codepoint_to_byte(std::uint32_t cp);

// The vocabulary spelling of raw bytes, and back. from_text keeps characters outside the
// alphabet as their UTF-8, so any vocabulary entry decodes to something.
std::string to_text(std::string_view bytes);
std::string from_text(std::string_view text);

}  // namespace infergate::engine::byte_level
