// Residual add: one element per thread.
#include "check.cuh"
#include "infergate/kernels/cuda/add.h"

namespace infergate::kernels::cuda {

static __global__ void add_kernel(float* x, const float* y, std::int64_t n) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] += y[i];
}

void add_inplace(float* x, const float* y, std::int64_t n, Stream stream) {
  CUDA_REQUIRE(n >= 0, "add_inplace: negative size");
  if (n == 0) return;
  constexpr unsigned kThreads = 256;
  add_kernel<<<detail::grid_for(n, kThreads), kThreads, 0, stream>>>(x, y, n);
  CUDA_CHECK_LAUNCH();
}

}  // namespace infergate::kernels::cuda
