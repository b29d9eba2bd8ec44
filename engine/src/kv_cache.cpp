#include <stdexcept>
#include <string>

#include "infergate/engine/kv_cache.h"

namespace infergate::engine {

BlockPool::BlockPool(std::int32_t n_blocks, std::int32_t block_size)
    : block_size_(block_size), total_(n_blocks), in_use_(static_cast<std::size_t>(n_blocks), false) {
  if (n_blocks <= 0 || block_size <= 0) throw std::invalid_argument("KV pool needs blocks and a block size");
  free_.reserve(static_cast<std::size_t>(n_blocks));
  // Lowest ids handed out first (popped from the back).
  for (std::int32_t b = n_blocks - 1; b >= 0; --b) free_.push_back(b);
}

std::optional<std::int32_t> BlockPool::allocate() {
  if (free_.empty()) return std::nullopt;
  const std::int32_t b = free_.back();
  free_.pop_back();
  in_use_[static_cast<std::size_t>(b)] = true;
  return b;
}

void BlockPool::release(std::int32_t block) {
  if (block < 0 || block >= total_ || !in_use_[static_cast<std::size_t>(block)]) {
    throw std::logic_error("KV block " + std::to_string(block) + " released twice or never allocated");
  }
  in_use_[static_cast<std::size_t>(block)] = false;
  free_.push_back(block);
}

bool BlockTable::reserve(BlockPool& pool, std::int64_t n_positions) {
  const std::int32_t need = pool.blocks_for(n_positions);
  while (static_cast<std::int32_t>(blocks_.size()) < need) {
    const auto b = pool.allocate();
    if (!b) return false;
    blocks_.push_back(*b);
  }
  return true;
}

void BlockTable::release(BlockPool& pool) {
  for (const auto b : blocks_) pool.release(b);
  blocks_.clear();
}

}  // namespace infergate::engine
