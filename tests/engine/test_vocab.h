// Vocabularies shared by the tokenizer tests: the generated one (as make-model builds it) and a
// small hand-written SentencePiece one, plus an independent UTF-8 check.
#pragma once

#include <string>
#include <string_view>

#include "infergate/engine/bpe_trainer.h"
#include "infergate/engine/tokenizer.h"

namespace infergate::engine::test {

// The gpt2-style vocabulary of 512 tokens learned from the builtin corpus.
inline const Tokenizer& generated_tokenizer() {
  static const Tokenizer t = [] {
    const auto specials = default_special_tokens();
    return Tokenizer(train_byte_level_bpe(builtin_corpus(), 512, specials));
  }();
  return t;
}

// A llama (SentencePiece) vocabulary: <unk>, <s>, </s>, the 256 byte tokens, then pieces whose
// scores make "Hello world" come out as ▁Hello ▁world.
inline TokenizerSpec llama_spec() {
  TokenizerSpec spec;
  spec.model = "llama";
  spec.pre = "default";
  spec.tokens = {"<unk>", "<s>", "</s>"};
  spec.token_types = {token_unknown, token_control, token_control};
  spec.scores = {0, 0, 0};
  constexpr char hex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    spec.tokens.push_back(std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">");
    spec.token_types.push_back(token_byte);
    spec.scores.push_back(0);
  }
  const std::pair<const char*, float> pieces[] = {
      {"▁", -1},   {"ll", -2}, {"He", -3},    {"Hell", -4},  {"Hello", -5},   {"▁Hello", -6},
      {"▁w", -7},  {"or", -8}, {"ld", -9},    {"▁wor", -10}, {"▁world", -11}, {"▁h", -12},
      {"e", -13},  {"l", -14}, {"o", -15},    {"H", -16},    {"w", -17},      {"r", -18},
      {"d", -19},  {"h", -20}, {"▁the", -21}, {"▁t", -22},   {"he", -23},     {"t", -24},
      {"in", -25}, {"i", -26}, {"n", -27},    {"▁a", -28},   {"a", -29},      {".", -30},
  };
  for (const auto& [text, score] : pieces) {
    spec.tokens.push_back(text);
    spec.token_types.push_back(token_normal);
    spec.scores.push_back(score);
  }
  spec.unknown_id = 0;
  spec.bos_id = 1;
  spec.eos_id = 2;
  return spec;
}

// Written from the Unicode table of well-formed byte sequences, independently of the engine.
inline bool is_valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b0 < 0x80)
      n = 1;
    else if (b0 >= 0xC2 && b0 <= 0xDF)
      n = 2;
    else if (b0 == 0xE0)
      n = 3, lo = 0xA0;
    else if (b0 >= 0xE1 && b0 <= 0xEC)
      n = 3;
    else if (b0 == 0xED)
      n = 3, hi = 0x9F;
    else if (b0 >= 0xEE && b0 <= 0xEF)
      n = 3;
    else if (b0 == 0xF0)
      n = 4, lo = 0x90;
    else if (b0 >= 0xF1 && b0 <= 0xF3)
      n = 4;
    else if (b0 == 0xF4)
      n = 4, hi = 0x8F;
    else
      return false;
    if (i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return false;
    }
    i += n;
  }
  return true;
}

}  // namespace infergate::engine::test
