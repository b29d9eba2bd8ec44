// Q8_0 products on AMX, the tile unit of Intel's Sapphire Rapids and later: one tile product
// dots 16 weight rows with up to 16 tokens over one 32-byte block (8,192 multiply-adds), where
// the AVX-512 VNNI kernels need a VPDPBUSD, a conversion and an FMA per row, token and block
// pair. F32 and F16 weights use the AVX-512 VNNI kernels unchanged.
//
// Numerics, the same on every path below: each block's exact integer dot is converted to float
// and scaled, acc = fma(float(dot), d_w * d_x, acc), block after block in order. Token groups
// put the tokens in the lanes (one vector per row); a single token puts 16 rows in the lanes of
// one vector. Each (row, token) takes exactly these operations in this order, so a token's result
// does not depend on how many tokens share the product (batch invariance).
//
// Weights repacked by pack_q8_0_amx are read as one sequential stream per 16-row group: per block
// the 16 rows' quants (signed, as in the file) and then their scales. Token groups take them
// with TDPBSSD (signed by signed, C starting at zero). A single token runs on AVX-512 VNNI there
// (the tile unit's fixed cost per product is more than a 16 x 1 product is worth): VPDPBUSD
// wants one unsigned operand, so the activations go in plus 128 and a second VPDPBUSD of 128
// by the weights takes 128 * sum(w) back out, exactly. Matrices without a packed copy are read
// in place (the A tile loaded from 16 GGUF rows a row's stride apart), with the same results,
// only slower.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "infergate/kernels/cpu/kernels.h"
#include "matmul_internal.h"

