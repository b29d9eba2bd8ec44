// The residual connection on the device: x[i] += y[i].
#pragma once

#include <cstdint>

#include "infergate/kernels/cuda/runtime.h"

namespace infergate::kernels::cuda {

void add_inplace(float* x, const float* y, std::int64_t n, Stream stream);

}  // namespace infergate::kernels::cuda
