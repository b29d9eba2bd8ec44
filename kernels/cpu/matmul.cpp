// Matrix-product dispatch: picks the instruction set once, quantizes Q8_0 inputs, and splits
// the output rows across the thread pool in chunks that keep each chunk's weights in L2.
#include <emmintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <span>
#include <string>
#include <vector>

#include "infergate/kernels/cpu/kernels.h"
#include "infergate/kernels/devices.h"
#include "matmul_internal.h"

namespace infergate::kernels::cpu {

namespace {

Isa detect_best() {
  const CpuFeatures f = detect_cpu();
  const std::string best = f.best_isa();
  if (best == "avx512") {
    if (f.avx512vnni && f.amx_int8) return Isa::amx;
    return f.avx512vnni ? Isa::avx512vnni : Isa::avx512;
  }
  if (best == "avx2") return Isa::avx2;
  return Isa::scalar;
}

std::atomic<Isa>& chosen() {
  static std::atomic<Isa> isa{detect_best()};
  return isa;
}

MatmulRowsFn rows_fn(Isa isa) {
  switch (isa) {
    case Isa::amx: return amx::matmul_rows;
    case Isa::avx512vnni: return avx512vnni::matmul_rows;
    case Isa::avx512: return avx512::matmul_rows;
    case Isa::avx2: return avx2::matmul_rows;
    case Isa::scalar: return scalar::matmul_rows;
  }
  return scalar::matmul_rows;
}

// Token blocks (tokens x 32-value blocks) from which a batch's AMX quantization is shared out
// across the pool: 8 tokens of a 768-wide row.
constexpr std::int64_t kParallelQuantBlocks = 192;

// The input in the form the row kernels take: floats as they are, Q8_0 activations quantized
// into per-thread buffers (valid until this thread's next product).
const void* prepare_input(Isa isa, const WeightMatrix& w, const float* x, std::int64_t n_tokens,
                          ThreadPool* pool = nullptr) {
  if (w.type != WeightType::q8_0) return x;
  if (w.cols % kQ8Block != 0) throw std::invalid_argument("Q8_0 matrix with cols not a multiple of 32");
  thread_local std::vector<std::int8_t> qs;
  thread_local std::vector<float> d;
  thread_local std::vector<std::int32_t> corr;
  thread_local Q8Acts acts;
  const std::int64_t nb = w.cols / kQ8Block;
  if (isa == Isa::amx) {
    thread_local std::vector<std::int8_t> packed_qs;
    thread_local std::vector<float> packed_d;
    thread_local AmxActs amx_acts;
    const std::int64_t groups = (n_tokens + kAmxGroup - 1) / kAmxGroup;
    packed_qs.resize(static_cast<std::size_t>(groups * nb * kAmxBlockBytes));
    packed_d.resize(static_cast<std::size_t>(groups * nb * kAmxGroup));
    // A batch's quantization is shared out by blocks: on the caller alone it left the other
    // threads waiting before every product (about 5% of a 16-token step of a medium model).
    const std::int64_t pieces = pool != nullptr && n_tokens * nb >= kParallelQuantBlocks ? 2 * pool->size() : 1;
    // (The buffers are this thread's: a thread_local named inside the lambda would be the
    // worker's own.)
    std::int8_t* qs_out = packed_qs.data();
    float* d_out = packed_d.data();
    const std::int64_t cols = w.cols;
    const auto part = [=](std::int64_t i) {
      amx::quantize_packed(x, n_tokens, cols, qs_out, d_out, nb * i / pieces, nb * (i + 1) / pieces);
    };
    if (pieces > 1) {
      pool->run(pieces, part);
    } else {
      part(0);
    }
    amx_acts = AmxActs{packed_qs.data(), packed_d.data(), nb};
    return &amx_acts;
  }
  qs.resize(static_cast<std::size_t>(n_tokens * w.cols));
  d.resize(static_cast<std::size_t>(n_tokens * nb));
  corr.resize(d.size());
  const bool paired = isa == Isa::avx512 || isa == Isa::avx512vnni;
  quantize_activations(x, n_tokens, w.cols, paired, qs.data(), d.data(), corr.data());
  acts = Q8Acts{qs.data(), d.data(), corr.data(), nb};
  return &acts;
}

}  // namespace

// SSE2 (every x86-64): cvtps2dq rounds to nearest even like lrintf, without a libm call per
// value, which cost as much as a small matrix product.
void quantize_activations(const float* x, std::int64_t n_tokens, std::int64_t cols, bool paired,
                          std::int8_t* qs, float* d, std::int32_t* corr) {
  const std::int64_t nb = cols / kQ8Block;
  const __m128 abs_mask = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
  for (std::int64_t b = 0; b < n_tokens * nb; ++b) {
    const float* v = x + b * kQ8Block;
    __m128 mx = _mm_setzero_ps();
    for (int i = 0; i < kQ8Block; i += 4) mx = _mm_max_ps(mx, _mm_and_ps(_mm_loadu_ps(v + i), abs_mask));
    mx = _mm_max_ps(mx, _mm_movehl_ps(mx, mx));
    mx = _mm_max_ss(mx, _mm_shuffle_ps(mx, mx, 1));
    const float scale = activation_scale(_mm_cvtss_f32(mx));
    const __m128 inv = _mm_set1_ps(scale != 0 ? 1.0f / scale : 0.0f);
    d[b] = scale;
    alignas(16) std::int8_t q[kQ8Block];
    __m128i sum = _mm_setzero_si128();
    for (int i = 0; i < kQ8Block; i += 16) {
      __m128i q32[4];
      for (int j = 0; j < 4; ++j) {
        q32[j] = _mm_cvtps_epi32(_mm_mul_ps(_mm_loadu_ps(v + i + 4 * j), inv));
        sum = _mm_add_epi32(sum, q32[j]);
      }
      const __m128i q8 = _mm_packs_epi16(_mm_packs_epi32(q32[0], q32[1]), _mm_packs_epi32(q32[2], q32[3]));
      _mm_store_si128(reinterpret_cast<__m128i*>(q + i), q8);
    }
    sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0x4e));
    sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0xb1));
    corr[b] = -16 * _mm_cvtsi128_si32(sum);
    // Plain, or interleaved dword by dword with its pair.
    const std::int64_t k = b % nb;
    if (paired && (k % 2 == 1 || k + 1 < nb)) {
      std::int8_t* out = qs + (b - k % 2) * kQ8Block + k % 2 * 4;
      for (int i = 0; i < kQ8Block / 4; ++i) std::memcpy(out + 8 * i, q + 4 * i, 4);
    } else {
      std::memcpy(qs + b * kQ8Block, q, kQ8Block);
    }
  }
}

