// The tables a Tokenizer works from, built and validated once from a TokenizerSpec and shared,
// read-only, by all copies of the Tokenizer.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "infergate/engine/tokenizer.h"
#include "pretokenizer.h"

namespace infergate::engine::detail {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};
using TokenIndex = std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>>;

struct Merge {
  std::int32_t rank;
  std::int32_t result;
};

struct SpecialToken {
  std::string text;
  std::int32_t id;
};

struct TokenizerData {
  explicit TokenizerData(TokenizerSpec s);  // throws TokenizerError

  bool byte_level() const { return spec.model == "gpt2"; }
  std::int32_t size() const { return static_cast<std::int32_t>(spec.tokens.size()); }

  TokenizerSpec spec;
  std::vector<std::int32_t> types;     // spec.token_types, or inferred when the spec has none
  std::vector<std::string> bytes;      // what each token decodes to (see Tokenizer::token_bytes)
  TokenIndex index;                    // token text -> id (the first one, should text repeat)
  std::vector<SpecialToken> specials;  // split out of text before BPE, longest first
  std::array<bool, 256> special_first_byte{};  // some special's text starts with this byte

  // Whether encode() starts a new text after this token (llama: a "▁" prefix follows it).
  bool is_special(std::int32_t id) const {
    return types[id] == token_control || types[id] == token_user_defined ||
           types[id] == token_unknown;
  }
  // Appends what `id` decodes to (nothing for control tokens). `at_text_start` says whether the
  // token begins a text, where a llama encode() put a space prefix, and is updated.
  void decode_into(std::int32_t id, bool strip_space_prefix, bool& at_text_start,
                   std::string& out) const;

  // gpt2
  PreTokenizer pre = PreTokenizer::gpt2;
  bool whole_word_first = false;  // Llama-3: a word that is a token is not merged piecewise
  std::array<std::int32_t, 256> byte_token{};       // byte -> its single-byte token
  std::unordered_map<std::uint64_t, Merge> merges;  // (left id, right id) -> merge

  // llama
  std::array<std::int32_t, 256> byte_fallback{};  // byte -> <0xNN> token, all -1 if absent
  bool has_byte_fallback = false;
};

inline std::uint64_t pair_key(std::int32_t left, std::int32_t right) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) |
         static_cast<std::uint32_t>(right);
}

// BPE of one fragment of text (no special tokens in it), appending ids to out.
void encode_byte_level(const TokenizerData& d, std::string_view text,
                       std::vector<std::int32_t>& out);
// `text` must already be SentencePiece-escaped (spaces as U+2581, prefix added).
void encode_sentencepiece(const TokenizerData& d, std::string_view text,
                          std::vector<std::int32_t>& out);

}  // namespace infergate::engine::detail
