// Matrix-product dispatch: picks the instruction set once, quantizes Q8_0 inputs, and splits
// the output rows across the thread pool in chunks that keep each chunk's weights in L2.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "infergate/kernels/cpu/kernels.h"
#include "infergate/kernels/devices.h"
#include "matmul_internal.h"

namespace infergate::kernels::cpu {

namespace {

Isa detect_best() {
  const std::string best = detect_cpu().best_isa();
  if (best == "avx512") return Isa::avx512;
  if (best == "avx2") return Isa::avx2;
  return Isa::scalar;
}

std::atomic<Isa>& chosen() {
  static std::atomic<Isa> isa{detect_best()};
  return isa;
}

MatmulRowsFn rows_fn(Isa isa) {
  switch (isa) {
    case Isa::avx512: return avx512::matmul_rows;
    case Isa::avx2: return avx2::matmul_rows;
    case Isa::scalar: return scalar::matmul_rows;
  }
  return scalar::matmul_rows;
}

// The input in the form the row kernels take: floats as they are, Q8_0 activations quantized
// into a per-thread buffer.
const void* prepare_input(const WeightMatrix& w, const float* x, std::int64_t n_tokens) {
  if (w.type != WeightType::q8_0) return x;
  if (w.cols % kQ8Block != 0) throw std::invalid_argument("Q8_0 matrix with cols not a multiple of 32");
  thread_local std::vector<BlockQ8Act> buffer;
  const std::int64_t per_token = w.cols / kQ8Block;
  buffer.resize(static_cast<std::size_t>(n_tokens * per_token));
  for (std::int64_t t = 0; t < n_tokens; ++t) {
    quantize_activations(x + t * w.cols, w.cols, buffer.data() + t * per_token);
  }
  return buffer.data();
}

}  // namespace

void quantize_activations(const float* x, std::int64_t n, BlockQ8Act* out) {
  for (std::int64_t k = 0; k < n / kQ8Block; ++k) {
    const float* v = x + k * kQ8Block;
    float amax = 0;
    for (int i = 0; i < kQ8Block; ++i) amax = std::max(amax, std::fabs(v[i]));
    const float d = amax / 127.0f;
    const float inv = d != 0 ? 1.0f / d : 0.0f;
    out[k].d = d;
    for (int i = 0; i < kQ8Block; ++i) out[k].qs[i] = static_cast<std::int8_t>(std::lrintf(v[i] * inv));
  }
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    case Isa::scalar: return "scalar";
  }
  return "?";
}

bool isa_supported(Isa isa) {
  const Isa best = detect_best();
  if (isa == Isa::scalar) return true;
  if (isa == Isa::avx2) return best == Isa::avx2 || best == Isa::avx512;
  return best == Isa::avx512;
}

Isa active_isa() { return chosen().load(std::memory_order_relaxed); }

void force_isa(Isa isa) {
  if (!isa_supported(isa)) {
    throw std::runtime_error(std::string("this CPU does not support ") + isa_name(isa));
  }
  chosen().store(isa);
}

void matmul_isa(Isa isa, const WeightMatrix& w, const float* x, std::int64_t n_tokens, float* y) {
  const void* in = prepare_input(w, x, n_tokens);
  rows_fn(isa)(w, in, n_tokens, 0, w.rows, y);
}

void matmul(const WeightMatrix& w, const float* x, std::int64_t n_tokens, float* y,
            ThreadPool& pool) {
  const void* in = prepare_input(w, x, n_tokens);
  const MatmulRowsFn fn = rows_fn(active_isa());
  const std::int64_t threads = pool.size();
  const std::int64_t work = w.rows * w.cols * n_tokens;
  if (threads == 1 || work < 64 * 1024) {
    fn(w, in, n_tokens, 0, w.rows, y);
    return;
  }
  // Several chunks per thread so uneven progress evens out; a multiple of 8 rows so the tiles
  // stay full.
  std::int64_t chunk = (w.rows + threads * 4 - 1) / (threads * 4);
  chunk = std::max<std::int64_t>(8, (chunk + 7) / 8 * 8);
  const std::int64_t n_chunks = (w.rows + chunk - 1) / chunk;
  pool.run(n_chunks, [&](std::int64_t i) {
    const std::int64_t r0 = i * chunk;
    fn(w, in, n_tokens, r0, std::min(w.rows, r0 + chunk), y);
  });
}

}  // namespace infergate::kernels::cpu
