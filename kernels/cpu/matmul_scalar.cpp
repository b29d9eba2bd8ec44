// The portable matrix product: straightforward loops, the reference the SIMD versions are
// tested against and the fallback on CPUs without AVX2.
#include "matmul_internal.h"

namespace infergate::kernels::cpu::scalar {

void matmul_rows(const WeightMatrix& w, const void* x, std::int64_t n_tokens, std::int64_t r0,
                 std::int64_t r1, float* y) {
  const std::int64_t cols = w.cols;
  for (std::int64_t t = 0; t < n_tokens; ++t) {
    for (std::int64_t r = r0; r < r1; ++r) {
      float sum = 0;
      switch (w.type) {
        case WeightType::f32: {
          const auto* wr = reinterpret_cast<const float*>(w.row(r));
          const float* xt = static_cast<const float*>(x) + t * cols;
          for (std::int64_t c = 0; c < cols; ++c) sum += wr[c] * xt[c];
          break;
        }
        case WeightType::f16: {
          const auto* wr = reinterpret_cast<const std::uint16_t*>(w.row(r));
          const float* xt = static_cast<const float*>(x) + t * cols;
          for (std::int64_t c = 0; c < cols; ++c) sum += fp16_to_fp32(wr[c]) * xt[c];
          break;
        }
        case WeightType::q8_0: {
          const auto* wb = reinterpret_cast<const BlockQ8_0*>(w.row(r));
          const auto& xa = *static_cast<const Q8Acts*>(x);  // plain layout
          for (std::int64_t k = 0; k < xa.nb; ++k) {
            const std::int8_t* xq = xa.qs + (t * xa.nb + k) * kQ8Block;
            std::int32_t dot = 0;
            for (int i = 0; i < kQ8Block; ++i) dot += wb[k].qs[i] * xq[i];
            sum += fp16_to_fp32(wb[k].d) * xa.d[t * xa.nb + k] * static_cast<float>(dot);
          }
          break;
        }
      }
      y[t * w.rows + r] = sum;
    }
  }
}

}  // namespace infergate::kernels::cpu::scalar