namespace infergate::kernels::cpu::amx {

namespace {

constexpr std::int64_t kGroup = kAmxGroup;  // rows per row group, tokens per token group
constexpr std::int64_t kBlockBytes = sizeof(BlockQ8_0);
constexpr std::int64_t kPackedQuantBytes = kGroup * kQ8Block;
constexpr std::int64_t kPackedBlockBytes = kPackedQuantBytes + kGroup * 2;  // quants, then F16 scales

// The packed scales' order: the single-token kernel's reduction leaves row sums in this lane
// order (lane j holds row kLaneRow[j]), so the scales are stored to match it.
constexpr int kLaneRow[16] = {0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15};

// Tiles: 0 to 3 are C (rows x tokens int32), 4 and 5 A (rows x 32 bytes), 6 and 7 B (8 rows
// of tokens x 4 bytes). A pair of blocks takes C tiles 0 and 1 or 2 and 3, so that one pair's
// products run on the tile unit while the previous pair is stored and scaled.
struct alignas(64) TileConfig {
  std::uint8_t palette = 1;
  std::uint8_t start_row = 0;
  std::uint8_t reserved[14] = {};
  std::uint16_t colsb[16] = {};
  std::uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64);

void configure(int m, int nt) {
  TileConfig c;
  for (int i = 0; i < 4; ++i) {
    c.rows[i] = static_cast<std::uint8_t>(m);
    c.colsb[i] = static_cast<std::uint16_t>(4 * nt);
  }
  for (int i = 4; i < 6; ++i) {
    c.rows[i] = static_cast<std::uint8_t>(m);
    c.colsb[i] = kQ8Block;
    c.rows[2 + i] = kQ8Block / 4;
    c.colsb[2 + i] = static_cast<std::uint16_t>(4 * nt);
  }
  _tile_loadconfig(&c);
}

// A row group as the tile products see it: block b's A tile (16 rows of 32 bytes, `a_stride`
// apart) at a + b * a_step, and (unpacked weights) the rows' weight scales as floats,
// sw[b * 16 + r]; packed weights carry their scales in each block (block_scales).
struct RowGroup {
  const std::uint8_t* a;
  std::int64_t a_step;
  std::int64_t a_stride;
  bool packed;      // the packed copy (scales in each block), else GGUF rows
  const float* sw;
};

// One block's product into C tile `c` from A tile `ta` and B tile `tb`: the exact dot of the
// signed quants, C starting at zero.
#define IG_AMX_BLOCK(c, ta, tb, g, bq, b, bstride)                              \
  do {                                                                          \
    _tile_loadd(ta, (g).a + (b) * (g).a_step, (g).a_stride);                    \
    _tile_loadd(tb, (bq) + (b) * kAmxBlockBytes, bstride);                      \
    _tile_zero(c);                                                              \
    _tile_dpbssd(c, ta, tb);                                                    \
  } while (0)

// One token on the tile unit (unpacked weights only; lanes = the group's rows). C is stored
// with a 4-byte stride: 16 int32, one per row, in a single vector.
__m512 one_token_tiles(const RowGroup& g, const std::int8_t* bq, const float* xd, std::int64_t nb,
                       std::int32_t (*cbuf)[kGroup * kGroup]) {
  __m512 acc = _mm512_setzero_ps();
  std::int64_t b = 0;
  for (; b + 1 < nb; b += 2) {
    IG_AMX_BLOCK(0, 4, 6, g, bq, b, 4);
    IG_AMX_BLOCK(1, 5, 7, g, bq, b + 1, 4);
    _tile_stored(0, cbuf[0], 4);
    _tile_stored(1, cbuf[1], 4);
    for (int j = 0; j < 2; ++j) {
      const __m512 dot = _mm512_cvtepi32_ps(_mm512_load_si512(cbuf[j]));
      const __m512 s = _mm512_mul_ps(_mm512_loadu_ps(g.sw + (b + j) * kGroup), _mm512_set1_ps(xd[(b + j) * kGroup]));
      acc = _mm512_fmadd_ps(dot, s, acc);
    }
  }
  if (b < nb) {
    IG_AMX_BLOCK(0, 4, 6, g, bq, b, 4);
    _tile_stored(0, cbuf[0], 4);
    const __m512 dot = _mm512_cvtepi32_ps(_mm512_load_si512(cbuf[0]));
    const __m512 s = _mm512_mul_ps(_mm512_loadu_ps(g.sw + b * kGroup), _mm512_set1_ps(xd[b * kGroup]));
    acc = _mm512_fmadd_ps(dot, s, acc);
  }
  return acc;
}

// Sums within each 128-bit lane: lane L of the result is (sum of a's lane L, of b's, c's, d's).
inline __m512i lane_sums4(__m512i a, __m512i b, __m512i c, __m512i d) {
  const __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
  const __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
  return _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
}

// One token over packed weights on AVX-512 VNNI, S row groups at once (S streams from memory,
// which a single core reads faster than one): per group and block, 8 VPDPBUSDs of the
// activations plus 128 by the weights (two rows each) less 8 of 128 by the weights, and a
// reduction to the 16 rows' exact dots, lanes in kLaneRow order. Leaves each group's
// accumulators in that order.
// How far ahead each stream asks for its blocks (two blocks).
constexpr int kPrefetch = 2 * kPackedBlockBytes;
template <int S>
void one_token_packed(const std::uint8_t* const* base, const std::int8_t* bq, const float* xd, std::int64_t nb,
                      __m512* acc) {
  for (int s = 0; s < S; ++s) acc[s] = _mm512_setzero_ps();
  const __m512i zero = _mm512_setzero_si512();
  const __m512i k128 = _mm512_set1_epi8(static_cast<char>(0x80));
  for (std::int64_t b = 0; b < nb; ++b) {
    // x + 128 as unsigned bytes (flipping the top bit).
    const __m512i x = _mm512_xor_si512(
        _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bq + b * kAmxBlockBytes))), k128);
    const __m512 xs = _mm512_set1_ps(xd[b * kGroup]);
    for (int s = 0; s < S; ++s) {
      const std::uint8_t* blk = base[s] + b * kPackedBlockBytes;
      for (int l = 0; l < kPackedBlockBytes; l += 64) _mm_prefetch(reinterpret_cast<const char*>(blk + kPrefetch + l), _MM_HINT_T0);
      __m512i v[8];
      for (int i = 0; i < 8; ++i) {
        const __m512i w = _mm512_loadu_si512(blk + 64 * i);
        v[i] = _mm512_sub_epi32(_mm512_dpbusd_epi32(zero, x, w), _mm512_dpbusd_epi32(zero, k128, w));
      }
      const __m512i w0 = lane_sums4(v[0], v[1], v[2], v[3]);
      const __m512i w1 = lane_sums4(v[4], v[5], v[6], v[7]);
      // Lane L of v[i] holds row 2i (L = 0, 1) or 2i + 1 (L = 2, 3): add the two halves of each row.
      const __m512i dots = _mm512_add_epi32(_mm512_shuffle_i32x4(w0, w1, 0x88), _mm512_shuffle_i32x4(w0, w1, 0xdd));
      const __m512 sw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + kPackedQuantBytes)));
      acc[s] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots), _mm512_mul_ps(sw, xs), acc[s]);
    }
  }
}

