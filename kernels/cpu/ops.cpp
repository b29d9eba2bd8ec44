// Element-wise and per-row kernels of a transformer step. Plain loops with float accumulation
// that the compiler vectorizes; they are a small share of a step next to the matrix products.
// Attention, which grows with the context, has AVX-512 loops picked at run time.
#include <immintrin.h>

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

namespace {
inline void rope_angle(std::int64_t pos, std::int64_t i, std::int64_t rot_dim, float base, float* c, float* s) {
  const double theta = static_cast<double>(pos) *
                       std::pow(static_cast<double>(base), -static_cast<double>(i) / static_cast<double>(rot_dim));
  *c = static_cast<float>(std::cos(theta));
  *s = static_cast<float>(std::sin(theta));
}
}  // namespace

void rope_cached(float* x, std::int64_t n_heads, std::int64_t head_dim, std::int64_t rot_dim,
                 const float* cos_sin) {
  for (std::int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    for (std::int64_t i = 0; i + 1 < rot_dim; i += 2) {
      const float c = cos_sin[i], s = cos_sin[i + 1];
      const float a = v[i], b = v[i + 1];
      v[i] = a * c - b * s;
      v[i + 1] = a * s + b * c;
    }
  }
}

void rope_angles(std::int64_t n_pos, std::int64_t rot_dim, float base, float* out) {
  for (std::int64_t pos = 0; pos < n_pos; ++pos) {
    for (std::int64_t i = 0; i + 1 < rot_dim; i += 2) rope_angle(pos, i, rot_dim, base, &out[pos * rot_dim + i], &out[pos * rot_dim + i + 1]);
  }
}

void rope(float* x, std::int64_t n_heads, std::int64_t head_dim, std::int64_t rot_dim,
          std::int64_t pos, float base) {
  for (std::int64_t i = 0; i + 1 < rot_dim; i += 2) {
    float c = 0, s = 0;
    rope_angle(pos, i, rot_dim, base, &c, &s);
    for (std::int64_t h = 0; h < n_heads; ++h) {
      float* v = x + h * head_dim + i;
      const float a = v[0], b = v[1];
      v[0] = a * c - b * s;
      v[1] = a * s + b * c;
    }
  }
}

namespace {

bool use_avx512();

// e^x for 16 floats: x = n ln2 + r with |r| <= ln2 / 2 (ln2 split in two for the reduction),
// e^r by its Taylor polynomial to r^6 (truncation below 2e-7 relative), times 2^n by scalef.
// Within 2 ulp of expf over the clamped range; inputs below -87.3 give about 1e-38 (the
// terms it feeds are then negligible), above 88.7 give about 3e38 (finite).
__attribute__((target("avx512f"))) inline __m512 exp16(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.7f)), _mm512_set1_ps(-87.3f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

__attribute__((target("avx512f"))) void silu_mul_avx512(const float* gate, const float* up, std::int64_t n, float* out) {
  const __m512 one = _mm512_set1_ps(1.0f);
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 g = _mm512_loadu_ps(gate + i);
    const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), g));
    _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(one, e)), _mm512_loadu_ps(up + i)));
  }
  if (i < n) {
    const auto m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), g));
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(one, e)), _mm512_maskz_loadu_ps(m, up + i)));
  }
}

// x = e^(x - mx) in place; returns the sum (float lanes, added in a fixed order).
__attribute__((target("avx512f"))) float exp_sub_sum_avx512(float* x, std::int64_t n, float mx) {
  const __m512 m = _mm512_set1_ps(mx);
  __m512 acc = _mm512_setzero_ps();
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), m));
    _mm512_storeu_ps(x + i, e);
    acc = _mm512_add_ps(acc, e);
  }
  if (i < n) {
    const auto k = static_cast<__mmask16>((1u << (n - i)) - 1u);
    const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), m));
    _mm512_mask_storeu_ps(x + i, k, e);
    acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(k, e));
  }
  return _mm512_reduce_add_ps(acc);
}

}  // namespace

