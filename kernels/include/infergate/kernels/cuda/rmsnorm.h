// RMSNorm on the device: out[i] = x[src] / sqrt(mean(x[src]^2) + eps) * weight, per row.
#pragma once

#include <cstdint>

#include "infergate/kernels/cuda/runtime.h"

namespace infergate::kernels::cuda {

// rows output rows of n floats. Output row i normalizes input row rows_index[i] when rows_index
// (device int32, rows entries) is given, else input row i (this is how the final norm picks the
// last token of each sequence that wants logits). x and out must not overlap.
void rmsnorm(const float* x, const float* weight, std::int64_t rows, std::int64_t n, float eps,
             const std::int32_t* rows_index, float* out, Stream stream);

}  // namespace infergate::kernels::cuda
