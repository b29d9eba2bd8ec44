// SiLU-multiply: one element per thread, silu(g) = g / (1 + e^-g) as on the CPU.
#include "check.cuh"
#include "infergate/kernels/cuda/silu_mul.h"

namespace infergate::kernels::cuda {

static __global__ void silu_mul_kernel(const float* gate, const float* up, std::int64_t n, float* out) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float g = gate[i];
  out[i] = g / (1.0f + expf(-g)) * up[i];
}

void silu_mul(const float* gate, const float* up, std::int64_t n, float* out, Stream stream) {
  CUDA_REQUIRE(n >= 0, "silu_mul: negative size");
  if (n == 0) return;
  constexpr unsigned kThreads = 256;
  silu_mul_kernel<<<detail::grid_for(n, kThreads), kThreads, 0, stream>>>(gate, up, n, out);
  CUDA_CHECK_LAUNCH();
}

}  // namespace infergate::kernels::cuda
