// The product dispatcher. cuBLAS is column-major; a row-major weight matrix W (rows x cols) is
// a column-major cols x rows matrix, and so are the row-major inputs (cols x n_tokens) and
// outputs (rows x n_tokens). So y = W x is, for cuBLAS, C(rows x n) = A^T(rows x cols) *
// B(cols x n) with A = W (lda = cols), B = x (ldb = cols), C = y (ldc = rows).
#include <cuda_fp16.h>

#include <limits>

#include "check.cuh"
#include "infergate/kernels/cuda/matmul.h"
#include "q8_0.cuh"

namespace infergate::kernels::cuda {

static __global__ void convert_f32_to_f16_kernel(const float* __restrict__ x, std::int64_t n, __half* __restrict__ out) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = __float2half_rn(x[i]);
}

void convert_f32_to_f16(const float* x, std::int64_t n, void* out, Stream stream) {
  CUDA_REQUIRE(n >= 0, "convert_f32_to_f16: negative size");
  if (n == 0) return;
  constexpr unsigned kThreads = 256;
  convert_f32_to_f16_kernel<<<detail::grid_for(n, kThreads), kThreads, 0, stream>>>(x, n, static_cast<__half*>(out));
  CUDA_CHECK_LAUNCH();
}

std::int64_t matmul_act_f16_elems(const DeviceMatrix& w, std::int64_t max_tokens) {
  if (w.type == WeightType::f16 || (w.type == WeightType::q8_0 && max_tokens > kQ8DirectMaxTokens))
    return max_tokens * w.cols;
  return 0;
}

std::int64_t matmul_w_f16_elems(const DeviceMatrix& w, std::int64_t max_tokens) {
  return w.type == WeightType::q8_0 && max_tokens > kQ8DirectMaxTokens ? w.rows * w.cols : 0;
}

namespace {

int as_blas_int(std::int64_t v, const char* what) {
  if (v < 0 || v > std::numeric_limits<int>::max())
    throw std::invalid_argument(std::string("matmul: ") + what + " " + std::to_string(v) + " exceeds cuBLAS's int");
  return static_cast<int>(v);
}

// y (F32) = W (F16) x (F16), F32 compute.
void gemm_f16(const Blas& blas, const void* w16, std::int64_t rows, std::int64_t cols, const void* x16,
              std::int64_t n_tokens, float* y) {
  const float alpha = 1.0f, beta = 0.0f;
  const int m = as_blas_int(rows, "rows"), n = as_blas_int(n_tokens, "tokens"), k = as_blas_int(cols, "cols");
  CUBLAS_CHECK(cublasGemmEx(blas.handle(), CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, w16, CUDA_R_16F, k, x16,
                            CUDA_R_16F, k, &beta, y, CUDA_R_32F, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace

void matmul(const Blas& blas, const DeviceMatrix& w, const float* x, std::int64_t n_tokens, float* y,
            const MatmulScratch& scratch) {
  CUDA_REQUIRE(n_tokens >= 0 && w.data != nullptr && w.rows > 0 && w.cols > 0, "matmul: bad shape");
  if (n_tokens == 0) return;
  const Stream stream = blas.stream();
  switch (w.type) {
    case WeightType::f32: {
      const float alpha = 1.0f, beta = 0.0f;
      const int m = as_blas_int(w.rows, "rows"), n = as_blas_int(n_tokens, "tokens"), k = as_blas_int(w.cols, "cols");
      CUBLAS_CHECK(cublasSgemm(blas.handle(), CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, static_cast<const float*>(w.data),
                               k, x, k, &beta, y, m));
      return;
    }
    case WeightType::f16:
      CUDA_REQUIRE(scratch.act_f16 != nullptr && scratch.act_f16_elems >= n_tokens * w.cols,
                   "matmul: F16 input scratch too small");
      convert_f32_to_f16(x, n_tokens * w.cols, scratch.act_f16, stream);
      gemm_f16(blas, w.data, w.rows, w.cols, scratch.act_f16, n_tokens, y);
      return;
    case WeightType::q8_0:
      if (n_tokens <= kQ8DirectMaxTokens) {
        detail::q8_0_matmul_direct(w, x, n_tokens, y, stream);
        return;
      }
      CUDA_REQUIRE(scratch.act_f16 != nullptr && scratch.act_f16_elems >= n_tokens * w.cols,
                   "matmul: F16 input scratch too small");
      CUDA_REQUIRE(scratch.w_f16 != nullptr && scratch.w_f16_elems >= w.rows * w.cols,
                   "matmul: F16 weight scratch too small");
      dequantize_q8_0_to_f16(w, scratch.w_f16, stream);
      convert_f32_to_f16(x, n_tokens * w.cols, scratch.act_f16, stream);
      gemm_f16(blas, scratch.w_f16, w.rows, w.cols, scratch.act_f16, n_tokens, y);
      return;
  }
  CUDA_REQUIRE(false, "matmul: unknown weight type");
}

}  // namespace infergate::kernels::cuda
