// Learns a byte-level BPE vocabulary from text, so that make-model can ship models with a real
// tokenizer and no download. Pure functions; safe to call from any thread.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "infergate/engine/tokenizer.h"

namespace infergate::engine {

// A gpt2-model spec (pre-tokenizer "llama-bpe"): 256 byte tokens in the GPT-2 byte->unicode
// alphabet (id = byte value), then merges learned greedily by pair frequency over pre-tokenized
// words (ties go to the smaller pair of ids) until the vocabulary holds
// `vocab_size - special_tokens.size()` tokens, then the special tokens, typed control.
// bos_id/eos_id are the ids of "<s>"/"</s>" when those are among the specials. Deterministic:
// the same corpus, size and specials give the same spec. Throws std::invalid_argument when the
// size is too small for the bytes and specials, a special is empty or repeated, or the corpus
// has too few distinct pairs to reach the size.
TokenizerSpec train_byte_level_bpe(std::string_view corpus, std::size_t vocab_size,
                                   std::span<const std::string> special_tokens);

// The special tokens of generated models, in id order: "<s>" (BOS), "</s>" (EOS),
// "<|im_start|>", "<|im_end|>" (ChatML).
std::vector<std::string> default_special_tokens();

// The English text shipped in the repo (engine/data/corpus/), embedded at build time.
std::string_view builtin_corpus();

}  // namespace infergate::engine