// Rows [r0, r1) (r0 a multiple of 16) for one token over packed weights: the row groups are dealt
// into kStreams parts and each pass takes the next group of every part.
void single_token_packed(const WeightMatrix& w, const AmxActs& x, std::int64_t r0, std::int64_t r1, float* y) {
  constexpr int kStreams = 4;
  const std::int64_t nb = x.nb;
  const std::int64_t g0 = r0 / kGroup, groups = (r1 - r0 + kGroup - 1) / kGroup;
  const std::int64_t per = groups / kStreams;
  const __m512i lane_of_row = _mm512_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15);
  const auto store = [&](std::int64_t g, __m512 lanes) {
    const std::int64_t rg = g * kGroup;
    const int m = static_cast<int>(std::min(kGroup, r1 - rg));
    _mm512_mask_storeu_ps(y + rg, static_cast<__mmask16>((1u << m) - 1), _mm512_permutexvar_ps(lane_of_row, lanes));
  };
  const std::uint8_t* base[kStreams];
  __m512 acc[kStreams];
  for (std::int64_t i = 0; i < per; ++i) {
    for (int s = 0; s < kStreams; ++s) base[s] = w.packed + (g0 + i + s * per) * nb * kPackedBlockBytes;
    one_token_packed<kStreams>(base, x.qs, x.d, nb, acc);
    for (int s = 0; s < kStreams; ++s) store(g0 + i + s * per, acc[s]);
  }
  for (std::int64_t g = g0 + per * kStreams; g < g0 + groups; ++g) {
    base[0] = w.packed + g * nb * kPackedBlockBytes;
    one_token_packed<1>(base, x.qs, x.d, nb, acc);
    store(g, acc[0]);
  }
}

// Scales one stored C tile (rows x 16 int32 lanes, lanes = tokens) into the accumulators
// (unrolled, so that they stay in registers).
// The rows' scales come from memory (a broadcast is then a load, not a shuffle).
__attribute__((always_inline)) inline void scale_rows(const std::int32_t* c, const float* sw, __m512 xdv, __m512* acc) {
#pragma GCC unroll 16
  for (int r = 0; r < kGroup; ++r) {
    const __m512 dot = _mm512_cvtepi32_ps(_mm512_load_si512(c + r * kGroup));
    const __m512 s = _mm512_mul_ps(xdv, _mm512_set1_ps(sw[r]));
    acc[r] = _mm512_fmadd_ps(dot, s, acc[r]);
  }
}

// Block b's 16 weight scales as floats in row order. Packed weights carry them (F16, in
// kLaneRow order) right after the block's quants, so they arrive with the block; converting them
// in a pass over the group ahead of the products cost a cache miss per block before any product
// could start (11% of the kernel's time at 16 tokens). `tmp` holds them for the packed case.
__attribute__((always_inline)) inline const float* block_scales(const RowGroup& g, std::int64_t b, float* tmp) {
  if (!g.packed) return g.sw + b * kGroup;
  const __m512i row_lane = _mm512_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15);
  const __m512 lanes = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(g.a + b * g.a_step + kPackedQuantBytes)));
  _mm512_store_ps(tmp, _mm512_permutexvar_ps(row_lane, lanes));
  return tmp;
}

// Blocks b and b + 1 (b alone at the end of an odd count) of a token group into C tiles C0 and
// C1; then (drain) those tiles stored and scaled into the accumulators, block b first. The tile
// intrinsics take tile numbers as literals, hence a macro.
#define IG_AMX_PAIR(C0, C1)                                                                                   \
  __attribute__((always_inline)) inline void issue_pair_##C0##C1(const RowGroup& g, const std::int8_t* bq,    \
                                                                 std::int64_t b, std::int64_t nb,             \
                                                                 int bstride) {                               \
    IG_AMX_BLOCK(C0, 4, 6, g, bq, b, bstride);                                                                \
    if (b + 1 < nb) IG_AMX_BLOCK(C1, 5, 7, g, bq, b + 1, bstride);                                            \
  }                                                                                                           \
  __attribute__((always_inline)) inline void drain_pair_##C0##C1(const RowGroup& g, const float* xd,          \
                                                                 std::int64_t b, std::int64_t nb,             \
                                                                 std::int32_t(*cbuf)[kGroup * kGroup],        \
                                                                 __m512* acc) {                               \
    _tile_stored(C0, cbuf[0], 64);                                                                            \
    if (b + 1 < nb) _tile_stored(C1, cbuf[1], 64);                                                            \
    alignas(64) float sw[2][kGroup];                                                                          \
    scale_rows(cbuf[0], block_scales(g, b, sw[0]), _mm512_loadu_ps(xd + b * kGroup), acc);                    \
    if (b + 1 < nb) {                                                                                         \
      scale_rows(cbuf[1], block_scales(g, b + 1, sw[1]), _mm512_loadu_ps(xd + (b + 1) * kGroup), acc);        \
    }                                                                                                         \
  }
