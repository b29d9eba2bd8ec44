// SwiGLU's element-wise step on the device: out[i] = silu(gate[i]) * up[i].
#pragma once

#include <cstdint>

#include "infergate/kernels/cuda/runtime.h"

namespace infergate::kernels::cuda {

// out may be gate or up (in place).
void silu_mul(const float* gate, const float* up, std::int64_t n, float* out, Stream stream);

}  // namespace infergate::kernels::cuda
