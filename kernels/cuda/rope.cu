// RoPE: one thread per (token, pair). The angle is computed in double, as the CPU kernel does:
// pos * base^(-2i/rot) reaches thousands of radians, where float sin/cos would lose ~1e-4.
// Each thread then turns that pair in every head.
#include "check.cuh"
#include "infergate/kernels/cuda/rope.h"

namespace infergate::kernels::cuda {

static __global__ void rope_kernel(float* __restrict__ x, std::int64_t n_tokens, std::int64_t n_heads,
                                   std::int64_t head_dim, std::int64_t rot_dim, std::int64_t n_pairs,
                                   const std::int32_t* __restrict__ pos, double base) {
  const std::int64_t idx = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= n_tokens * n_pairs) return;
  const std::int64_t t = idx / n_pairs, i = 2 * (idx % n_pairs);
  const double theta =
      static_cast<double>(pos[t]) * pow(base, -static_cast<double>(i) / static_cast<double>(rot_dim));
  double s = 0, c = 0;
  sincos(theta, &s, &c);
  const auto cf = static_cast<float>(c), sf = static_cast<float>(s);
  float* row = x + t * n_heads * head_dim + i;
  for (std::int64_t h = 0; h < n_heads; ++h) {
    float* v = row + h * head_dim;
    const float a = v[0], b = v[1];
    v[0] = a * cf - b * sf;
    v[1] = a * sf + b * cf;
  }
}

void rope(float* x, std::int64_t n_tokens, std::int64_t n_heads, std::int64_t head_dim, std::int64_t rot_dim,
          const std::int32_t* pos, float base, Stream stream) {
  CUDA_REQUIRE(n_tokens >= 0 && n_heads > 0 && head_dim > 0 && rot_dim >= 0 && rot_dim <= head_dim,
               "rope: bad shape (rot_dim must be within head_dim)");
  const std::int64_t n_pairs = rot_dim / 2;  // pairs with 2i + 1 < rot_dim
  if (n_tokens == 0 || n_pairs == 0) return;
  constexpr unsigned kThreads = 128;
  rope_kernel<<<detail::grid_for(n_tokens * n_pairs, kThreads), kThreads, 0, stream>>>(
      x, n_tokens, n_heads, head_dim, rot_dim, n_pairs, pos, static_cast<double>(base));
  CUDA_CHECK_LAUNCH();
}

}  // namespace infergate::kernels::cuda
