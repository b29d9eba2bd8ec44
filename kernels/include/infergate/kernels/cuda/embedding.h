// Token embedding lookup on the device: out[t] = table row ids[t] as floats (F32, F16 or Q8_0).
#pragma once

#include <cstdint>

#include "infergate/kernels/cuda/device_matrix.h"

namespace infergate::kernels::cuda {

// ids: n device int32 token ids; out: n * table.cols floats. An id outside [0, table.rows)
// gives a row of zeros (callers validate ids on the host first).
void embedding(const DeviceMatrix& table, const std::int32_t* ids, std::int64_t n, float* out, Stream stream);

}  // namespace infergate::kernels::cuda