IG_AMX_PAIR(0, 1)
IG_AMX_PAIR(2, 3)
#undef IG_AMX_PAIR

constexpr std::int64_t kPrefetchBlocks = 4;

// A group of 2..16 tokens (lanes = tokens, one accumulator per row). C is stored with a
// 64-byte stride: row r's tokens at cbuf[r * 16, +16). The products of each pair of blocks are
// issued before the previous pair is drained (C tiles 0-1 and 2-3 in turn); the scaling stays in
// block order.
void token_group(const RowGroup& g, const std::int8_t* bq, const float* xd, std::int64_t nb, int nt,
                 std::int32_t (*cbuf)[kGroup * kGroup], __m512* out) {
  __m512 acc[kGroup];
#pragma GCC unroll 16
  for (int r = 0; r < kGroup; ++r) acc[r] = _mm512_setzero_ps();
  if (nb == 0) {  // no columns: every sum is 0
#pragma GCC unroll 16
    for (int r = 0; r < kGroup; ++r) out[r] = acc[r];
    return;
  }
  const int bstride = 4 * nt;
  issue_pair_01(g, bq, 0, nb, bstride);
  std::int64_t b = 2;
  for (; b < nb; b += 2) {
    if (g.packed) {
      // The weights four blocks on (past the group's end: the next group's, which a piece's next
      // step reads) are asked for now. The tile unit runs its loads in order, so a block that is
      // not yet in the cache holds up every product behind it (two threads streaming: 63 -> 53 ns
      // a block; the loads alone take 45).
      const char* ahead = reinterpret_cast<const char*>(g.a + (b + kPrefetchBlocks) * g.a_step);
      for (int l = 0; l < 2 * kPackedBlockBytes; l += 64) _mm_prefetch(ahead + l, _MM_HINT_T0);
    }
    if ((b / 2) % 2 == 1) {
      issue_pair_23(g, bq, b, nb, bstride);
      drain_pair_01(g, xd, b - 2, nb, cbuf, acc);
    } else {
      issue_pair_01(g, bq, b, nb, bstride);
      drain_pair_23(g, xd, b - 2, nb, cbuf, acc);
    }
  }
  if (((b - 2) / 2) % 2 == 1) {
    drain_pair_23(g, xd, b - 2, nb, cbuf, acc);
  } else {
    drain_pair_01(g, xd, b - 2, nb, cbuf, acc);
  }
#pragma GCC unroll 16
  for (int r = 0; r < kGroup; ++r) out[r] = acc[r];
}

// In place: v[i] lane j <-> v[j] lane i, a 16 x 16 transpose in three rounds of shuffles.
inline void transpose16(__m512* v) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {  // per 128-bit lane L: (r, 4L), (r + 1, 4L), (r, 4L + 1), ...
    t[i] = _mm512_unpacklo_ps(v[i], v[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(v[i], v[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {  // u[i + k], lane L: column 4L + k of rows i..i+3
    const auto pd = [](__m512 x) { return _mm512_castps_pd(x); };
    v[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(t[i]), pd(t[i + 2])));
    v[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(t[i]), pd(t[i + 2])));
    v[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(t[i + 1]), pd(t[i + 3])));
    v[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(t[i + 1]), pd(t[i + 3])));
  }
  for (int k = 0; k < 4; ++k) {  // 4 x 4 transpose of 128-bit blocks across v[k], v[4 + k], ...
    const __m512 p0 = _mm512_shuffle_f32x4(v[k], v[4 + k], 0x44), p1 = _mm512_shuffle_f32x4(v[k], v[4 + k], 0xee);
    const __m512 p2 = _mm512_shuffle_f32x4(v[8 + k], v[12 + k], 0x44), p3 = _mm512_shuffle_f32x4(v[8 + k], v[12 + k], 0xee);
    t[k] = _mm512_shuffle_f32x4(p0, p2, 0x88);
    t[4 + k] = _mm512_shuffle_f32x4(p0, p2, 0xdd);
    t[8 + k] = _mm512_shuffle_f32x4(p1, p3, 0x88);
    t[12 + k] = _mm512_shuffle_f32x4(p1, p3, 0xdd);
  }
  for (int i = 0; i < 16; ++i) v[i] = t[i];
}

