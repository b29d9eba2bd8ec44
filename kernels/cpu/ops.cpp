// Element-wise and per-row kernels of a transformer step. Plain loops with float accumulation
// that the compiler vectorizes; they are a small share of a step next to the matrix products.
#include <algorithm>
#include <cmath>

#include "infergate/kernels/cpu/kernels.h"

namespace infergate::kernels::cpu {

void rmsnorm(const float* x, const float* weight, std::int64_t n, float eps, float* out) {
  double ss = 0;  // double: the sum of squares of a few thousand values loses bits in float
  for (std::int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  for (std::int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

void rope(float* x, std::int64_t n_heads, std::int64_t head_dim, std::int64_t rot_dim,
          std::int64_t pos, float base) {
  for (std::int64_t i = 0; i + 1 < rot_dim; i += 2) {
    const double theta =
        static_cast<double>(pos) * std::pow(static_cast<double>(base),
                                            -static_cast<double>(i) / static_cast<double>(rot_dim));
    const auto c = static_cast<float>(std::cos(theta));
    const auto s = static_cast<float>(std::sin(theta));
    for (std::int64_t h = 0; h < n_heads; ++h) {
      float* v = x + h * head_dim + i;
      const float a = v[0], b = v[1];
      v[0] = a * c - b * s;
      v[1] = a * s + b * c;
    }
  }
}

void softmax(float* x, std::int64_t n) {
  if (n <= 0) return;
  const float mx = *std::max_element(x, x + n);
  float sum = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  for (std::int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void silu_mul(const float* gate, const float* up, std::int64_t n, float* out) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void add_inplace(float* x, const float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void attend(const float* q, const float* const* k_blocks, const float* const* v_blocks,
            std::int64_t block_size, std::int64_t row_stride, std::int64_t n_pos,
            std::int64_t head_dim, float scale, float* scratch, float* out) {
  for (std::int64_t p = 0; p < n_pos; ++p) {
    const float* k = k_blocks[p / block_size] + (p % block_size) * row_stride;
    float dot = 0;
    for (std::int64_t d = 0; d < head_dim; ++d) dot += q[d] * k[d];
    scratch[p] = dot * scale;
  }
  softmax(scratch, n_pos);
  std::fill(out, out + head_dim, 0.0f);
  for (std::int64_t p = 0; p < n_pos; ++p) {
    const float* v = v_blocks[p / block_size] + (p % block_size) * row_stride;
    const float a = scratch[p];
    for (std::int64_t d = 0; d < head_dim; ++d) out[d] += a * v[d];
  }
}

}  // namespace infergate::kernels::cpu
