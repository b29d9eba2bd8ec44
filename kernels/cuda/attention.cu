// Paged attention. One block of 4 warps per (query token, query head); the head's query, already
// multiplied by the scale, sits in shared memory. The warps take turns over chunks of 32
// positions: in a chunk each lane scores one position (the whole dot product over head_dim,
// reading its key row through the block table), the warp folds the chunk into a running
// softmax (max m, sum l, rescaling the accumulator when m grows: "online softmax"), then walks
// the chunk's positions adding weight * value, each lane owning head_dim / 32 output elements.
// At the end the four warps' (m, l, accumulator) are merged in shared memory. Memory per block
// is bounded by head_dim, not by the context length.
#include <cmath>

#include "check.cuh"
#include "infergate/kernels/cuda/attention.h"
#include "reduce.cuh"

namespace infergate::kernels::cuda {

namespace {

constexpr int kWarps = 4;

__device__ __forceinline__ float warp_max(float v) {
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}

}  // namespace

// PerLane: output elements each lane owns (head_dim <= 32 * PerLane).
template <int PerLane>
static __global__ void __launch_bounds__(kWarps * 32)
    attention_kernel(const float* __restrict__ q, const float* __restrict__ k_cache, const float* __restrict__ v_cache,
                     PagedBatch b, std::int64_t n_head, std::int64_t n_head_kv, std::int64_t head_dim, float scale,
                     float* __restrict__ out) {
  constexpr int kMaxDim = PerLane * 32;
  __shared__ float s_q[kMaxDim];
  __shared__ float s_acc[kWarps][kMaxDim];
  __shared__ float s_m[kWarps], s_l[kWarps];

  const std::int64_t t = blockIdx.x / n_head, head = blockIdx.x % n_head;
  const std::int64_t kvh = head / (n_head / n_head_kv);
  const std::int64_t kv_dim = n_head_kv * head_dim;
  const int warp = static_cast<int>(threadIdx.x / 32), lane = static_cast<int>(threadIdx.x % 32);
  const std::int64_t n_pos = static_cast<std::int64_t>(b.token_pos[t]) + 1;
  const std::int32_t* table = b.blocks + b.seq_table[b.token_seq[t]];

  const float* qh = q + (t * n_head + head) * head_dim;
  for (std::int64_t d = threadIdx.x; d < head_dim; d += blockDim.x) s_q[d] = qh[d] * scale;
  __syncthreads();

  float acc[PerLane];
#pragma unroll
  for (int j = 0; j < PerLane; ++j) acc[j] = 0.0f;
  float m = -INFINITY, l = 0.0f;

  for (std::int64_t base = static_cast<std::int64_t>(warp) * 32; base < n_pos; base += kWarps * 32) {
    const std::int64_t p = base + lane;
    const bool live = p < n_pos;
    float s = -INFINITY;
    std::int64_t row = 0;
    if (live) {
      row = static_cast<std::int64_t>(table[p / b.block_size]) * b.block_size + p % b.block_size;
      const float* kp = k_cache + row * kv_dim + kvh * head_dim;
      float dot = 0.0f;
      for (std::int64_t d = 0; d < head_dim; ++d) dot += s_q[d] * kp[d];
      s = dot;
    }
    // base < n_pos, so lane 0 is live and the chunk's maximum is finite.
    const float m_new = fmaxf(m, warp_max(s));
    const float corr = expf(m - m_new);  // 0 on the first chunk (m = -inf)
    const float w = live ? expf(s - m_new) : 0.0f;
    l = l * corr + warp_sum(w);
#pragma unroll
    for (int j = 0; j < PerLane; ++j) acc[j] *= corr;
    const int n_live = static_cast<int>(n_pos - base < 32 ? n_pos - base : 32);  // the same in every lane
    for (int i = 0; i < n_live; ++i) {
      const float wi = __shfl_sync(0xffffffffu, w, i);
      const long long ri = __shfl_sync(0xffffffffu, static_cast<long long>(row), i);
      const float* vp = v_cache + static_cast<std::int64_t>(ri) * kv_dim + kvh * head_dim;
#pragma unroll
      for (int j = 0; j < PerLane; ++j) {
        const std::int64_t d = lane + 32 * j;
        if (d < head_dim) acc[j] += wi * vp[d];
      }
    }
    m = m_new;
  }

#pragma unroll
  for (int j = 0; j < PerLane; ++j) s_acc[warp][lane + 32 * j] = acc[j];
  if (lane == 0) {
    s_m[warp] = m;
    s_l[warp] = l;
  }
  __syncthreads();
  // Warp 0 always saw position 0, so M is finite; a warp that saw nothing has m = -inf, l = 0.
  float M = -INFINITY;
  for (int w = 0; w < kWarps; ++w) M = fmaxf(M, s_m[w]);
  float L = 0.0f, f[kWarps];
  for (int w = 0; w < kWarps; ++w) {
    f[w] = expf(s_m[w] - M);
    L += s_l[w] * f[w];
  }
  float* oh = out + (t * n_head + head) * head_dim;
  for (std::int64_t d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float o = 0.0f;
    for (int w = 0; w < kWarps; ++w) o += s_acc[w][d] * f[w];
    oh[d] = o / L;
  }
}

void attention(const float* q, const float* k_cache, const float* v_cache, const PagedBatch& batch,
               std::int64_t n_head, std::int64_t n_head_kv, std::int64_t head_dim, float scale, float* out,
               Stream stream) {
  CUDA_REQUIRE(n_head > 0 && n_head_kv > 0 && n_head % n_head_kv == 0, "attention: n_head must be a multiple of n_head_kv");
  CUDA_REQUIRE(head_dim > 0 && head_dim <= kMaxAttentionHeadDim, "attention: head_dim must be in 1..256");
  CUDA_REQUIRE(batch.block_size > 0 && batch.n_tokens >= 0, "attention: bad batch");
  if (batch.n_tokens == 0) return;
  CUDA_REQUIRE(batch.n_tokens * n_head <= 0x7fffffff, "attention: too many (token, head) pairs");
  const auto blocks = static_cast<unsigned>(batch.n_tokens * n_head);
  constexpr unsigned kThreads = kWarps * 32;
  if (head_dim <= 64) {
    attention_kernel<2><<<blocks, kThreads, 0, stream>>>(q, k_cache, v_cache, batch, n_head, n_head_kv, head_dim, scale, out);
  } else if (head_dim <= 128) {
    attention_kernel<4><<<blocks, kThreads, 0, stream>>>(q, k_cache, v_cache, batch, n_head, n_head_kv, head_dim, scale, out);
  } else {
    attention_kernel<8><<<blocks, kThreads, 0, stream>>>(q, k_cache, v_cache, batch, n_head, n_head_kv, head_dim, scale, out);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace infergate::kernels::cuda
