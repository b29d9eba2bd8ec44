#include "tokenizer_data.h"

#include <algorithm>
#include <limits>

#include "byte_level.h"

namespace infergate::engine::detail {
namespace {

constexpr std::string_view sentencepiece_space = "\xE2\x96\x81";  // U+2581 "▁"

[[noreturn]] void fail(const std::string& what) {
  throw TokenizerError("tokenizer: " + what);
}

std::string byte_token_text(int b) {
  constexpr char hex[] = "0123456789ABCDEF";
  return std::string("<0x") + hex[(b >> 4) & 0xF] + hex[b & 0xF] + ">";
}

// The byte a SentencePiece byte token stands for, or -1 when the text is not "<0xNN>".
int parse_byte_token(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  int v = 0;
  for (char c : text.substr(3, 2)) {
    v *= 16;
    if (c >= '0' && c <= '9')
      v += c - '0';
    else if (c >= 'A' && c <= 'F')
      v += c - 'A' + 10;
    else if (c >= 'a' && c <= 'f')
      v += c - 'a' + 10;
    else
      return -1;
  }
  return v;
}

void check_id(std::int32_t id, const char* key, std::size_t n) {
  if (id < -1 || (id >= 0 && static_cast<std::size_t>(id) >= n))
    fail(std::string("tokenizer.ggml.") + key + " = " + std::to_string(id) +
         " is out of range: the vocabulary has " + std::to_string(n) + " tokens (ids 0.." +
         std::to_string(n - 1) + ")");
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (std::size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
  return s;
}

}  // namespace

TokenizerData::TokenizerData(TokenizerSpec s) : spec(std::move(s)) {
  const std::size_t n = spec.tokens.size();
  if (spec.model != "gpt2" && spec.model != "llama")
    fail("unsupported tokenizer.ggml.model '" + spec.model +
         "': expected gpt2 (byte-level BPE) or llama (SentencePiece BPE)");
  if (n == 0) fail("tokenizer.ggml.tokens is empty");
  if (n > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
    fail("tokenizer.ggml.tokens has too many entries");
  if (!spec.scores.empty() && spec.scores.size() != n)
    fail("tokenizer.ggml.scores has " + std::to_string(spec.scores.size()) +
         " entries but there are " + std::to_string(n) + " tokens");
  if (!spec.token_types.empty() && spec.token_types.size() != n)
    fail("tokenizer.ggml.token_type has " + std::to_string(spec.token_types.size()) +
         " entries but there are " + std::to_string(n) + " tokens");
  check_id(spec.bos_id, "bos_token_id", n);
  check_id(spec.eos_id, "eos_token_id", n);
  check_id(spec.unknown_id, "unknown_token_id", n);
  check_id(spec.padding_id, "padding_token_id", n);

  index.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    index.emplace(spec.tokens[i], static_cast<std::int32_t>(i));

  // Types: as given (0 = undefined counts as normal), or inferred from the special ids.
  types.assign(n, token_normal);
  if (!spec.token_types.empty()) {
    for (std::size_t i = 0; i < n; ++i) {
      const std::int32_t t = spec.token_types[i];
      if (t < token_undefined || t > token_byte)
        fail("tokenizer.ggml.token_type[" + std::to_string(i) + "] = " + std::to_string(t) +
             " is not a token type (0..6)");
      types[i] = t == token_undefined ? token_normal : t;
    }
  } else {
    if (spec.model == "llama")
      for (std::size_t i = 0; i < n; ++i)
        if (parse_byte_token(spec.tokens[i]) >= 0) types[i] = token_byte;
    for (std::int32_t id : {spec.bos_id, spec.eos_id, spec.padding_id})
      if (id >= 0) types[id] = token_control;
    if (spec.unknown_id >= 0) types[spec.unknown_id] = token_unknown;
  }

  if (byte_level()) {
    const auto p = parse_pre_tokenizer(spec.pre);
    if (!p)
      fail("unsupported tokenizer.ggml.pre '" + spec.pre +
           "': known are default/gpt2, llama-bpe (Llama-3) and qwen2");
    pre = *p;
    whole_word_first = pre == PreTokenizer::llama3;
    for (int b = 0; b < 256; ++b) {
      const std::string text = byte_level::to_text(std::string(1, static_cast<char>(b)));
      const auto it = index.find(text);
      if (it == index.end())
        fail("the vocabulary has no token '" + text + "' for byte " + byte_token_text(b) +
             "; a gpt2 (byte-level BPE) vocabulary needs one for each of the 256 bytes");
      byte_token[b] = it->second;
    }
    merges.reserve(spec.merges.size());
    for (std::size_t r = 0; r < spec.merges.size(); ++r) {
      const std::string& m = spec.merges[r];
      const std::string where = "tokenizer.ggml.merges[" + std::to_string(r) + "] = '" + m + "'";
      const std::size_t sp = m.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 == m.size())
        fail(where + " is not two tokens separated by a space");
      const std::string left = m.substr(0, sp), right = m.substr(sp + 1);
      auto lookup = [&](const std::string& t) {
        const auto it = index.find(t);
        if (it == index.end())
          fail(where + " refers to '" + t + "', which is not in the vocabulary");
        return it->second;
      };
      const std::int32_t a = lookup(left), b = lookup(right), ab = lookup(left + right);
      merges.try_emplace(pair_key(a, b), Merge{static_cast<std::int32_t>(r), ab});
    }
  } else {
    if (spec.scores.empty())
      fail("a llama (SentencePiece) vocabulary needs tokenizer.ggml.scores, one per token");
    has_byte_fallback = true;
    for (int b = 0; b < 256; ++b) {
      const auto it = index.find(byte_token_text(b));
      byte_fallback[b] = it == index.end() ? -1 : it->second;
      if (it == index.end()) has_byte_fallback = false;
    }
    if (!has_byte_fallback && spec.unknown_id < 0) {
      int missing = 0;
      while (byte_fallback[missing] >= 0)
        ++missing;
      fail("the vocabulary lacks the byte token " + byte_token_text(missing) +
           " and has no unknown token; a llama (SentencePiece) vocabulary needs all 256 byte "
           "tokens <0x00>..<0xFF> or an unknown token for text outside the vocabulary");
    }
  }

  bytes.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::string& text = spec.tokens[i];
    switch (types[i]) {
      case token_control:
        bytes[i] = text;
        break;
      case token_unknown:
        bytes[i] = "\xEF\xBF\xBD";
        break;  // U+FFFD: text that had no token
      case token_user_defined:
        bytes[i] = text;
        break;
      case token_byte:
        if (!byte_level()) {
          const int b = parse_byte_token(text);
          if (b < 0)
            fail("token " + std::to_string(i) + " '" + text +
                 "' has type byte (6) but is not of the form <0xNN>");
          bytes[i] = std::string(1, static_cast<char>(b));
          break;
        }
        [[fallthrough]];
      default:
        bytes[i] = byte_level() ? byte_level::from_text(text)
                                : replace_all(text, sentencepiece_space, " ");
    }
  }

  for (std::size_t i = 0; i < n; ++i) {
    const std::int32_t t = types[i];
    if ((t == token_control || t == token_user_defined || t == token_unknown) &&
        !spec.tokens[i].empty() && index.at(spec.tokens[i]) == static_cast<std::int32_t>(i))
      specials.push_back({spec.tokens[i], static_cast<std::int32_t>(i)});
  }
  std::stable_sort(specials.begin(), specials.end(),
                   [](const auto& a, const auto& b) { return a.text.size() > b.text.size(); });
  for (const SpecialToken& t : specials)
    special_first_byte[static_cast<unsigned char>(t.text[0])] = true;
}

}  // namespace infergate::engine::detail
