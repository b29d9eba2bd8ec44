// Element-wise and per-row kernels of a transformer step. Plain loops with float accumulation
// that the compiler vectorizes; they are a small share of a step next to the matrix products.
// Attention, which grows with the context, has AVX-512 loops picked at run time.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "infergate/kernels/cpu/kernels.h"

namespace infergate::kernels::cpu {

namespace {
bool use_avx512();

// The sum of squares in double (the sum of a few thousand squares loses bits in float), eight
// lanes and two accumulators: one dependent add chain per element was most of a norm's time.
__attribute__((target("avx512f"))) double sum_squares_avx512(const float* x, std::int64_t n) {
  __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512d lo = _mm512_cvtps_pd(_mm256_loadu_ps(x + i));
    const __m512d hi = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8));
    a0 = _mm512_fmadd_pd(lo, lo, a0);
    a1 = _mm512_fmadd_pd(hi, hi, a1);
  }
  for (; i < n; i += 8) {
    const auto m = static_cast<__mmask16>(n - i >= 8 ? 0xff : (1u << (n - i)) - 1u);
    const __m512d v = _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_maskz_loadu_ps(m, x + i)));
    a0 = _mm512_fmadd_pd(v, v, a0);
  }
  return _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
}
}  // namespace

void rmsnorm(const float* x, const float* weight, std::int64_t n, float eps, float* out) {
  double ss = 0;
  if (use_avx512()) {
    ss = sum_squares_avx512(x, n);
  } else {
    for (std::int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  }
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

__attribute__((target("avx512f"))) float max_avx512(const float* x, std::int64_t n) {
  __m512 m = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
  if (i < n) {
    const auto k = static_cast<__mmask16>((1u << (n - i)) - 1u);
    m = _mm512_mask_max_ps(m, k, m, _mm512_maskz_loadu_ps(k, x + i));
  }
  return _mm512_reduce_max_ps(m);
}

__attribute__((target("avx512f"))) void scale_avx512(float* x, std::int64_t n, float s) {
  const __m512 v = _mm512_set1_ps(s);
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), v));
  if (i < n) {
    const auto k = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), v));
  }
}

// The first index of the largest value (NaNs are never the largest), in two passes: the
// maximum, then the first lane equal to it.
__attribute__((target("avx512f"))) std::int64_t argmax_avx512(const float* x, std::int64_t n) {
  __m512 m = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  std::int64_t i = 0;
  for (; i < n; i += 16) {
    const auto k = static_cast<__mmask16>(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1u);
    const __m512 v = _mm512_maskz_loadu_ps(k, x + i);
    m = _mm512_mask_max_ps(m, _mm512_mask_cmp_ps_mask(k, v, v, _CMP_ORD_Q), m, v);
  }
  const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(m));
  for (i = 0; i < n; i += 16) {
    const auto k = static_cast<__mmask16>(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1u);
    const __mmask16 eq = _mm512_mask_cmp_ps_mask(k, _mm512_maskz_loadu_ps(k, x + i), mx, _CMP_EQ_OQ);
    if (eq != 0) return i + __builtin_ctz(eq);
  }
  return 0;  // every value NaN
}

// softmax() in one pass over registers for up to 16 values (a short context's attention row),
// else in the three loops above; the same operations in the same order either way, so the
// results are bit for bit those of the loops.
__attribute__((target("avx512f"))) void softmax_avx512(float* x, std::int64_t n) {
  if (n > 16) {
    scale_avx512(x, n, 1.0f / exp_sub_sum_avx512(x, n, max_avx512(x, n)));
    return;
  }
  const auto k = static_cast<__mmask16>(n == 16 ? 0xffff : (1u << n) - 1u);
  const __m512 v = _mm512_maskz_loadu_ps(k, x);
  const float mx = _mm512_reduce_max_ps(_mm512_mask_max_ps(_mm512_set1_ps(-std::numeric_limits<float>::infinity()), k,
                                                           _mm512_set1_ps(-std::numeric_limits<float>::infinity()), v));
  const __m512 e = exp16(_mm512_sub_ps(v, _mm512_set1_ps(mx)));
  const float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_setzero_ps(), _mm512_maskz_mov_ps(k, e)));
  _mm512_mask_storeu_ps(x, k, _mm512_mul_ps(e, _mm512_set1_ps(1.0f / sum)));
}

}  // namespace

