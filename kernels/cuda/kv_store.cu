// KV store: one thread per (token, element); writes the key and the value of that element.
#include "check.cuh"
#include "infergate/kernels/cuda/kv_store.h"

namespace infergate::kernels::cuda {

static __global__ void kv_store_kernel(const float* __restrict__ k, const float* __restrict__ v, std::int64_t n_tokens,
                                       std::int64_t kv_dim, const std::int32_t* __restrict__ slots,
                                       float* __restrict__ k_cache, float* __restrict__ v_cache) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n_tokens * kv_dim) return;
  const std::int64_t t = i / kv_dim, e = i % kv_dim;
  const std::int64_t dst = static_cast<std::int64_t>(slots[t]) * kv_dim + e;
  k_cache[dst] = k[i];
  v_cache[dst] = v[i];
}

void kv_store(const float* k, const float* v, std::int64_t n_tokens, std::int64_t kv_dim, const std::int32_t* slots,
              float* k_cache, float* v_cache, Stream stream) {
  CUDA_REQUIRE(n_tokens >= 0 && kv_dim > 0, "kv_store: bad shape");
  if (n_tokens == 0) return;
  constexpr unsigned kThreads = 256;
  kv_store_kernel<<<detail::grid_for(n_tokens * kv_dim, kThreads), kThreads, 0, stream>>>(k, v, n_tokens, kv_dim, slots,
                                                                                         k_cache, v_cache);
  CUDA_CHECK_LAUNCH();
}

}  // namespace infergate::kernels::cuda
