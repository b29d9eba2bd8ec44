// The Q8_0 kernels behind matmul (launchers only; see q8_0.cu).
#pragma once

#include <cstdint>

#include "infergate/kernels/cuda/device_matrix.h"

namespace infergate::kernels::cuda::detail {

// y[t * w.rows + r] = sum_c w[r][c] * x[t * w.cols + c], any n_tokens (8 per launch).
void q8_0_matmul_direct(const DeviceMatrix& w, const float* x, std::int64_t n_tokens, float* y, Stream stream);

}  // namespace infergate::kernels::cuda::detail
