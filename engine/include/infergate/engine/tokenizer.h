// Text <-> token ids for the vocabularies GGUF files carry: `gpt2` (byte-level BPE, as in GPT-2,
// Llama-3, Qwen) and `llama` (SentencePiece BPE with byte fallback, as in Llama-2).
// A Tokenizer is immutable after construction and safe to use from many threads at once; copies
// share their tables. A StreamDecoder belongs to one sequence and one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace infergate::engine {

// What GGUF stores under tokenizer.ggml.* (the GGUF reader fills it; make-model writes it).
struct TokenizerSpec {
  std::string model;                // "gpt2" (byte-level BPE) or "llama" (SentencePiece BPE)
  std::string pre;                  // tokenizer.ggml.pre: ""/"default"/"gpt2", "llama-bpe", "qwen2"
  std::vector<std::string> tokens;  // tokenizer.ggml.tokens
  std::vector<float> scores;        // tokenizer.ggml.scores (llama: merge priority)
  std::vector<std::int32_t> token_types;  // tokenizer.ggml.token_type; may be empty
  std::vector<std::string> merges;        // tokenizer.ggml.merges ("a b"), gpt2 only
  std::int32_t bos_id = -1, eos_id = -1, unknown_id = -1, padding_id = -1;
  bool add_bos = true;
  std::string chat_template;  // tokenizer.chat_template (Jinja text), may be empty
};

// Values of tokenizer.ggml.token_type.
enum TokenType : std::int32_t {
  token_undefined = 0,
  token_normal = 1,
  token_unknown = 2,
  token_control = 3,
  token_user_defined = 4,
  token_unused = 5,
  token_byte = 6,
};

class TokenizerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
struct TokenizerData;
}

class Tokenizer {
 public:
  // Validates the spec (ids in range, merges refer to tokens, byte tokens present, ...) and
  // throws TokenizerError saying what is wrong.
  explicit Tokenizer(TokenizerSpec spec);

  // Any bytes are accepted; invalid UTF-8 is encoded byte by byte. With `parse_special`, the
  // text of control and user-defined tokens (e.g. "<|im_start|>") becomes that single id, as
  // chat templates need; without it such text is tokenized like any other.
  std::vector<std::int32_t> encode(std::string_view text, bool add_bos,
                                   bool parse_special = true) const;

  // Concatenated bytes of the tokens; control tokens (BOS, EOS, <|im_end|>) give "". For llama
  // vocabularies encode() puts a "▁" (a space) in front of the text and after each special
  // token: `strip_space_prefix` removes it again, making decode the inverse of encode. Leave it
  // false for generated tokens, whose leading space separates them from the prompt.
  // Throws TokenizerError for an id outside the vocabulary.
  std::string decode(std::span<const std::int32_t> ids, bool strip_space_prefix = false) const;

  // What one token contributes to decode(); for control tokens their text.
  std::string token_bytes(std::int32_t id) const;
  bool is_control(std::int32_t id) const;  // false for ids outside the vocabulary
  std::int32_t bos() const;                // -1 when the vocabulary has none
  std::int32_t eos() const;
  std::size_t vocab_size() const;
  const TokenizerSpec& spec() const;
  // The id of the exact vocabulary entry, e.g. "<|im_end|>".
  std::optional<std::int32_t> find(std::string_view token_text) const;

 private:
  friend class StreamDecoder;
  std::shared_ptr<const detail::TokenizerData> d_;
};

// Turns a stream of token ids into text without ever emitting half a UTF-8 character: bytes of
// an unfinished character wait for the next token. When the tokens decode to valid UTF-8, the
// concatenated output equals Tokenizer::decode of all ids (with the same strip_space_prefix);
// invalid sequences come out as U+FFFD. Holds a copy of the tokenizer (cheap, shared tables).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& t, bool strip_space_prefix = false);
  std::string push(std::int32_t id);  // text completed so far (may be "")
  std::string finish();               // whatever is left (an unfinished tail becomes U+FFFD)

 private:
  Tokenizer tokenizer_;
  bool strip_next_;  // the next text token is at the start of a text (see Tokenizer::decode)
  bool strip_space_prefix_;
  std::string pending_;  // bytes of a character that is not complete yet
};

}  // namespace infergate::engine
