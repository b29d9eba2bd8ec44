// The pre-tokenizer split of byte-level BPE: text is cut into words by the regex of the model
// family (hand-written here; std::regex is far too slow and lacks \p{L}), and BPE merges never
// cross a cut. Stateless; thread-safe.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace infergate::engine {

enum class PreTokenizer {
  // GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  gpt2,
  // Llama-3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
  //          ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  llama3,
  // Qwen2: as Llama-3, but digits one at a time (\p{N}).
  qwen2,
};

// tokenizer.ggml.pre -> split; nullopt for names this tokenizer does not know.
std::optional<PreTokenizer> parse_pre_tokenizer(std::string_view name);

// Appends the pieces of `text` to `out`, in order; they concatenate to `text`. Invalid UTF-8
// bytes count as punctuation.
void pre_tokenize(PreTokenizer kind, std::string_view text, std::vector<std::string_view>& out);

}  // namespace infergate::engine