void q8_rows(const WeightMatrix& w, const AmxActs& x, std::int64_t n_tokens, std::int64_t r0,
             std::int64_t r1, float* y) {
  const std::int64_t nb = x.nb;
  const std::int64_t stride = row_bytes(WeightType::q8_0, w.cols);
  const bool packed = w.packed != nullptr && r0 % kGroup == 0;
  if (packed && n_tokens == 1) {
    single_token_packed(w, x, r0, r1, y);
    return;
  }
  // Unpacked: the row group's weight scales as floats, block-major (sw[b * 16 + r]); rows past
  // the end of the group have scale 0, so whatever their lanes hold comes out as 0.
  thread_local std::vector<float> sw_store;
  sw_store.resize(static_cast<std::size_t>(nb * kGroup));
  // Lanes and rows of a stored C tile past the tokens and rows in use hold stale integers; they
  // are scaled by 0 (the activations' scales are 0 past the group, the weights' past the rows) and
  // never stored, so the buffer is not cleared.
  alignas(64) std::int32_t cbuf[2][kGroup * kGroup];
  __m512 acc[kGroup];
  int cm = 0, cnt = 0;  // the tile shape now configured (0: none)
  for (std::int64_t rg = r0; rg < r1; rg += kGroup) {
    const int m = static_cast<int>(std::min(kGroup, r1 - rg));
    const auto rows_mask = static_cast<__mmask16>((1u << m) - 1);
    RowGroup g{};
    int tile_rows = m;
    if (packed) {
      // Whole groups exist in the packed copy (zeros past the last row), so the tile is always
      // 16 rows and only the stores are cut short.
      const std::uint8_t* base = w.packed + rg / kGroup * nb * kPackedBlockBytes;
      g = RowGroup{base, kPackedBlockBytes, kQ8Block, true, nullptr};  // scales read per block
      tile_rows = kGroup;
    } else {
      // Block by block across the rows, so that the first touch of 16 rows' memory is 16 misses
      // in flight rather than one row's at a time.
      float* sw = sw_store.data();
      const std::uint8_t* base = w.row(rg);
      for (std::int64_t b = 0; b < nb; ++b) {
        for (int r = 0; r < m; ++r) {
          const auto* blk = reinterpret_cast<const BlockQ8_0*>(base + r * stride) + b;
          sw[b * kGroup + r] = _cvtsh_ss(blk->d);
        }
        for (int r = m; r < kGroup; ++r) sw[b * kGroup + r] = 0.0f;
      }
      g = RowGroup{base + offsetof(BlockQ8_0, qs), kBlockBytes, stride, false, sw};
    }
    for (std::int64_t t0 = 0; t0 < n_tokens; t0 += kGroup) {
      const int nt = static_cast<int>(std::min(kGroup, n_tokens - t0));
      const std::int64_t gi = t0 / kGroup;
      const std::int8_t* bq = x.qs + gi * nb * kAmxBlockBytes;
      const float* xd = x.d + gi * nb * kGroup;
      if (nt == 1 && packed) {  // the last token of a batch of 16k + 1
        single_token_packed(w, AmxActs{bq, xd, nb}, rg, rg + m, y + t0 * w.rows);
        continue;
      }
      if (tile_rows != cm || nt != cnt) {
        configure(tile_rows, nt);
        cm = tile_rows;
        cnt = nt;
      }
      if (nt == 1) {
        const __m512 v = one_token_tiles(g, bq, xd, nb, cbuf);
        _mm512_mask_storeu_ps(y + t0 * w.rows + rg, rows_mask, v);
        continue;
      }
      token_group(g, bq, xd, nb, nt, cbuf, acc);
      // acc[r] holds row r's tokens; y wants each token's rows side by side.
      transpose16(acc);
      for (int t = 0; t < nt; ++t) _mm512_mask_storeu_ps(y + (t0 + t) * w.rows + rg, rows_mask, acc[t]);
    }
  }
  if (cm != 0) _tile_release();  // a thread holding no tile state switches as cheaply as before
}

}  // namespace

