// A weight matrix in device memory, in the layout the CUDA kernels read: F32 and F16 as in
// GGUF (row-major), Q8_0 split into two arrays so that every load is aligned: the signed bytes
// of all blocks (rows * cols, row-major) and one F16 scale per 32 of them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "infergate/kernels/cuda/runtime.h"
#include "infergate/kernels/weights.h"

namespace infergate::kernels::cuda {

struct DeviceMatrix {
  WeightType type = WeightType::f32;
  const void* data = nullptr;             // float, half or int8 values, rows * cols
  const std::uint16_t* scales = nullptr;  // q8_0: rows * cols / 32 F16 scales
  std::int64_t rows = 0;
  std::int64_t cols = 0;
};

// Device bytes upload() writes for `w` (a multiple of 256).
std::size_t device_bytes(const WeightMatrix& w);
// Copies `w` (host memory, GGUF layout) to `dst`, which holds device_bytes(w) bytes; blocks
// until the copy is done. Throws std::invalid_argument for a Q8_0 row length not a multiple of 32.
DeviceMatrix upload(const WeightMatrix& w, void* dst);
// The same for a vector of floats (norm weights); returns the device pointer (dst).
std::size_t device_bytes_f32(std::int64_t n);
const float* upload_f32(const float* src, std::int64_t n, void* dst);

}  // namespace infergate::kernels::cuda
