// Causal grouped-query attention over the paged KV cache on the device, for prefill and decode
// alike: every query token attends to the positions 0..pos of its own sequence, whose keys and
// values (already stored, including the token's own) are found through the block table.
#pragma once

#include <cstdint>

#include "infergate/kernels/cuda/runtime.h"

namespace infergate::kernels::cuda {

// All pointers are device memory.
struct PagedBatch {
  const std::int32_t* token_seq = nullptr;  // n_tokens: the sequence each token belongs to
  const std::int32_t* token_pos = nullptr;  // n_tokens: its position (it sees 0..pos)
  const std::int32_t* seq_table = nullptr;  // per sequence: where its block table starts in `blocks`
  const std::int32_t* blocks = nullptr;     // the block tables, one after another
  std::int64_t n_tokens = 0;
  std::int64_t block_size = 0;
};

// Largest head_dim the kernel takes.
inline constexpr std::int64_t kMaxAttentionHeadDim = 256;

// q, out: n_tokens rows of n_head * head_dim floats; caches: rows of n_head_kv * head_dim floats.
// Query head h reads key/value head h / (n_head / n_head_kv). out[t, h] = sum_p
// softmax_p(q.k_p * scale) v_p. Throws std::invalid_argument for head_dim > kMaxAttentionHeadDim
// or n_head not a multiple of n_head_kv.
void attention(const float* q, const float* k_cache, const float* v_cache, const PagedBatch& batch,
               std::int64_t n_head, std::int64_t n_head_kv, std::int64_t head_dim, float scale, float* out,
               Stream stream);

}  // namespace infergate::kernels::cuda
