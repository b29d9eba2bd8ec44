// Warp and block sums used by several kernels.
#pragma once

namespace infergate::kernels::cuda {

__device__ __forceinline__ float warp_sum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// The sum of v over a block of Threads threads (a multiple of 32), returned to every thread.
// `partial` is shared memory of Threads / 32 floats. Every thread of the block must call it.
template <unsigned Threads>
__device__ __forceinline__ float block_sum(float v, float* partial) {
  static_assert(Threads % 32 == 0 && Threads <= 1024, "block_sum: whole warps, at most 1024 threads");
  v = warp_sum(v);
  const unsigned warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  float total = 0.0f;
  for (unsigned w = 0; w < Threads / 32; ++w) total += partial[w];
  __syncthreads();  // partial may be reused by the caller after this
  return total;
}

}  // namespace infergate::kernels::cuda