void softmax(float* x, std::int64_t n) {
  if (n <= 0) return;
  if (use_avx512()) {
    // The maximum is exact in any order; each value's exponential and scaling are its own.
    softmax_avx512(x, n);
    return;
  }
  const float mx = *std::max_element(x, x + n);
  float sum = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  for (std::int64_t i = 0; i < n; ++i) x[i] *= inv;
}

std::int64_t argmax(const float* x, std::int64_t n) {
  if (n <= 0 || std::isnan(x[0])) return 0;  // as the loop below: nothing beats a NaN first value
  if (use_avx512()) return argmax_avx512(x, n);
  std::int64_t best = 0;
  for (std::int64_t i = 1; i < n; ++i) {
    if (x[i] > x[best]) best = i;
  }
  return best;
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
// AVX-512 when the CPU has it (masked tails, so any head_dim), else in plain loops. HC query
// heads at a time share each key and value row loaded; a head's own arithmetic is the same
// whatever HC is.
__attribute__((target("avx512f"))) inline __mmask16 tail_mask(std::int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1u);
}

// Up to 16 cached values as floats: F32 as they are, F16 widened (exactly).
__attribute__((target("avx512f"))) inline __m512 load_kv(__mmask16 m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
__attribute__((target("avx512f,avx512bw,avx512vl"))) inline __m512 load_kv(__mmask16 m, const std::uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

// Asks for n values from p on to be brought into the cache (cached keys and values are read
// block by block, each a few KiB found through the block table: the hardware prefetcher starts
// too late on each).
template <typename Elem>
inline void prefetch_row(const Elem* p, std::int64_t n) {
  const char* c = reinterpret_cast<const char*>(p);
  const std::int64_t bytes = n * static_cast<std::int64_t>(sizeof(Elem));
  for (std::int64_t i = 0; i < bytes; i += 64) _mm_prefetch(c + i, _MM_HINT_T0);
}

// The sums of four vectors: within each 128-bit lane (x0 + x2) + (x1 + x3), then the lanes
// ((L0 + L2) + (L1 + L3)).
__attribute__((target("avx512f"))) inline __m128 sum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  const __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  const __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  const __m512 u = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),
                                 _mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(u),
                                 _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(u), 1)));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// scores[h * n_pos + p] = (q_h . k_p) * scale for the HC heads, four positions at a time (a
// lone position takes the same additions: it is its own four).
template <int HC, typename Elem>
__attribute__((target("avx512f,avx512bw,avx512vl"))) void scores_avx512(const float* q, const Elem* const* k_blocks,
                                                      std::int64_t block_size, std::int64_t row_stride,
                                                      std::int64_t n_pos, std::int64_t head_dim,
                                                      float scale, float* scores) {
  const __m128 sc = _mm_set1_ps(scale);
  for (std::int64_t p = 0; p < n_pos; p += 4) {
    const int np = static_cast<int>(std::min<std::int64_t>(4, n_pos - p));
    const Elem* k[4];
    for (int j = 0; j < 4; ++j) {
      const std::int64_t pj = p + std::min(j, np - 1);
      k[j] = k_blocks[pj / block_size] + (pj % block_size) * row_stride;
    }
    __m512 acc[HC][4];
    for (int h = 0; h < HC; ++h)
      for (int j = 0; j < 4; ++j) acc[h][j] = _mm512_setzero_ps();
    for (std::int64_t d = 0; d < head_dim; d += 16) {
      const __mmask16 m = tail_mask(head_dim - d);
      __m512 kv[4];
      for (int j = 0; j < 4; ++j) kv[j] = load_kv(m, k[j] + d);
      for (int h = 0; h < HC; ++h) {
        const __m512 qv = _mm512_maskz_loadu_ps(m, q + h * head_dim + d);
        for (int j = 0; j < 4; ++j) acc[h][j] = _mm512_fmadd_ps(qv, kv[j], acc[h][j]);
      }
    }
    for (int h = 0; h < HC; ++h) {
      alignas(16) float four[4];
      _mm_store_ps(four, _mm_mul_ps(sum4(acc[h][0], acc[h][1], acc[h][2], acc[h][3]), sc));
      for (int j = 0; j < np; ++j) scores[h * n_pos + p + j] = four[j];
    }
  }
}

