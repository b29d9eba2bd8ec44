// Weight storage formats shared by every backend, with GGUF's byte layouts: F32, F16 (IEEE
// half) and Q8_0 (blocks of 32 weights: one F16 scale `d` and 32 signed bytes, value = d * q).
// A weight matrix is row-major: `rows` output features, each a contiguous row of `cols` inputs.
#pragma once

#include <cstdint>
#include <cstring>

namespace infergate::kernels {

enum class WeightType : std::uint8_t { f32, f16, q8_0 };

const char* weight_type_name(WeightType t);

inline constexpr int kQ8Block = 32;

struct BlockQ8_0 {  // GGUF/ggml layout, 34 bytes, no padding
  std::uint16_t d;  // F16 scale
  std::int8_t qs[kQ8Block];
};
static_assert(sizeof(BlockQ8_0) == 34);

// Bytes one row of `cols` weights takes; cols must be a multiple of 32 for Q8_0.
inline std::int64_t row_bytes(WeightType t, std::int64_t cols) {
  switch (t) {
    case WeightType::f32: return cols * 4;
    case WeightType::f16: return cols * 2;
    case WeightType::q8_0: return cols / kQ8Block * static_cast<std::int64_t>(sizeof(BlockQ8_0));
  }
  return 0;
}

struct WeightMatrix {
  WeightType type = WeightType::f32;
  const void* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  // Optional: the same Q8_0 weights repacked for the AMX kernel (cpu::pack_q8_0_amx). Products
  // on that kernel read it instead of the rows above, with the same results; others ignore it.
  const std::uint8_t* packed = nullptr;
  const std::uint8_t* row(std::int64_t r) const {
    return static_cast<const std::uint8_t*>(data) + r * row_bytes(type, cols);
  }
};

// IEEE 754 half <-> single, exact for every half (subnormals, inf, NaN); float -> half rounds to
// nearest even.
float fp16_to_fp32(std::uint16_t h);
std::uint16_t fp32_to_fp16(float f);

// One row of weights as floats (used for embedding lookups and by reference code).
void dequantize_row(WeightType t, const void* row, std::int64_t cols, float* out);
// Quantizes n floats (n a multiple of 32) into Q8_0 blocks, the way GGUF writers do:
// d = max|x| / 127, q = round(x / d).
void quantize_row_q8_0(const float* x, std::int64_t n, BlockQ8_0* out);

}  // namespace infergate::kernels
