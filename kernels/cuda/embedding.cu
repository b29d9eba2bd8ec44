// Embedding lookup: one block per token, its threads stride over the row and convert each
// weight to float (a Q8_0 weight is its block's scale times the signed byte).
#include <cuda_fp16.h>

#include "check.cuh"
#include "infergate/kernels/cuda/embedding.h"

namespace infergate::kernels::cuda {

static __global__ void embedding_kernel(WeightType type, const void* __restrict__ data,
                                        const std::uint16_t* __restrict__ scales, std::int64_t rows,
                                        std::int64_t cols, const std::int32_t* __restrict__ ids,
                                        float* __restrict__ out) {
  const std::int64_t t = blockIdx.x;
  const std::int32_t id = ids[t];
  float* o = out + t * cols;
  const bool valid = id >= 0 && id < rows;
  const std::int64_t base = static_cast<std::int64_t>(valid ? id : 0) * cols;
  for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    float v = 0.0f;
    if (valid) {
      switch (type) {
        case WeightType::f32: v = static_cast<const float*>(data)[base + c]; break;
        case WeightType::f16:
          v = __half2float(__ushort_as_half(static_cast<const unsigned short*>(data)[base + c]));
          break;
        case WeightType::q8_0:
          v = __half2float(__ushort_as_half(scales[(base + c) / 32])) *
              static_cast<float>(static_cast<const std::int8_t*>(data)[base + c]);
          break;
      }
    }
    o[c] = v;
  }
}

void embedding(const DeviceMatrix& table, const std::int32_t* ids, std::int64_t n, float* out, Stream stream) {
  if (n == 0) return;
  CUDA_REQUIRE(n > 0 && n <= 0x7fffffff, "embedding: token count out of range");
  CUDA_REQUIRE(table.data != nullptr && table.rows > 0 && table.cols > 0, "embedding: empty table");
  CUDA_REQUIRE(table.type != WeightType::q8_0 || (table.scales != nullptr && table.cols % 32 == 0),
               "embedding: Q8_0 table without scales or with a row length not a multiple of 32");
  embedding_kernel<<<static_cast<unsigned>(n), 256, 0, stream>>>(table.type, table.data, table.scales, table.rows,
                                                                table.cols, ids, out);
  CUDA_CHECK_LAUNCH();
}

}  // namespace infergate::kernels::cuda