// out_h = sum_p weights[h * n_pos + p] * v_p for the HC heads, 16 * kVecs output floats of each
// at a time held in registers across all p (each lane's sum is the same whatever kVecs is).
template <int HC, typename Elem, int kVecs>
__attribute__((target("avx512f,avx512bw,avx512vl"))) void mix_avx512(const float* weights, const Elem* const* v_blocks,
                                                   std::int64_t block_size, std::int64_t row_stride,
                                                   std::int64_t n_pos, std::int64_t head_dim, float* out) {
  // accumulators: HC * kVecs registers
  for (std::int64_t d0 = 0; d0 < head_dim; d0 += 16 * kVecs) {
    __mmask16 m[kVecs];
    for (int j = 0; j < kVecs; ++j) m[j] = tail_mask(std::max<std::int64_t>(0, head_dim - d0 - 16 * j));
    __m512 acc[HC][kVecs];
    for (int h = 0; h < HC; ++h)
      for (int j = 0; j < kVecs; ++j) acc[h][j] = _mm512_setzero_ps();
    for (std::int64_t p0 = 0; p0 < n_pos; p0 += block_size) {
      const Elem* vb = v_blocks[p0 / block_size] + d0;
      const Elem* next = p0 + block_size < n_pos ? v_blocks[p0 / block_size + 1] : nullptr;
      const std::int64_t in_block = std::min(block_size, n_pos - p0);
      for (std::int64_t i = 0; i < in_block; ++i) {
        const Elem* v = vb + i * row_stride;
        // The next block's row i is read from memory while this block is mixed.
        if (d0 == 0 && next != nullptr) prefetch_row(next + i * row_stride, head_dim);
        __m512 vv[kVecs];
        for (int j = 0; j < kVecs; ++j) vv[j] = load_kv(m[j], v + 16 * j);
        for (int h = 0; h < HC; ++h) {
          const __m512 a = _mm512_set1_ps(weights[h * n_pos + p0 + i]);
          for (int j = 0; j < kVecs; ++j) acc[h][j] = _mm512_fmadd_ps(a, vv[j], acc[h][j]);
        }
      }
    }
    for (int h = 0; h < HC; ++h)
      for (int j = 0; j < kVecs; ++j) _mm512_mask_storeu_ps(out + h * head_dim + d0 + 16 * j, m[j], acc[h][j]);
  }
}

// The same scores over dimension-major key blocks (block b holds dimension d of its positions
// side by side at kt_blocks[b] + d * block_size): 16 positions in the lanes, no sums across lanes.
// Four partial sums per head over the dimensions (d mod 4), added ((0 + 1) + (2 + 3)).
template <int HC, typename Elem>
__attribute__((target("avx512f,avx512bw,avx512vl"))) void scores_kt_avx512(const float* q, const Elem* const* kt_blocks,
                                                                            std::int64_t block_size, std::int64_t n_pos,
                                                                            std::int64_t head_dim, float scale,
                                                                            float* scores) {
  const __m512 sc = _mm512_set1_ps(scale);
  for (std::int64_t p0 = 0; p0 < n_pos; p0 += block_size) {
    const Elem* kt = kt_blocks[p0 / block_size];
    const std::int64_t in_block = std::min(block_size, n_pos - p0);
    // The next block's keys are read from memory while this one is dotted.
    if (p0 + block_size < n_pos) prefetch_row(kt_blocks[p0 / block_size + 1], head_dim * block_size);
    for (std::int64_t c = 0; c < in_block; c += 16) {
      const __mmask16 m = tail_mask(in_block - c);
      __m512 acc[HC][4];
      for (int h = 0; h < HC; ++h)
        for (int j = 0; j < 4; ++j) acc[h][j] = _mm512_setzero_ps();
      std::int64_t d = 0;
      for (; d + 4 <= head_dim; d += 4) {
        for (int j = 0; j < 4; ++j) {
          const __m512 kv = load_kv(m, kt + (d + j) * block_size + c);
          for (int h = 0; h < HC; ++h) acc[h][j] = _mm512_fmadd_ps(_mm512_set1_ps(q[h * head_dim + d + j]), kv, acc[h][j]);
        }
      }
      // The last head_dim % 4 dimensions (j a constant in each copy, so the sums stay in registers).
#pragma GCC unroll 4
      for (int j = 0; j < 3; ++j) {
        if (d + j >= head_dim) break;
        const __m512 kv = load_kv(m, kt + (d + j) * block_size + c);
        for (int h = 0; h < HC; ++h) acc[h][j] = _mm512_fmadd_ps(_mm512_set1_ps(q[h * head_dim + d + j]), kv, acc[h][j]);
      }
      for (int h = 0; h < HC; ++h) {
        const __m512 sum = _mm512_add_ps(_mm512_add_ps(acc[h][0], acc[h][1]), _mm512_add_ps(acc[h][2], acc[h][3]));
        _mm512_mask_storeu_ps(scores + h * n_pos + p0 + c, m, _mm512_mul_ps(sum, sc));
      }
    }
  }
}

