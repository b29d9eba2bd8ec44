// Q8_0 products without leaving the quantized format. One warp per weight row, four rows per
// block. A lane loads 16 quants (one aligned 16-byte load; 16 divides the block of 32, so they
// share one scale) and the matching 16 floats of each token's input, so a warp streams 512
// weights per iteration with coalesced loads; the row's partial sums meet in a warp shuffle.
// Each weight is read once for up to 8 tokens (the template's TB); more tokens take more
// launches. The input stays F32, so the only rounding is the F32 accumulation.
#include <cuda_fp16.h>

#include <algorithm>

#include "check.cuh"
#include "infergate/kernels/cuda/matmul.h"
#include "q8_0.cuh"
#include "reduce.cuh"

namespace infergate::kernels::cuda {

namespace {
constexpr int kRowsPerBlock = 4;
constexpr int kMaxTokensPerLaunch = 8;
}  // namespace

template <int TB>
static __global__ void __launch_bounds__(kRowsPerBlock * 32)
    q8_0_matmul_kernel(const std::int8_t* __restrict__ qs, const std::uint16_t* __restrict__ scales, std::int64_t rows,
                       std::int64_t cols, const float* __restrict__ x, int n_tokens, float* __restrict__ y) {
  const int warp = static_cast<int>(threadIdx.x / 32), lane = static_cast<int>(threadIdx.x % 32);
  const std::int64_t r = static_cast<std::int64_t>(blockIdx.x) * kRowsPerBlock + warp;
  if (r >= rows) return;  // the whole warp leaves; no block-wide barrier follows
  const std::int8_t* wr = qs + r * cols;
  const std::uint16_t* sr = scales + r * (cols / 32);
  float acc[TB];
#pragma unroll
  for (int t = 0; t < TB; ++t) acc[t] = 0.0f;
  for (std::int64_t c = static_cast<std::int64_t>(lane) * 16; c < cols; c += 32 * 16) {
    const int4 packed = *reinterpret_cast<const int4*>(wr + c);
    const auto* q = reinterpret_cast<const std::int8_t*>(&packed);
    const float d = __half2float(__ushort_as_half(sr[c / 32]));
    float wf[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) wf[i] = static_cast<float>(q[i]);
#pragma unroll
    for (int t = 0; t < TB; ++t) {
      if (t < n_tokens) {
        const float4* xv = reinterpret_cast<const float4*>(x + t * cols + c);
        float dot = 0.0f;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const float4 v = xv[i];
          dot += wf[4 * i] * v.x + wf[4 * i + 1] * v.y + wf[4 * i + 2] * v.z + wf[4 * i + 3] * v.w;
        }
        acc[t] += d * dot;
      }
    }
  }
#pragma unroll
  for (int t = 0; t < TB; ++t) {
    const float sum = warp_sum(acc[t]);
    if (lane == 0 && t < n_tokens) y[t * rows + r] = sum;
  }
}

namespace detail {

void q8_0_matmul_direct(const DeviceMatrix& w, const float* x, std::int64_t n_tokens, float* y, Stream stream) {
  CUDA_REQUIRE(w.type == WeightType::q8_0 && w.scales != nullptr && w.cols % 32 == 0, "q8_0 matmul: not a Q8_0 matrix");
  CUDA_REQUIRE(reinterpret_cast<std::uintptr_t>(x) % 16 == 0 && reinterpret_cast<std::uintptr_t>(w.data) % 16 == 0,
               "q8_0 matmul: input and weights must be 16-byte aligned");
  const auto* qs = static_cast<const std::int8_t*>(w.data);
  const unsigned blocks = grid_for(w.rows, kRowsPerBlock);
  constexpr unsigned kThreads = kRowsPerBlock * 32;
  for (std::int64_t t0 = 0; t0 < n_tokens; t0 += kMaxTokensPerLaunch) {
    const int n = static_cast<int>(std::min<std::int64_t>(kMaxTokensPerLaunch, n_tokens - t0));
    const float* xt = x + t0 * w.cols;
    float* yt = y + t0 * w.rows;
    if (n == 1) {
      q8_0_matmul_kernel<1><<<blocks, kThreads, 0, stream>>>(qs, w.scales, w.rows, w.cols, xt, n, yt);
    } else if (n <= 2) {
      q8_0_matmul_kernel<2><<<blocks, kThreads, 0, stream>>>(qs, w.scales, w.rows, w.cols, xt, n, yt);
    } else if (n <= 4) {
      q8_0_matmul_kernel<4><<<blocks, kThreads, 0, stream>>>(qs, w.scales, w.rows, w.cols, xt, n, yt);
    } else {
      q8_0_matmul_kernel<8><<<blocks, kThreads, 0, stream>>>(qs, w.scales, w.rows, w.cols, xt, n, yt);
    }
    CUDA_CHECK_LAUNCH();
  }
}

}  // namespace detail

static __global__ void dequantize_q8_0_kernel(const std::int8_t* __restrict__ qs, const std::uint16_t* __restrict__ scales,
                                              std::int64_t n, __half* __restrict__ out) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = __float2half_rn(__half2float(__ushort_as_half(scales[i / 32])) * static_cast<float>(qs[i]));
}

void dequantize_q8_0_to_f16(const DeviceMatrix& w, void* out, Stream stream) {
  CUDA_REQUIRE(w.type == WeightType::q8_0 && w.scales != nullptr && w.cols % 32 == 0, "dequantize: not a Q8_0 matrix");
  const std::int64_t n = w.rows * w.cols;
  if (n == 0) return;
  constexpr unsigned kThreads = 256;
  dequantize_q8_0_kernel<<<detail::grid_for(n, kThreads), kThreads, 0, stream>>>(
      static_cast<const std::int8_t*>(w.data), w.scales, n, static_cast<__half*>(out));
  CUDA_CHECK_LAUNCH();
}

}  // namespace infergate::kernels::cuda
