#include <algorithm>
#include <bit>
#include <cmath>

#include "infergate/kernels/weights.h"

namespace infergate::kernels {

const char* weight_type_name(WeightType t) {
  switch (t) {
    case WeightType::f32: return "F32";
    case WeightType::f16: return "F16";
    case WeightType::q8_0: return "Q8_0";
  }
  return "?";
}

float fp16_to_fp32(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exp = (h >> 10) & 0x1fu;
  std::uint32_t mant = h & 0x3ffu;
  std::uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf / NaN
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal half: normalise
    int e = -1;
    do {
      mant <<= 1;
      ++e;
    } while ((mant & 0x400u) == 0);
    bits = sign | static_cast<std::uint32_t>(112 - e) << 23 | ((mant & 0x3ffu) << 13);
  }
  return std::bit_cast<float>(bits);
}

std::uint16_t fp32_to_fp16(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) {  // inf or NaN (keep NaN quiet and non-zero)
    return static_cast<std::uint16_t>(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u));
  }
  if (ax >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // rounds to inf
  if (ax < 0x38800000u) {  // result is subnormal or zero: scale so the integer part is the mantissa
    const float scaled = std::bit_cast<float>(ax) * 16777216.0f;  // 2^24
    return static_cast<std::uint16_t>(sign | static_cast<std::uint16_t>(std::nearbyint(scaled)));
  }
  const std::uint32_t mant = ax & 0x7fffffu;
  std::uint32_t h = ((ax >> 23) - 112) << 10 | (mant >> 13);
  const std::uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // nearest even; may carry into exp
  return static_cast<std::uint16_t>(sign | h);
}

void dequantize_row(WeightType t, const void* row, std::int64_t cols, float* out) {
  switch (t) {
    case WeightType::f32:
      std::memcpy(out, row, static_cast<std::size_t>(cols) * 4);
      return;
    case WeightType::f16: {
      const auto* h = static_cast<const std::uint16_t*>(row);
      for (std::int64_t i = 0; i < cols; ++i) out[i] = fp16_to_fp32(h[i]);
      return;
    }
    case WeightType::q8_0: {
      const auto* b = static_cast<const BlockQ8_0*>(row);
      for (std::int64_t k = 0; k < cols / kQ8Block; ++k) {
        const float d = fp16_to_fp32(b[k].d);
        for (int i = 0; i < kQ8Block; ++i) out[k * kQ8Block + i] = d * b[k].qs[i];
      }
      return;
    }
  }
}

void quantize_row_q8_0(const float* x, std::int64_t n, BlockQ8_0* out) {
  for (std::int64_t k = 0; k < n / kQ8Block; ++k) {
    const float* v = x + k * kQ8Block;
    float amax = 0;
    for (int i = 0; i < kQ8Block; ++i) amax = std::max(amax, std::fabs(v[i]));
    const float d = amax / 127.0f;
    const float inv = d != 0 ? 1.0f / d : 0.0f;
    out[k].d = fp32_to_fp16(d);
    for (int i = 0; i < kQ8Block; ++i) {
      out[k].qs[i] = static_cast<std::int8_t>(std::clamp(std::lround(v[i] * inv), -127L, 127L));
    }
  }
}

}  // namespace infergate::kernels
