// The paged KV cache's bookkeeping: a pool of fixed-size blocks (each holds `block_size`
// positions of keys and values for every layer) and per-sequence block tables. The storage
// itself belongs to the backend (host or device memory); this only decides which block holds
// which positions. Not thread-safe: owned by the engine loop.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace infergate::engine {

class BlockPool {
 public:
  BlockPool(std::int32_t n_blocks, std::int32_t block_size);
  std::int32_t block_size() const { return block_size_; }
  std::int32_t total() const { return total_; }
  std::int32_t free_count() const { return static_cast<std::int32_t>(free_.size()); }
  std::int32_t used() const { return total_ - free_count(); }
  std::optional<std::int32_t> allocate();
  void release(std::int32_t block);
  // Blocks needed to hold n positions.
  std::int32_t blocks_for(std::int64_t n_positions) const {
    return static_cast<std::int32_t>((n_positions + block_size_ - 1) / block_size_);
  }

 private:
  std::int32_t block_size_;
  std::int32_t total_;
  std::vector<std::int32_t> free_;
  std::vector<bool> in_use_;
};

// The blocks one sequence holds, in position order.
class BlockTable {
 public:
  // Makes the table cover n_positions; false (keeping what it got) when the pool runs out.
  bool reserve(BlockPool& pool, std::int64_t n_positions);
  void release(BlockPool& pool);
  const std::vector<std::int32_t>& blocks() const { return blocks_; }

 private:
  std::vector<std::int32_t> blocks_;
};

}  // namespace infergate::engine