// Keys row-major (kDimMajor false: key p at k_blocks[p / block_size] + (p % block_size) *
// row_stride) or dimension-major within each block (true: dimension d of key p at
// k_blocks[p / block_size] + d * block_size + p % block_size).
template <int HC, typename Elem, bool kDimMajor>
__attribute__((target("avx512f,avx512bw,avx512vl"))) void attend_avx512(const float* q, const Elem* const* k_blocks,
                                                                         const Elem* const* v_blocks, std::int64_t block_size,
                                                                         std::int64_t row_stride, std::int64_t n_pos,
                                                                         std::int64_t head_dim, float scale, float* scratch,
                                                                         float* out) {
  // The first block of values is read from memory during the scores.
  for (std::int64_t i = 0; i < std::min(block_size, n_pos); ++i) prefetch_row(v_blocks[0] + i * row_stride, head_dim);
  if constexpr (kDimMajor) {
    scores_kt_avx512<HC, Elem>(q, k_blocks, block_size, n_pos, head_dim, scale, scratch);
  } else {
    scores_avx512<HC, Elem>(q, k_blocks, block_size, row_stride, n_pos, head_dim, scale, scratch);
  }
  for (int h = 0; h < HC; ++h) softmax_avx512(scratch + h * n_pos, n_pos);
  // As many accumulators a head as its dimensions need (a small head would mix masked-off lanes).
  if (head_dim <= 16) {
    mix_avx512<HC, Elem, 1>(scratch, v_blocks, block_size, row_stride, n_pos, head_dim, out);
  } else if (head_dim <= 32) {
    mix_avx512<HC, Elem, 2>(scratch, v_blocks, block_size, row_stride, n_pos, head_dim, out);
  } else {
    mix_avx512<HC, Elem, 4>(scratch, v_blocks, block_size, row_stride, n_pos, head_dim, out);
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
  attend_heads(q, 1, k_blocks, v_blocks, block_size, row_stride, n_pos, head_dim, scale, scratch, out);
}

namespace {

inline float kv_value(float v) { return v; }
inline float kv_value(std::uint16_t v) { return fp16_to_fp32(v); }

template <bool kDimMajor, typename Elem>
void attend_heads_any(const float* q, std::int64_t n_q, const Elem* const* k_blocks, const Elem* const* v_blocks,
                      std::int64_t block_size, std::int64_t row_stride, std::int64_t n_pos, std::int64_t head_dim,
                      float scale, float* scratch, float* out) {
  if (use_avx512()) {
    // Up to four heads at a time (the registers hold four heads' sums of four positions).
    for (std::int64_t h = 0; h < n_q;) {
      const std::int64_t hc = std::min<std::int64_t>(4, n_q - h);
      const float* qh = q + h * head_dim;
      float* oh = out + h * head_dim;
      float* sh = scratch + h * n_pos;
      switch (hc) {
        case 1: attend_avx512<1, Elem, kDimMajor>(qh, k_blocks, v_blocks, block_size, row_stride, n_pos, head_dim, scale, sh, oh); break;
        case 2: attend_avx512<2, Elem, kDimMajor>(qh, k_blocks, v_blocks, block_size, row_stride, n_pos, head_dim, scale, sh, oh); break;
        case 3: attend_avx512<3, Elem, kDimMajor>(qh, k_blocks, v_blocks, block_size, row_stride, n_pos, head_dim, scale, sh, oh); break;
        default: attend_avx512<4, Elem, kDimMajor>(qh, k_blocks, v_blocks, block_size, row_stride, n_pos, head_dim, scale, sh, oh); break;
      }
      h += hc;
    }
    return;
  }
  // Dimension d of key p, and its step to d + 1.
  const std::int64_t key_step = kDimMajor ? block_size : 1;
  const auto key = [&](std::int64_t p) {
    return k_blocks[p / block_size] + (p % block_size) * (kDimMajor ? 1 : row_stride);
  };
  for (std::int64_t h = 0; h < n_q; ++h) {
    const float* qh = q + h * head_dim;
    float* sh = scratch + h * n_pos;
    float* oh = out + h * head_dim;
    for (std::int64_t p = 0; p < n_pos; ++p) {
      const Elem* k = key(p);
      float dot = 0;
      for (std::int64_t d = 0; d < head_dim; ++d) dot += qh[d] * kv_value(k[d * key_step]);
      sh[p] = dot * scale;
    }
    softmax(sh, n_pos);
    std::fill(oh, oh + head_dim, 0.0f);
    for (std::int64_t p = 0; p < n_pos; ++p) {
      const Elem* v = v_blocks[p / block_size] + (p % block_size) * row_stride;
      const float a = sh[p];
      for (std::int64_t d = 0; d < head_dim; ++d) oh[d] += a * kv_value(v[d]);
    }
  }
}

}  // namespace

void attend_heads(const float* q, std::int64_t n_q, const float* const* k_blocks, const float* const* v_blocks,
                  std::int64_t block_size, std::int64_t row_stride, std::int64_t n_pos, std::int64_t head_dim,
                  float scale, float* scratch, float* out) {
  attend_heads_any<false>(q, n_q, k_blocks, v_blocks, block_size, row_stride, n_pos, head_dim, scale, scratch, out);
}

void attend_heads_kt(const float* q, std::int64_t n_q, const float* const* kt_blocks, const float* const* v_blocks,
                     std::int64_t block_size, std::int64_t row_stride, std::int64_t n_pos, std::int64_t head_dim,
                     float scale, float* scratch, float* out) {
  attend_heads_any<true>(q, n_q, kt_blocks, v_blocks, block_size, row_stride, n_pos, head_dim, scale, scratch, out);
}

void attend_heads_kt(const float* q, std::int64_t n_q, const std::uint16_t* const* kt_blocks,
                     const std::uint16_t* const* v_blocks, std::int64_t block_size, std::int64_t row_stride,
                     std::int64_t n_pos, std::int64_t head_dim, float scale, float* scratch, float* out) {
  attend_heads_any<true>(q, n_q, kt_blocks, v_blocks, block_size, row_stride, n_pos, head_dim, scale, scratch, out);
}

void attend_heads(const float* q, std::int64_t n_q, const std::uint16_t* const* k_blocks,
                  const std::uint16_t* const* v_blocks, std::int64_t block_size, std::int64_t row_stride,
                  std::int64_t n_pos, std::int64_t head_dim, float scale, float* scratch, float* out) {
  attend_heads_any<false>(q, n_q, k_blocks, v_blocks, block_size, row_stride, n_pos, head_dim, scale, scratch, out);
}

namespace {
__attribute__((target("avx512f"))) void to_fp16_avx512(const float* x, std::int64_t n, std::uint16_t* out) {
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  for (; i < n; ++i) out[i] = fp32_to_fp16(x[i]);
}
}  // namespace

void to_fp16(const float* x, std::int64_t n, std::uint16_t* out) {
  if (use_avx512()) {
    to_fp16_avx512(x, n, out);  // VCVTPS2PH rounds to nearest even, as fp32_to_fp16 does
    return;
  }
  for (std::int64_t i = 0; i < n; ++i) out[i] = fp32_to_fp16(x[i]);
}

}  // namespace infergate::kernels::cpu
