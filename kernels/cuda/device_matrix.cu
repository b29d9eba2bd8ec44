// Weight upload. Q8_0 blocks are 34 bytes in GGUF (a 2-byte scale, then 32 bytes), so their
// quants are not 4-byte aligned; they are split on the host into a quant array and a scale
// array once, at load, and the kernels read both with aligned vector loads.
#include <cstring>
#include <vector>

#include "check.cuh"
#include "infergate/kernels/cuda/device_matrix.h"

namespace infergate::kernels::cuda {

namespace {

constexpr std::size_t kAlign = 256;
std::size_t round_up(std::size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

std::size_t q8_quant_bytes(const WeightMatrix& w) {
  return round_up(static_cast<std::size_t>(w.rows) * static_cast<std::size_t>(w.cols));
}

// cudaMemcpy from pageable memory may return once the data is staged, before the DMA into
// device memory is done, and it runs on the legacy default stream, which the engine's
// non-blocking stream does not wait for. Wait here so that "uploaded" means "readable by any
// stream".
void wait_for_copies() { CUDA_CHECK(cudaDeviceSynchronize()); }

}  // namespace

std::size_t device_bytes(const WeightMatrix& w) {
  const auto n = static_cast<std::size_t>(w.rows) * static_cast<std::size_t>(w.cols);
  switch (w.type) {
    case WeightType::f32: return round_up(n * 4);
    case WeightType::f16: return round_up(n * 2);
    case WeightType::q8_0: return q8_quant_bytes(w) + round_up(n / kQ8Block * 2);
  }
  return 0;
}

DeviceMatrix upload(const WeightMatrix& w, void* dst) {
  CUDA_REQUIRE(w.rows > 0 && w.cols > 0 && w.data != nullptr && dst != nullptr, "upload of an empty matrix");
  DeviceMatrix m;
  m.type = w.type;
  m.rows = w.rows;
  m.cols = w.cols;
  m.data = dst;
  const auto n = static_cast<std::size_t>(w.rows) * static_cast<std::size_t>(w.cols);
  if (w.type != WeightType::q8_0) {
    CUDA_CHECK(cudaMemcpy(dst, w.data, static_cast<std::size_t>(row_bytes(w.type, w.cols)) * static_cast<std::size_t>(w.rows),
                          cudaMemcpyHostToDevice));
    wait_for_copies();
    return m;
  }
  CUDA_REQUIRE(w.cols % kQ8Block == 0, "Q8_0 row length must be a multiple of 32");
  const std::size_t n_blocks = n / kQ8Block;
  std::vector<std::int8_t> quants(n);
  std::vector<std::uint16_t> scales(n_blocks);
  const auto* src = static_cast<const std::uint8_t*>(w.data);
  for (std::size_t b = 0; b < n_blocks; ++b) {
    BlockQ8_0 blk;
    std::memcpy(&blk, src + b * sizeof(BlockQ8_0), sizeof(BlockQ8_0));
    scales[b] = blk.d;
    std::memcpy(&quants[b * kQ8Block], blk.qs, kQ8Block);
  }
  auto* scale_dst = static_cast<std::uint8_t*>(dst) + q8_quant_bytes(w);
  CUDA_CHECK(cudaMemcpy(dst, quants.data(), n, cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(scale_dst, scales.data(), n_blocks * 2, cudaMemcpyHostToDevice));
  wait_for_copies();
  m.scales = reinterpret_cast<const std::uint16_t*>(scale_dst);
  return m;
}

std::size_t device_bytes_f32(std::int64_t n) { return round_up(static_cast<std::size_t>(n) * 4); }

const float* upload_f32(const float* src, std::int64_t n, void* dst) {
  CUDA_REQUIRE(n > 0 && src != nullptr && dst != nullptr, "upload of an empty vector");
  CUDA_CHECK(cudaMemcpy(dst, src, static_cast<std::size_t>(n) * 4, cudaMemcpyHostToDevice));
  wait_for_copies();
  return static_cast<const float*>(dst);
}

}  // namespace infergate::kernels::cuda
