// Writes the keys and values of a step's tokens into one layer of the paged KV cache on the
// device. A cache row is kv_dim floats; the row of position p of a sequence is
// block_table[p / block_size] * block_size + p % block_size (the caller computes it).
#pragma once

#include <cstdint>

#include "infergate/kernels/cuda/runtime.h"

namespace infergate::kernels::cuda {

// k, v: n_tokens rows of kv_dim floats; slots: n_tokens device int32 cache rows.
void kv_store(const float* k, const float* v, std::int64_t n_tokens, std::int64_t kv_dim, const std::int32_t* slots,
              float* k_cache, float* v_cache, Stream stream);

}  // namespace infergate::kernels::cuda