void matmul_rows(const WeightMatrix& w, const void* x, std::int64_t n_tokens, std::int64_t r0,
                 std::int64_t r1, float* y) {
  if (w.type == WeightType::q8_0) {
    q8_rows(w, *static_cast<const AmxActs*>(x), n_tokens, r0, r1, y);
  } else {
    avx512vnni::matmul_rows(w, x, n_tokens, r0, r1, y);
  }
}

void quantize_packed(const float* x, std::int64_t n_tokens, std::int64_t cols, std::int8_t* out_qs, float* out_d,
                     std::int64_t b0, std::int64_t b1) {
  // Each block as quantize_activations does it (scale max|x| / 127, x * (1 / scale) rounded to
  // nearest even), 32 values in two vectors, then its 8 dwords dealt into the B layout.
  const std::int64_t nb = cols / kQ8Block;
  if (b1 < 0) b1 = nb;
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  for (std::int64_t t0 = 0; t0 < n_tokens; t0 += kGroup) {
    const std::int64_t nt = std::min(kGroup, n_tokens - t0), g = t0 / kGroup;
    for (std::int64_t b = b0; b < b1; ++b) {
      std::int8_t* dst = out_qs + (g * nb + b) * kAmxBlockBytes;
      float* dd = out_d + (g * nb + b) * kGroup;
      for (std::int64_t t = 0; t < nt; ++t) {
        const float* v = x + (t0 + t) * cols + b * kQ8Block;
        const __m512 lo = _mm512_loadu_ps(v), hi = _mm512_loadu_ps(v + 16);
        const float mx = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(lo, abs_mask), _mm512_and_ps(hi, abs_mask)));
        const float scale = activation_scale(mx);
        const __m512 inv = _mm512_set1_ps(scale != 0 ? 1.0f / scale : 0.0f);
        const __m512i qlo = _mm512_cvtps_epi32(_mm512_mul_ps(lo, inv)), qhi = _mm512_cvtps_epi32(_mm512_mul_ps(hi, inv));
        dd[t] = scale;
        alignas(32) std::int32_t q[8];
        _mm_store_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtsepi32_epi8(qlo));
        _mm_store_si128(reinterpret_cast<__m128i*>(q + 4), _mm512_cvtsepi32_epi8(qhi));
        for (int kk = 0; kk < kQ8Block / 4; ++kk) std::memcpy(dst + kk * 4 * nt + t * 4, &q[kk], 4);
      }
      for (std::int64_t t = nt; t < kGroup; ++t) dd[t] = 0.0f;
    }
  }
}

}  // namespace infergate::kernels::cpu::amx

namespace infergate::kernels::cpu {

std::size_t amx_packed_bytes(const WeightMatrix& w) {
  const std::int64_t groups = (w.rows + amx::kGroup - 1) / amx::kGroup;
  return static_cast<std::size_t>(groups * (w.cols / kQ8Block) * amx::kPackedBlockBytes);
}

void pack_q8_0_amx(const WeightMatrix& w, std::uint8_t* out) {
  if (w.type != WeightType::q8_0) throw std::invalid_argument("pack_q8_0_amx: the matrix is not Q8_0");
  const std::int64_t nb = w.cols / kQ8Block;
  const std::int64_t groups = (w.rows + amx::kGroup - 1) / amx::kGroup;
  // Rows past the end: quants 0 and scale 0.
  for (std::int64_t g = 0; g < groups; ++g) {
    for (std::int64_t b = 0; b < nb; ++b) {
      std::uint8_t* dst = out + (g * nb + b) * amx::kPackedBlockBytes;
      std::memset(dst, 0, amx::kPackedQuantBytes);
      std::memset(dst + amx::kPackedQuantBytes, 0, amx::kGroup * 2);
    }
  }
  for (std::int64_t r = 0; r < w.rows; ++r) {
    const auto* blocks = reinterpret_cast<const BlockQ8_0*>(w.row(r));
    const std::int64_t g = r / amx::kGroup, i = r % amx::kGroup;
    const std::int64_t lane = std::find(amx::kLaneRow, amx::kLaneRow + amx::kGroup, i) - amx::kLaneRow;
    for (std::int64_t b = 0; b < nb; ++b) {
      std::uint8_t* dst = out + (g * nb + b) * amx::kPackedBlockBytes;
      std::memcpy(dst + i * kQ8Block, blocks[b].qs, kQ8Block);
      std::memcpy(dst + amx::kPackedQuantBytes + lane * 2, &blocks[b].d, 2);
    }
  }
}

}  // namespace infergate::kernels::cpu
