#include "infergate/engine/tokenizer.h"

#include "tokenizer_data.h"

namespace infergate::engine {
namespace {

constexpr std::string_view sentencepiece_space = "\xE2\x96\x81";  // U+2581 "▁"

// One piece of text between special tokens (special_id < 0) or one special token.
struct Fragment {
  std::string_view text;
  std::int32_t special_id;
};

// Splits out every occurrence of a special token's text, the longest one where several match.
std::vector<Fragment> split_specials(const detail::TokenizerData& d, std::string_view text) {
  std::vector<Fragment> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size();) {
    const detail::SpecialToken* hit = nullptr;
    if (d.special_first_byte[static_cast<unsigned char>(text[i])]) {
      for (const auto& s : d.specials)
        if (text.compare(i, s.text.size(), s.text) == 0) {
          hit = &s;
          break;
        }
    }
    if (!hit) {
      ++i;
      continue;
    }
    if (i > start) out.push_back({text.substr(start, i - start), -1});
    out.push_back({{}, hit->id});
    i += hit->text.size();
    start = i;
  }
  if (start < text.size()) out.push_back({text.substr(start), -1});
  return out;
}

}  // namespace

namespace detail {

void TokenizerData::decode_into(std::int32_t id, bool strip_space_prefix, bool& at_text_start,
                                std::string& out) const {
  if (id < 0 || id >= size())
    throw TokenizerError("tokenizer: token id " + std::to_string(id) +
                         " is outside the vocabulary (" + std::to_string(size()) + " tokens)");
  const bool was_start = at_text_start;
  at_text_start = is_special(id);
  if (types[id] == token_control) return;
  const std::string& b = bytes[id];
  const bool strip = strip_space_prefix && was_start && !byte_level() && !b.empty() && b[0] == ' ';
  out.append(b, strip ? 1 : 0);
}

}  // namespace detail

Tokenizer::Tokenizer(TokenizerSpec spec)
    : d_(std::make_shared<const detail::TokenizerData>(std::move(spec))) {}

std::vector<std::int32_t> Tokenizer::encode(std::string_view text, bool add_bos,
                                            bool parse_special) const {
  std::vector<std::int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_bos && d_->spec.bos_id >= 0) out.push_back(d_->spec.bos_id);
  const std::vector<Fragment> fragments =
      parse_special ? split_specials(*d_, text) : std::vector<Fragment>{{text, -1}};
  bool after_special = true;  // SentencePiece prefixes a space at the start and after specials
  std::string escaped;
  for (const Fragment& f : fragments) {
    if (f.special_id >= 0) {
      out.push_back(f.special_id);
      after_special = true;
      continue;
    }
    if (f.text.empty()) continue;
    if (d_->byte_level()) {
      detail::encode_byte_level(*d_, f.text, out);
    } else {
      escaped.clear();
      if (after_special) escaped.append(sentencepiece_space);
      for (char c : f.text) {
        if (c == ' ') {
          escaped.append(sentencepiece_space);
        } else {
          escaped += c;
        }
      }
      detail::encode_sentencepiece(*d_, escaped, out);
    }
    after_special = false;
  }
  return out;
}

std::string Tokenizer::decode(std::span<const std::int32_t> ids, bool strip_space_prefix) const {
  std::string out;
  bool at_text_start = true;
  for (std::int32_t id : ids)
    d_->decode_into(id, strip_space_prefix, at_text_start, out);
  return out;
}

std::string Tokenizer::token_bytes(std::int32_t id) const {
  if (id < 0 || id >= d_->size())
    throw TokenizerError("tokenizer: token id " + std::to_string(id) +
                         " is outside the vocabulary (" + std::to_string(d_->size()) + " tokens)");
  return d_->bytes[id];
}

bool Tokenizer::is_control(std::int32_t id) const {
  return id >= 0 && id < d_->size() && d_->types[id] == token_control;
}

std::int32_t Tokenizer::bos() const {
  return d_->spec.bos_id;
}
std::int32_t Tokenizer::eos() const {
  return d_->spec.eos_id;
}
std::size_t Tokenizer::vocab_size() const {
  return d_->spec.tokens.size();
}
const TokenizerSpec& Tokenizer::spec() const {
  return d_->spec;
}

std::optional<std::int32_t> Tokenizer::find(std::string_view token_text) const {
  const auto it = d_->index.find(token_text);
  if (it == d_->index.end()) return std::nullopt;
  return it->second;
}

}  // namespace infergate::engine
