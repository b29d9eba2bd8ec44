// RMSNorm: one block per row. Each thread sums the squares of a strided part of the row, the
// block reduces those partial sums (warp shuffles, then one float per warp in shared memory),
// and every thread scales its part of the row.
#include "check.cuh"
#include "infergate/kernels/cuda/rmsnorm.h"
#include "reduce.cuh"

namespace infergate::kernels::cuda {

namespace {
constexpr unsigned kThreads = 256;
}

static __global__ void rmsnorm_kernel(const float* __restrict__ x, const float* __restrict__ weight, std::int64_t n,
                                      float eps, const std::int32_t* __restrict__ rows_index,
                                      float* __restrict__ out) {
  const std::int64_t row = blockIdx.x;
  const std::int64_t src = rows_index != nullptr ? rows_index[row] : row;
  const float* xr = x + src * n;
  float ss = 0.0f;
  for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
  __shared__ float partial[kThreads / 32];
  ss = block_sum<kThreads>(ss, partial);
  const float scale = rsqrtf(ss / static_cast<float>(n) + eps);
  float* o = out + row * n;
  for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) o[i] = xr[i] * scale * weight[i];
}

void rmsnorm(const float* x, const float* weight, std::int64_t rows, std::int64_t n, float eps,
             const std::int32_t* rows_index, float* out, Stream stream) {
  if (rows == 0) return;
  CUDA_REQUIRE(rows > 0 && rows <= 0x7fffffff && n > 0, "rmsnorm: bad shape");
  rmsnorm_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, weight, n, eps, rows_index, out);
  CUDA_CHECK_LAUNCH();
}

}  // namespace infergate::kernels::cuda