std::size_t f32_columns_bytes(const WeightMatrix& w) {
  return static_cast<std::size_t>(w.cols * packed_columns_stride(w.rows)) * sizeof(float);
}

void pack_f32_columns(const WeightMatrix& w, std::uint8_t* out) {
  if (w.type != WeightType::f32) throw std::invalid_argument("pack_f32_columns: the matrix is not F32");
  auto* wt = reinterpret_cast<float*>(out);
  const std::int64_t stride = packed_columns_stride(w.rows);
  std::fill(wt, wt + w.cols * stride, 0.0f);
  for (std::int64_t r = 0; r < w.rows; ++r) {
    const auto* row = reinterpret_cast<const float*>(w.row(r));
    for (std::int64_t c = 0; c < w.cols; ++c) wt[c * stride + r] = row[c];
  }
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::amx: return "amx";
    case Isa::avx512vnni: return "avx512vnni";
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    case Isa::scalar: return "scalar";
  }
  return "?";
}

bool isa_supported(Isa isa) {
  // Each ISA is a superset of the ones before it in the enum.
  return static_cast<int>(isa) <= static_cast<int>(detect_best());
}

Isa active_isa() { return chosen().load(std::memory_order_relaxed); }

void force_isa(Isa isa) {
  if (!isa_supported(isa)) {
    throw std::runtime_error(std::string("this CPU does not support ") + isa_name(isa));
  }
  chosen().store(isa);
}

