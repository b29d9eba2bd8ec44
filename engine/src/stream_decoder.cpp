#include "infergate/engine/tokenizer.h"
#include "tokenizer_data.h"
#include "utf8.h"

namespace infergate::engine {
namespace {

// Moves the complete characters at the front of `pending` to the result; invalid sequences
// become U+FFFD; an unfinished character at the end stays for the next token.
std::string take_complete(std::string& pending) {
  std::string out;
  std::size_t i = 0;
  while (i < pending.size()) {
    const utf8::PrefixInfo p = utf8::classify_prefix(pending, i);
    if (p.kind == utf8::Prefix::unfinished) break;
    if (p.kind == utf8::Prefix::complete) {
      out.append(pending, i, p.len);
    } else {
      out.append(utf8::replacement_character);
    }
    i += p.len;
  }
  pending.erase(0, i);
  return out;
}

}  // namespace

StreamDecoder::StreamDecoder(const Tokenizer& t, bool strip_space_prefix)
    : tokenizer_(t), strip_next_(true), strip_space_prefix_(strip_space_prefix) {}

std::string StreamDecoder::push(std::int32_t id) {
  tokenizer_.d_->decode_into(id, strip_space_prefix_, strip_next_, pending_);
  return take_complete(pending_);
}

std::string StreamDecoder::finish() {
  std::string out = take_complete(pending_);
  if (!pending_.empty()) out.append(utf8::replacement_character);
  pending_.clear();
  strip_next_ = true;
  return out;
}

}  // namespace infergate::engine
