// Rotary position embedding on the device, in place, GGUF's llama layout: within each head the
// consecutive pairs (x[2i], x[2i+1]) for 2i + 1 < rot_dim turn by pos * base^(-2i / rot_dim).
#pragma once

#include <cstdint>

#include "infergate/kernels/cuda/runtime.h"

namespace infergate::kernels::cuda {

// x: n_tokens rows of n_heads * head_dim floats; pos: n_tokens device int32 positions.
void rope(float* x, std::int64_t n_tokens, std::int64_t n_heads, std::int64_t head_dim, std::int64_t rot_dim,
          const std::int32_t* pos, float base, Stream stream);

}  // namespace infergate::kernels::cuda
