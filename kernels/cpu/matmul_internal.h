// Internal to the CPU matrix products: the per-ISA entry points and the activations that Q8_0
// products quantize their input into.
#pragma once

#include <cfloat>
#include <cstdint>

#include "infergate/kernels/weights.h"

namespace infergate::kernels::cpu {

// Activations quantized for integer dot products with Q8_0 weights, in blocks of 32 per token:
// the int8 values, one float scale per block (the only rounding is of the activations), and
// -16 times the block's sum, which kernels that add 128 to the weights (to use unsigned x signed
// byte products) put in each of the block's 8 dword lanes to take the 128 * sum back out.
//
// Token t's block k holds qs[(t * nb + k) * 32, +32). In the `paired` layout (the AVX-512
// kernels, which dot two blocks per 64-byte vector) blocks 2j and 2j+1 share 64 bytes with their
// dwords interleaved (dword i of block 2j at dword 2i, of block 2j+1 at dword 2i+1); an odd last
// block stays plain.
struct Q8Acts {
  const std::int8_t* qs = nullptr;
  const float* d = nullptr;          // d[t * nb + k]
  const std::int32_t* corr = nullptr;  // corr[t * nb + k] = -16 * sum of the block's qs
  std::int64_t nb = 0;               // blocks per token
};

// The same activations for the AMX kernel, in the tile unit's B layout: tokens in groups of
// kAmxGroup (the last one may be short, nt tokens); group g's block k takes kAmxBlockBytes at
// qs + (g * nb + k) * kAmxBlockBytes, as 8 rows of nt * 4 bytes: row i holds bytes [4i, 4i + 4)
// of the block of each token of the group in turn. d[(g * nb + k) * kAmxGroup + t] is token
// t's scale of block k (0 past the group's end).
constexpr std::int64_t kAmxGroup = 16;
constexpr std::int64_t kAmxBlockBytes = kAmxGroup * 32;
struct AmxActs {
  const std::int8_t* qs = nullptr;
  const float* d = nullptr;
  std::int64_t nb = 0;
};

// The scale of an activation block whose largest magnitude is mx: mx / 127, or 0 when that is
// below the smallest normal float (its reciprocal would overflow, and the block's values would
// come out as saturated garbage with a wrong sum); such a block then contributes nothing, the
// same on every path.
inline float activation_scale(float mx) {
  const float s = mx / 127.0f;
  return s < FLT_MIN ? 0.0f : s;
}

// Quantizes n_tokens rows of cols floats (cols a multiple of 32) into the given buffers
// (n_tokens * cols bytes, n_tokens * cols / 32 floats and ints).
void quantize_activations(const float* x, std::int64_t n_tokens, std::int64_t cols, bool paired,
                          std::int8_t* qs, float* d, std::int32_t* corr);

// Floats between consecutive columns of a column-major F32 copy (pack_f32_columns): the rows
// rounded up to 16, plus 16 so that a 16-row load from any row stays inside.
inline std::int64_t packed_columns_stride(std::int64_t rows) { return (rows + 15) / 16 * 16 + 16; }

// Computes rows [r0, r1) of y for tokens [0, n_tokens). x is the float input (F32/F16) or, for
// Q8_0, a Q8Acts.
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
namespace avx512vnni {
void matmul_rows(const WeightMatrix& w, const void* x, std::int64_t n_tokens, std::int64_t r0,
                 std::int64_t r1, float* y);
}
// x is an AmxActs for Q8_0 and floats otherwise (F32/F16 run the AVX-512 VNNI kernels).
namespace amx {
void matmul_rows(const WeightMatrix& w, const void* x, std::int64_t n_tokens, std::int64_t r0,
                 std::int64_t r1, float* y);
// Quantizes floats (n_tokens rows of cols) into the AmxActs layout, with the values
// quantize_activations gives: out_qs takes ceil(n_tokens / 16) * nb * kAmxBlockBytes bytes,
// out_d as many / 32 values. Only blocks [b0, b1) of each token's row are
// written (the whole row by default), so that threads can share the work.
void quantize_packed(const float* x, std::int64_t n_tokens, std::int64_t cols, std::int8_t* out_qs, float* out_d,
                     std::int64_t b0 = 0, std::int64_t b1 = -1);
}

}  // namespace infergate::kernels::cpu