void matmul_isa(Isa isa, const WeightMatrix& w, const float* x, std::int64_t n_tokens, float* y) {
  const void* in = prepare_input(isa, w, x, n_tokens);
  rows_fn(isa)(w, in, n_tokens, 0, w.rows, y);
}

void matmul(const WeightMatrix& w, const float* x, std::int64_t n_tokens, float* y,
            ThreadPool& pool) {
  const MatmulOut out{&w, y};
  matmul_shared_input(std::span(&out, 1), x, n_tokens, pool);
}

void matmul_shared_input(std::span<const MatmulOut> outs, const float* x, std::int64_t n_tokens, ThreadPool& pool) {
  if (outs.empty()) return;
  const WeightMatrix& first = *outs[0].w;
  for (const auto& o : outs) {
    if (o.w->type != first.type || o.w->cols != first.cols) {
      throw std::invalid_argument("matmul_shared_input: every matrix must have the same type and row length");
    }
  }
  const Isa isa = active_isa();
  const MatmulRowsFn fn = rows_fn(isa);
  const std::int64_t threads = pool.size();
  std::int64_t rows = 0;
  for (const auto& o : outs) rows += o.w->rows;
  // Handing work to another thread costs a few microseconds and a cache line's trip between
  // cores, so a product that is both little compute and little memory (a small model's, about
  // 30 us on one core) stays on the caller; anything reading more weights than that goes wide,
  // as batch-1 decode is bound by memory and needs every core's share of the bus.
  const std::int64_t macs = rows * first.cols * n_tokens;
  const std::int64_t weight_bytes = rows * row_bytes(first.type, first.cols);
  const bool wide = threads > 1 && (macs >= (std::int64_t{1} << 20) || weight_bytes >= (std::int64_t{256} << 10));
  const void* in = prepare_input(isa, first, x, n_tokens, wide ? &pool : nullptr);  // quantized once for all
  if (!wide) {
    for (const auto& o : outs) fn(*o.w, in, n_tokens, 0, o.w->rows, o.y);
    return;
  }
  // One parallel region for all the matrices: several chunks per thread so uneven progress
  // evens out; a multiple of 8 rows (16 for the AMX kernel's row groups) so the tiles stay full.
  // The AMX kernel: finer pieces for token groups (each is quick, and the last one decides when
  // all are done), coarser for one token (longer streams from memory; measured: 2 threads,
  // medium Q8_0 at batch 1, 8 pieces a thread 181-190 t/s, 4: 197-203, 2: 211-232).
  const bool amx = isa == Isa::amx && first.type == WeightType::q8_0;
  const std::int64_t per_thread = amx ? (n_tokens > 1 ? 8 : 2) : 4;
  const std::int64_t align = amx ? kAmxGroup : 8;
  std::int64_t chunk = (rows + threads * per_thread - 1) / (threads * per_thread);
  chunk = std::max<std::int64_t>(align, (chunk + align - 1) / align * align);
  struct Piece {
    std::size_t out;
    std::int64_t r0, r1;
  };
  thread_local std::vector<Piece> pieces;
  pieces.clear();
  for (std::size_t k = 0; k < outs.size(); ++k) {
    for (std::int64_t r0 = 0; r0 < outs[k].w->rows; r0 += chunk) {
      pieces.push_back({k, r0, std::min(outs[k].w->rows, r0 + chunk)});
    }
  }
  const std::vector<Piece>& work = pieces;
  pool.run(static_cast<std::int64_t>(work.size()), [&](std::int64_t i) {
    const Piece& p = work[static_cast<std::size_t>(i)];
    fn(*outs[p.out].w, in, n_tokens, p.r0, p.r1, outs[p.out].y);
  });
}

}  // namespace infergate::kernels::cpu
