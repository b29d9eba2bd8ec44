// Byte-level BPE: each pre-tokenized word starts as its bytes' tokens; the adjacent pair with the
// lowest merge rank is merged (leftmost first among equals) until no pair has a merge. A heap of
// candidate pairs keeps long words O(n log n); candidates made stale by earlier merges are
// recognized on pop by comparing the ids they were made from.
#include <queue>

#include "byte_level.h"
#include "tokenizer_data.h"

namespace infergate::engine::detail {
namespace {

struct Symbol {
  std::int32_t id;  // -1 once merged into its left neighbour
  std::int32_t prev, next;
};

struct Candidate {
  std::int32_t rank;
  std::int32_t left, right;
  std::int32_t left_id, right_id, result;
  bool operator>(const Candidate& o) const {
    return rank != o.rank ? rank > o.rank : left > o.left;
  }
};

class WordMerger {
 public:
  explicit WordMerger(const TokenizerData& d) : d_(d) {}

  void encode(std::string_view word, std::vector<std::int32_t>& out) {
    if (word.size() == 1) {
      out.push_back(d_.byte_token[static_cast<unsigned char>(word[0])]);
      return;
    }
    const auto n = static_cast<std::int32_t>(word.size());
    syms_.clear();
    for (std::int32_t i = 0; i < n; ++i)
      syms_.push_back(
          {d_.byte_token[static_cast<unsigned char>(word[i])], i - 1, i + 1 < n ? i + 1 : -1});
    for (std::int32_t i = 0; i + 1 < n; ++i)
      consider(i, i + 1);
    while (!heap_.empty()) {
      const Candidate c = heap_.top();
      heap_.pop();
      Symbol& l = syms_[c.left];
      Symbol& r = syms_[c.right];
      if (l.id != c.left_id || r.id != c.right_id || l.next != c.right) continue;  // stale
      l.id = c.result;
      r.id = -1;
      l.next = r.next;
      if (r.next >= 0) syms_[r.next].prev = c.left;
      if (l.prev >= 0) consider(l.prev, c.left);
      if (l.next >= 0) consider(c.left, l.next);
    }
    for (std::int32_t i = 0; i >= 0; i = syms_[i].next)
      out.push_back(syms_[i].id);
  }

 private:
  void consider(std::int32_t left, std::int32_t right) {
    const std::int32_t a = syms_[left].id, b = syms_[right].id;
    const auto it = d_.merges.find(pair_key(a, b));
    if (it != d_.merges.end()) heap_.push({it->second.rank, left, right, a, b, it->second.result});
  }

  const TokenizerData& d_;
  std::vector<Symbol> syms_;
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap_;
};

}  // namespace

void encode_byte_level(const TokenizerData& d, std::string_view text,
                       std::vector<std::int32_t>& out) {
  std::vector<std::string_view> words;
  pre_tokenize(d.pre, text, words);
  WordMerger merger(d);
  for (std::string_view w : words) {
    if (d.whole_word_first) {
      const auto it = d.index.find(byte_level::to_text(w));
      if (it != d.index.end() && d.types[it->second] == token_normal) {
        out.push_back(it->second);
        continue;
      }
    }
    merger.encode(w, out);
  }
}

}  // namespace infergate::engine::detail
