// SentencePiece BPE as llama vocabularies use it: the escaped text starts as its characters; the
// adjacent pair whose concatenation is the highest-scoring vocabulary piece is merged (leftmost
// first among equals) until no concatenation is a piece. Characters left without a piece fall
// back to <0xNN> byte tokens (or the unknown token when the vocabulary has no byte tokens).
#include <queue>

#include "tokenizer_data.h"
#include "utf8.h"

namespace infergate::engine::detail {
namespace {

struct Symbol {
  std::uint32_t offset, len;  // len 0 once merged into its left neighbour
  std::int32_t prev, next;
};

struct Candidate {
  float score;
  std::int32_t left, right;
  std::uint32_t len;  // of the merged piece; differs from the symbols' once either has changed
  bool operator<(const Candidate& o) const {
    return score != o.score ? score < o.score : left > o.left;
  }
};

bool mergeable(const TokenizerData& d, std::int32_t id) {
  return d.types[id] == token_normal || d.types[id] == token_user_defined;
}

}  // namespace

void encode_sentencepiece(const TokenizerData& d, std::string_view text,
                          std::vector<std::int32_t>& out) {
  std::vector<Symbol> syms;
  for (std::size_t i = 0; i < text.size();) {
    const auto len = utf8::next(text, i).len;
    const auto n = static_cast<std::int32_t>(syms.size());
    syms.push_back({static_cast<std::uint32_t>(i), len, n - 1, -1});
    if (n > 0) syms[n - 1].next = n;
    i += len;
  }
  if (syms.empty()) return;

  std::priority_queue<Candidate> heap;
  auto consider = [&](std::int32_t left, std::int32_t right) {
    const std::uint32_t len = syms[left].len + syms[right].len;
    const auto it = d.index.find(text.substr(syms[left].offset, len));
    if (it != d.index.end() && mergeable(d, it->second))
      heap.push({d.spec.scores[it->second], left, right, len});
  };
  for (std::size_t i = 0; i + 1 < syms.size(); ++i)
    consider(static_cast<std::int32_t>(i), static_cast<std::int32_t>(i + 1));
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    Symbol& l = syms[c.left];
    Symbol& r = syms[c.right];
    if (l.len == 0 || r.len == 0 || l.next != c.right || l.len + r.len != c.len) continue;
    l.len = c.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = c.left;
    if (l.prev >= 0) consider(l.prev, c.left);
    if (l.next >= 0) consider(c.left, l.next);
  }

  for (std::int32_t i = 0; i >= 0; i = syms[i].next) {
    const std::string_view piece = text.substr(syms[i].offset, syms[i].len);
    const auto it = d.index.find(piece);
    if (it != d.index.end() && mergeable(d, it->second)) {
      out.push_back(it->second);
      continue;
    }
    bool all_bytes = true;
    for (char c : piece)
      all_bytes = all_bytes && d.byte_fallback[static_cast<unsigned char>(c)] >= 0;
    if (all_bytes) {
      for (char c : piece)
        out.push_back(d.byte_fallback[static_cast<unsigned char>(c)]);
    } else {
      out.push_back(d.spec.unknown_id);
    }
  }
}

}  // namespace infergate::engine::detail
