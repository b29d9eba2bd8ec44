// Internal to the CPU matrix products: the per-ISA entry points and the activation blocks that
// Q8_0 products quantize their input into.
#pragma once

#include <cstdint>

#include "infergate/kernels/weights.h"

namespace infergate::kernels::cpu {

// Activations quantized for integer dot products with Q8_0 weights: the scale stays a float,
// so the only rounding is of the activations themselves.
struct BlockQ8Act {
  float d;
  std::int8_t qs[kQ8Block];
};

void quantize_activations(const float* x, std::int64_t n, BlockQ8Act* out);

// Computes rows [r0, r1) of y for tokens [0, n_tokens). x is the float input (F32/F16) or, for
// Q8_0, n_tokens * cols/32 activation blocks.
using MatmulRowsFn = void (*)(const WeightMatrix& w, const void* x, std::int64_t n_tokens,
                              std::int64_t r0, std::int64_t r1, float* y);

namespace scalar {
void matmul_rows(const WeightMatrix& w, const void* x, std::int64_t n_tokens, std::int64_t r0,
                 std::int64_t r1, float* y);
}
namespace avx2 {
void matmul_rows(const WeightMatrix& w, const void* x, std::int64_t n_tokens, std::int64_t r0,
                 std::int64_t r1, float* y);
}
namespace avx512 {
void matmul_rows(const WeightMatrix& w, const void* x, std::int64_t n_tokens, std::int64_t r0,
                 std::int64_t r1, float* y);
}

}  // namespace infergate::kernels::cpu
