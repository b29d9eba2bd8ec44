#include "pretokenizer.h"

#include <cstdint>

#include "unicode_class.h"
#include "utf8.h"

namespace infergate::engine {
namespace {

struct Char {
  std::uint32_t cp;
  std::uint32_t offset;  // byte offset in the text
  CharClass cls;
};

// The text as characters, with a sentinel at the end holding the text's size.
std::vector<Char> split_chars(std::string_view text) {
  std::vector<Char> chars;
  chars.reserve(text.size() + 1);
  for (std::size_t i = 0; i < text.size();) {
    const utf8::Unit u = utf8::next(text, i);
    const CharClass cls = u.valid ? classify_codepoint(u.cp) : CharClass::other;
    chars.push_back({u.valid ? u.cp : 0xFFFFFFFFu, static_cast<std::uint32_t>(i), cls});
    i += u.len;
  }
  chars.push_back({0, static_cast<std::uint32_t>(text.size()), CharClass::other});
  return chars;
}

// Matches the alternatives in the regexes' order, at chars[i] (i < n); returns the end of the
// match. Each alternative is written out as the backtracking regex engine would resolve it.
class Matcher {
 public:
  Matcher(PreTokenizer kind, const std::vector<Char>& chars)
      : kind_(kind), c_(chars), n_(chars.size() - 1) {}

  std::size_t match(std::size_t i) const {
    if (std::size_t e = contraction(i)) return e;
    return kind_ == PreTokenizer::gpt2 ? match_gpt2(i) : match_llama3(i);
  }

 private:
  bool is(std::size_t i, CharClass cls) const { return i < n_ && c_[i].cls == cls; }
  bool is_letter(std::size_t i) const { return is(i, CharClass::letter); }
  bool is_number(std::size_t i) const { return is(i, CharClass::number); }
  bool is_space(std::size_t i) const { return is(i, CharClass::space); }
  bool is_other(std::size_t i) const { return is(i, CharClass::other); }
  bool is_cp(std::size_t i, std::uint32_t cp) const { return i < n_ && c_[i].cp == cp; }
  bool is_newline(std::size_t i) const { return is_cp(i, '\r') || is_cp(i, '\n'); }
  std::size_t run(std::size_t i, CharClass cls) const {
    while (is(i, cls))
      ++i;
    return i;
  }

  // 's 't 're 've 'm 'll 'd; case-insensitive for Llama-3 and Qwen2. 0 when none matches.
  std::size_t contraction(std::size_t i) const {
    if (!is_cp(i, '\'')) return 0;
    auto at = [&](std::size_t k, char ch) {
      if (k >= n_) return false;
      std::uint32_t cp = c_[k].cp;
      if (kind_ != PreTokenizer::gpt2 && cp >= 'A' && cp <= 'Z') cp += 'a' - 'A';
      return cp == static_cast<std::uint32_t>(ch);
    };
    for (char ch : {'s', 't', 'm', 'd'})
      if (at(i + 1, ch)) return i + 2;
    for (const char* two : {"re", "ve", "ll"})
      if (at(i + 1, two[0]) && at(i + 2, two[1])) return i + 3;
    return 0;
  }

  // \s+(?!\S)|\s+ : a whitespace run, leaving its last character to the word that follows.
  std::size_t whitespace(std::size_t i) const {
    const std::size_t j = run(i, CharClass::space);
    if (j == n_ || j - 1 == i) return j;
    return j - 1;
  }

  std::size_t match_gpt2(std::size_t i) const {
    const std::size_t k = is_cp(i, ' ') ? i + 1 : i;  // the optional leading space
    if (is_letter(k)) return run(k, CharClass::letter);
    if (is_number(k)) return run(k, CharClass::number);
    if (is_other(k)) return run(k, CharClass::other);
    if (is_space(i)) return whitespace(i);
    return i + 1;
  }

  std::size_t match_llama3(std::size_t i) const {
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (is_letter(i)) return run(i, CharClass::letter);
    if (!is_newline(i) && !is_number(i) && is_letter(i + 1)) return run(i + 1, CharClass::letter);
    // \p{N}{1,3} (Qwen2: \p{N})
    if (is_number(i)) {
      const std::size_t max = kind_ == PreTokenizer::qwen2 ? 1 : 3;
      std::size_t j = i;
      while (j - i < max && is_number(j))
        ++j;
      return j;
    }
    //  ?[^\s\p{L}\p{N}]+[\r\n]*
    const std::size_t k = is_cp(i, ' ') ? i + 1 : i;
    if (is_other(k)) {
      std::size_t j = run(k, CharClass::other);
      while (is_newline(j))
        ++j;
      return j;
    }
    if (is_space(i)) {
      // \s*[\r\n]+ : whitespace up to and including its last line break
      const std::size_t j = run(i, CharClass::space);
      for (std::size_t m = j; m > i; --m)
        if (is_newline(m - 1)) return m;
      return whitespace(i);
    }
    return i + 1;
  }

  PreTokenizer kind_;
  const std::vector<Char>& c_;
  std::size_t n_;
};

}  // namespace

std::optional<PreTokenizer> parse_pre_tokenizer(std::string_view name) {
  if (name.empty() || name == "default" || name == "gpt2" || name == "gpt-2")
    return PreTokenizer::gpt2;
  if (name == "llama-bpe" || name == "llama3" || name == "llama-v3" || name == "smaug-bpe" ||
      name == "dbrx")
    return PreTokenizer::llama3;
  if (name == "qwen2") return PreTokenizer::qwen2;
  return std::nullopt;
}

void pre_tokenize(PreTokenizer kind, std::string_view text, std::vector<std::string_view>& out) {
  if (text.empty()) return;
  const std::vector<Char> chars = split_chars(text);
  const Matcher m(kind, chars);
  const std::size_t n = chars.size() - 1;
  for (std::size_t i = 0; i < n;) {
    const std::size_t j = m.match(i);
    out.push_back(text.substr(chars[i].offset, chars[j].offset - chars[i].offset));
    i = j;
  }
}

}  // namespace infergate::engine
