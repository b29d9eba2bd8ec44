#include "infergate/engine/kv_cache.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace infergate::engine {

BlockPool::BlockPool(std::int32_t n_blocks, std::int32_t block_size)
    : block_size_(block_size), total_(n_blocks) {
  if (n_blocks <= 0 || block_size <= 0) throw std::invalid_argument("KV pool needs blocks and a block size");
  blocks_.resize(static_cast<std::size_t>(n_blocks));
  free_.reserve(static_cast<std::size_t>(n_blocks));
  // Lowest ids handed out first (popped from the back).
  for (std::int32_t b = n_blocks - 1; b >= 0; --b) free_.push_back(b);
}

std::optional<std::int32_t> BlockPool::allocate() {
  std::int32_t b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else if (!idle_.empty()) {  // the cached block released longest ago gets new content
    b = idle_.front();
    unpublish(b);
  } else {
    return std::nullopt;
  }
  Block& blk = blocks_[static_cast<std::size_t>(b)];
  blk.holders = 1;
  ++blk.generation;
  return b;
}

void BlockPool::release(std::int32_t block) {
  if (block < 0 || block >= total_ || blocks_[static_cast<std::size_t>(block)].holders <= 0) {
    throw std::logic_error("KV block " + std::to_string(block) + " released twice or never allocated");
  }
  Block& blk = blocks_[static_cast<std::size_t>(block)];
  if (--blk.holders > 0) return;
  if (blk.published) {
    blk.idle_at = idle_.insert(idle_.end(), block);
  } else {
    free_.push_back(block);
  }
}

std::uint64_t BlockPool::hash(const Ref& parent, std::span<const std::int32_t> tokens) {
  // FNV-1a over the parent's identity and the tokens; a match is confirmed by comparing them.
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&h](std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xffu;
      h *= 1099511628211ull;
    }
  };
  mix(static_cast<std::uint64_t>(static_cast<std::uint32_t>(parent.block)));
  mix(parent.generation);
  for (const std::int32_t t : tokens) mix(static_cast<std::uint32_t>(t));
  return h;
}

std::optional<std::int32_t> BlockPool::take_cached(const Ref& parent, std::span<const std::int32_t> tokens) {
  const auto it = cache_.find(hash(parent, tokens));
  if (it == cache_.end()) return std::nullopt;
  const auto& [b, key] = it->second;
  if (!(key.parent == parent) || !std::equal(tokens.begin(), tokens.end(), key.tokens.begin(), key.tokens.end())) {
    return std::nullopt;  // another prefix with the same hash
  }
  Block& blk = blocks_[static_cast<std::size_t>(b)];
  if (blk.holders++ == 0) idle_.erase(blk.idle_at);
  return b;
}

void BlockPool::publish(std::int32_t block, const Ref& parent, std::span<const std::int32_t> tokens) {
  Block& blk = blocks_[static_cast<std::size_t>(block)];
  if (blk.published || blk.holders <= 0) return;
  const std::uint64_t h = hash(parent, tokens);
  if (cache_.count(h) != 0) return;  // published already (or a hash collision: not cached)
  cache_.emplace(h, std::make_pair(block, Key{parent, std::vector<std::int32_t>(tokens.begin(), tokens.end())}));
  blk.published = h;
}

void BlockPool::unpublish(std::int32_t block) {
  Block& blk = blocks_[static_cast<std::size_t>(block)];
  if (!blk.published) return;
  cache_.erase(*blk.published);
  blk.published.reset();
  if (blk.holders == 0) idle_.erase(blk.idle_at);
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
  // Last block first: cached blocks are reused least recently released first, so a prefix's
  // later blocks go before its earlier ones (a block is only found through the one before it).
  for (auto it = blocks_.rbegin(); it != blocks_.rend(); ++it) pool.release(*it);
  blocks_.clear();
}

}  // namespace infergate::engine
