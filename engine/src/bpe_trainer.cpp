// Byte-level BPE training. The corpus is reduced to its distinct pre-tokenized words with their
// counts; every merge step takes the most frequent adjacent pair (ties: smallest pair of ids),
// rewrites only the words that contain it (found through a pair -> words index) and adjusts the
// pair counts of just those words, so a step costs what the pair touches, not a recount.
#include "infergate/engine/bpe_trainer.h"

#include <algorithm>
#include <queue>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "byte_level.h"
#include "pretokenizer.h"

namespace infergate::engine {
namespace {

using Key = std::uint64_t;  // (left id, right id)

Key key_of(std::int32_t a, std::int32_t b) {
  return (static_cast<Key>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
}

struct Word {
  std::vector<std::int32_t> symbols;
  std::int64_t count;
};

struct HeapEntry {
  std::int64_t count;
  Key key;
  // Max-heap on count; among equal counts the smaller key comes first.
  bool operator<(const HeapEntry& o) const {
    return count != o.count ? count < o.count : key > o.key;
  }
};

class Trainer {
 public:
  Trainer(std::string_view corpus, std::unordered_set<std::string> forbidden_texts)
      : forbidden_texts_(std::move(forbidden_texts)) {
    std::vector<std::string_view> pieces;
    pre_tokenize(PreTokenizer::llama3, corpus, pieces);
    std::unordered_map<std::string_view, std::int64_t> freq;
    for (std::string_view p : pieces)
      ++freq[p];
    std::vector<std::pair<std::string_view, std::int64_t>> sorted(freq.begin(), freq.end());
    std::sort(sorted.begin(), sorted.end());  // a fixed word order keeps training deterministic
    words_.reserve(sorted.size());
    for (const auto& [text, count] : sorted) {
      Word w{{}, count};
      for (char c : text)
        w.symbols.push_back(static_cast<unsigned char>(c));
      words_.push_back(std::move(w));
    }
    for (int b = 0; b < 256; ++b)
      add_token(std::string(1, static_cast<char>(b)));
    for (std::size_t w = 0; w < words_.size(); ++w) {
      const auto& s = words_[w].symbols;
      for (std::size_t i = 0; i + 1 < s.size(); ++i) {
        const Key k = key_of(s[i], s[i + 1]);
        counts_[k] += words_[w].count;
        where_[k].push_back(static_cast<std::int32_t>(w));
      }
    }
    for (const auto& [k, c] : counts_)
      heap_.push({c, k});
    seen_in_step_.assign(words_.size(), -1);
  }

  // Learns merges until the vocabulary holds `target` tokens; false when pairs run out first.
  bool run(std::size_t target) {
    while (bytes_.size() < target) {
      if (heap_.empty()) return false;
      const HeapEntry e = heap_.top();
      heap_.pop();
      const auto it = counts_.find(e.key);
      if (it == counts_.end() || it->second != e.count) continue;  // stale entry
      const auto a = static_cast<std::int32_t>(e.key >> 32);
      const auto b = static_cast<std::int32_t>(e.key & 0xFFFFFFFFu);
      const std::string merged = bytes_[a] + bytes_[b];
      if (forbidden_texts_.count(byte_level::to_text(merged))) {
        forbidden_.insert(e.key);
        continue;
      }
      merges_.push_back(byte_level::to_text(bytes_[a]) + " " + byte_level::to_text(bytes_[b]));
      apply(e.key, a, b, add_token(merged));
    }
    return true;
  }

  const std::vector<std::string>& token_bytes() const { return bytes_; }
  const std::vector<std::string>& merges() const { return merges_; }

 private:
  // The id of a token with these bytes, new or (when two merges spell the same bytes) existing.
  std::int32_t add_token(const std::string& bytes) {
    const auto [it, added] = ids_.try_emplace(bytes, static_cast<std::int32_t>(bytes_.size()));
    if (added) bytes_.push_back(bytes);
    return it->second;
  }

  void apply(Key pair, std::int32_t a, std::int32_t b, std::int32_t merged) {
    ++step_;
    std::vector<Key> changed;
    std::vector<std::int32_t> next;
    const std::vector<std::int32_t> affected = std::move(where_[pair]);
    where_.erase(pair);
    for (std::int32_t w : affected) {
      if (seen_in_step_[w] == step_) continue;
      seen_in_step_[w] = step_;
      Word& word = words_[w];
      const auto& s = word.symbols;
      next.clear();
      bool hit = false;
      for (std::size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          next.push_back(merged);
          ++i;
          hit = true;
        } else {
          next.push_back(s[i]);
        }
      }
      if (!hit) continue;
      for (std::size_t i = 0; i + 1 < s.size(); ++i) {
        const Key k = key_of(s[i], s[i + 1]);
        counts_[k] -= word.count;
        changed.push_back(k);
      }
      for (std::size_t i = 0; i + 1 < next.size(); ++i) {
        const Key k = key_of(next[i], next[i + 1]);
        counts_[k] += word.count;
        changed.push_back(k);
        if (next[i] == merged || next[i + 1] == merged) where_[k].push_back(w);
      }
      word.symbols.swap(next);
    }
    std::sort(changed.begin(), changed.end());
    changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
    for (Key k : changed) {
      const auto it = counts_.find(k);
      if (it->second <= 0) {
        counts_.erase(it);
      } else if (!forbidden_.count(k)) {
        heap_.push({it->second, k});
      }
    }
  }

  std::unordered_set<std::string> forbidden_texts_;  // the specials: no learned token may equal one
  std::unordered_set<Key> forbidden_;
  std::vector<Word> words_;
  std::vector<std::string> bytes_;  // id -> the token's bytes
  std::unordered_map<std::string, std::int32_t> ids_;
  std::vector<std::string> merges_;
  std::unordered_map<Key, std::int64_t> counts_;
  std::unordered_map<Key, std::vector<std::int32_t>> where_;  // may list a word twice, or stale
  std::priority_queue<HeapEntry> heap_;                       // may hold stale counts
  std::vector<std::int64_t> seen_in_step_;
  std::int64_t step_ = 0;
};

}  // namespace

std::vector<std::string> default_special_tokens() {
  return {"<s>", "</s>", "<|im_start|>", "<|im_end|>"};
}

TokenizerSpec train_byte_level_bpe(std::string_view corpus, std::size_t vocab_size,
                                   std::span<const std::string> special_tokens) {
  std::unordered_set<std::string> specials;
  for (const std::string& s : special_tokens) {
    if (s.empty()) throw std::invalid_argument("BPE training: a special token is empty");
    if (!specials.insert(s).second)
      throw std::invalid_argument("BPE training: special token '" + s + "' is given twice");
    for (int b = 0; b < 256; ++b)
      if (byte_level::to_text(std::string(1, static_cast<char>(b))) == s)
        throw std::invalid_argument("BPE training: special token '" + s +
                                    "' is the text of a byte token");
  }
  if (vocab_size < 256 + special_tokens.size())
    throw std::invalid_argument("BPE training: vocab_size " + std::to_string(vocab_size) +
                                " leaves no room for the 256 byte tokens and " +
                                std::to_string(special_tokens.size()) + " special tokens");
  const std::size_t learned = vocab_size - special_tokens.size();
  Trainer trainer(corpus, specials);
  if (!trainer.run(learned))
    throw std::invalid_argument("BPE training: the corpus has too few distinct pairs for " +
                                std::to_string(vocab_size) + " tokens (reached " +
                                std::to_string(trainer.token_bytes().size()) + ")");

  TokenizerSpec spec;
  spec.model = "gpt2";
  spec.pre = "llama-bpe";
  for (const std::string& b : trainer.token_bytes())
    spec.tokens.push_back(byte_level::to_text(b));
  spec.token_types.assign(spec.tokens.size(), token_normal);
  for (const std::string& s : special_tokens) {
    const auto id = static_cast<std::int32_t>(spec.tokens.size());
    if (s == "<s>") spec.bos_id = id;
    if (s == "</s>") spec.eos_id = id;
    spec.tokens.push_back(s);
    spec.token_types.push_back(token_control);
  }
  spec.merges = trainer.merges();
  spec.add_bos = true;
  return spec;
}

}  // namespace infergate::engine