void softmax(float* x, std::int64_t n) {
  if (n <= 0) return;
  const float mx = *std::max_element(x, x + n);
  float sum = 0;
  if (use_avx512()) {
    sum = exp_sub_sum_avx512(x, n, mx);
  } else {
    for (std::int64_t i = 0; i < n; ++i) {
      x[i] = std::exp(x[i] - mx);
      sum += x[i];
    }
  }
  const float inv = 1.0f / sum;
  for (std::int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void silu_mul(const float* gate, const float* up, std::int64_t n, float* out) {
  if (use_avx512()) {
    silu_mul_avx512(gate, up, n, out);
    return;
  }
  for (std::int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void add_inplace(float* x, const float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) x[i] += y[i];
}

namespace {

// The two loops of attention (a dot product per cached key, a scaled add per cached value) in
// AVX-512 when the CPU has it (masked tails, so any head_dim), else in plain loops.
__attribute__((target("avx512f"))) inline float hsum512(__m512 v) {
  const __m256 h = _mm512_castps512_ps256(_mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4e)));
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_movehdup_ps(q));
  return _mm_cvtss_f32(q);
}

__attribute__((target("avx512f"))) void scores_avx512(const float* q, const float* const* k_blocks,
                                                      std::int64_t block_size, std::int64_t row_stride,
                                                      std::int64_t n_pos, std::int64_t head_dim,
                                                      float scale, float* scores) {
  for (std::int64_t p = 0; p < n_pos; ++p) {
    const float* k = k_blocks[p / block_size] + (p % block_size) * row_stride;
    __m512 acc = _mm512_setzero_ps();
    std::int64_t d = 0;
    for (; d + 16 <= head_dim; d += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + d), _mm512_loadu_ps(k + d), acc);
    if (d < head_dim) {
      const auto m = static_cast<__mmask16>((1u << (head_dim - d)) - 1u);
      acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + d), _mm512_maskz_loadu_ps(m, k + d), acc);
    }
    scores[p] = hsum512(acc) * scale;
  }
}

// out = sum_p weights[p] * v_p, 64 output floats at a time held in registers across all p.
__attribute__((target("avx512f"))) void mix_avx512(const float* weights, const float* const* v_blocks,
                                                   std::int64_t block_size, std::int64_t row_stride,
                                                   std::int64_t n_pos, std::int64_t head_dim, float* out) {
  for (std::int64_t d0 = 0; d0 < head_dim; d0 += 64) {
    __mmask16 m[4];
    for (int j = 0; j < 4; ++j) {
      const std::int64_t left = std::clamp<std::int64_t>(head_dim - d0 - 16 * j, 0, 16);
      m[j] = static_cast<__mmask16>((1u << left) - 1u);
    }
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (std::int64_t p = 0; p < n_pos; ++p) {
      const float* v = v_blocks[p / block_size] + (p % block_size) * row_stride + d0;
      const __m512 a = _mm512_set1_ps(weights[p]);
      for (int j = 0; j < 4; ++j) acc[j] = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(m[j], v + 16 * j), acc[j]);
    }
    for (int j = 0; j < 4; ++j) _mm512_mask_storeu_ps(out + d0 + 16 * j, m[j], acc[j]);
  }
}

bool use_avx512() {
  const Isa isa = active_isa();
  return isa == Isa::avx512 || isa == Isa::avx512vnni || isa == Isa::amx;
}

}  // namespace

void attend(const float* q, const float* const* k_blocks, const float* const* v_blocks,
            std::int64_t block_size, std::int64_t row_stride, std::int64_t n_pos,
            std::int64_t head_dim, float scale, float* scratch, float* out) {
  if (use_avx512()) {
    scores_avx512(q, k_blocks, block_size, row_stride, n_pos, head_dim, scale, scratch);
    softmax(scratch, n_pos);
    mix_avx512(scratch, v_blocks, block_size, row_stride, n_pos, head_dim, out);
    return;
  }
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
