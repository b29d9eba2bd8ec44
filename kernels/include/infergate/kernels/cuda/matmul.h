// Matrix products on the device: y[t * w.rows + r] = sum_c w[r][c] * x[t * w.cols + c] for t in
// [0, n_tokens), with F32 accumulation for every weight type.
//   F32 weights: cuBLAS SGEMM (F32 throughout).
//   F16 weights: the input is rounded to F16 in scratch, then cuBLAS GemmEx (F16 x F16, F32
//     compute and output).
//   Q8_0 weights: up to kQ8DirectMaxTokens tokens, a kernel that dequantizes in registers and
//     reads each weight once per 8 tokens (F32 input, no rounding of the activations); beyond,
//     the matrix is dequantized to F16 in scratch and the F16 path runs.
#pragma once

#include <cstdint>

#include "infergate/kernels/cuda/device_matrix.h"
#include "infergate/kernels/cuda/runtime.h"

namespace infergate::kernels::cuda {

inline constexpr std::int64_t kQ8DirectMaxTokens = 32;

// Device scratch a product may use, allocated once by the caller.
struct MatmulScratch {
  void* act_f16 = nullptr;  // the input as F16: n_tokens * w.cols halves (F16 and batched Q8_0)
  std::int64_t act_f16_elems = 0;
  void* w_f16 = nullptr;  // a Q8_0 matrix as F16: w.rows * w.cols halves (Q8_0 beyond the direct limit)
  std::int64_t w_f16_elems = 0;
};

// Elements of each scratch buffer a product of `w` over up to max_tokens tokens needs.
std::int64_t matmul_act_f16_elems(const DeviceMatrix& w, std::int64_t max_tokens);
std::int64_t matmul_w_f16_elems(const DeviceMatrix& w, std::int64_t max_tokens);

// Runs on blas.stream(). x and y are device memory, 16-byte aligned, and do not overlap.
// Throws std::invalid_argument when the scratch is too small or a size exceeds cuBLAS's int.
void matmul(const Blas& blas, const DeviceMatrix& w, const float* x, std::int64_t n_tokens, float* y,
            const MatmulScratch& scratch);

// The pieces, for tests: x rounded to F16; a Q8_0 matrix dequantized to F16 (rows * cols).
void convert_f32_to_f16(const float* x, std::int64_t n, void* out, Stream stream);
void dequantize_q8_0_to_f16(const DeviceMatrix& w, void* out, Stream stream);

}  // namespace infergate::kernels::cuda
