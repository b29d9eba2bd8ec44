// The character classes the pre-tokenizer regexes use (\p{L}, \p{N}, \s and the rest), from a
// compact range table: exact for ASCII and Latin-1, good for the Latin, Greek, Cyrillic, Arabic,
// Hebrew, Indic, CJK, kana and Hangul blocks, approximate elsewhere (unknown code points are
// "other", which only changes where a rare script's words are split).
#pragma once

#include <cstdint>

namespace infergate::engine {

enum class CharClass : std::uint8_t { letter, number, space, other };

CharClass classify_codepoint(std::uint32_t cp);

}  // namespace infergate::engine
