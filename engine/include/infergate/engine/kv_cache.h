// The paged KV cache's bookkeeping: a pool of fixed-size blocks (each holds `block_size`
// positions of keys and values for every layer) and per-sequence block tables. The storage
// itself belongs to the backend (host or device memory); this only decides which block holds
// which positions. Not thread-safe: owned by the engine loop.
//
// Prefix caching: a full block of a prompt can be published under what it holds (the block
// before it, and its tokens). Its keys and values are a function of exactly those (every kernel
// path is batch-invariant), so a later prompt that starts the same way takes the block instead
// of computing it again. Blocks are reference counted; a published block nobody holds stays
// cached, and is reused for other content only when no plain free block is left (least recently
// released first).
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace infergate::engine {

class BlockPool {
 public:
  BlockPool(std::int32_t n_blocks, std::int32_t block_size);
  std::int32_t block_size() const { return block_size_; }
  std::int32_t total() const { return total_; }
  // Blocks that can be handed out: free ones and cached ones nobody holds.
  std::int32_t free_count() const { return static_cast<std::int32_t>(free_.size() + idle_.size()); }
  std::int32_t used() const { return total_ - free_count(); }
  std::int32_t cached_count() const { return static_cast<std::int32_t>(cache_.size()); }
  std::optional<std::int32_t> allocate();
  // Drops one holder of the block.
  void release(std::int32_t block);
  // Blocks needed to hold n positions.
  std::int32_t blocks_for(std::int64_t n_positions) const {
    return static_cast<std::int32_t>((n_positions + block_size_ - 1) / block_size_);
  }

  // Identifies a block's content across reuse of its id: (id, how many times it was handed out).
  struct Ref {
    std::int32_t block = -1;
    std::uint64_t generation = 0;
    bool operator==(const Ref&) const = default;
  };
  Ref ref(std::int32_t block) const { return {block, blocks_[static_cast<std::size_t>(block)].generation}; }
  // The cached block holding `tokens` (block_size of them) right after `parent` (Ref{} for the
  // first block), now held once more by the caller; nullopt when there is none.
  std::optional<std::int32_t> take_cached(const Ref& parent, std::span<const std::int32_t> tokens);
  // Publishes `block` (held by the caller, its keys and values written) as holding `tokens`
  // after `parent`. A prefix published already keeps its block.
  void publish(std::int32_t block, const Ref& parent, std::span<const std::int32_t> tokens);

 private:
  struct Key {
    Ref parent;
    std::vector<std::int32_t> tokens;
  };
  struct Block {
    std::int32_t holders = 0;
    std::uint64_t generation = 0;
    std::optional<std::uint64_t> published;  // its hash in cache_
    std::list<std::int32_t>::iterator idle_at;  // valid while cached and held by nobody
  };
  static std::uint64_t hash(const Ref& parent, std::span<const std::int32_t> tokens);
  void unpublish(std::int32_t block);

  std::int32_t block_size_;
  std::int32_t total_;
  std::vector<std::int32_t> free_;
  std::list<std::int32_t> idle_;  // cached, held by nobody: least recently released first
  std::vector<Block> blocks_;
  std::unordered_map<std::uint64_t, std::pair<std::int32_t, Key>> cache_;  // hash -> block, content
};

// The blocks one sequence holds, in position order.
class BlockTable {
 public:
  // Makes the table cover n_positions; false (keeping what it got) when the pool runs out.
  bool reserve(BlockPool& pool, std::int64_t n_positions);
  // Appends a block the caller already holds (a cached prefix block).
  void adopt(std::int32_t block) { blocks_.push_back(block); }
  void release(BlockPool& pool);
  const std::vector<std::int32_t>& blocks() const { return blocks_; }

 private:
  std::vector<std::int32_t> blocks_;
};

}  // namespace infergate::engine
