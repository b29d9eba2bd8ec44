// Device memory, pinned memory, the stream and the cuBLAS handle behind runtime.h. Destructors
// do not throw: a failing cudaFree at teardown is ignored (the context is going away anyway).
#include <algorithm>
#include <utility>

#include "check.cuh"
#include "infergate/kernels/cuda/runtime.h"

namespace infergate::kernels::cuda {

void set_device(int index) { CUDA_CHECK(cudaSetDevice(index)); }

template <MemoryKind Kind>
CudaBuffer<Kind>::CudaBuffer(std::size_t bytes) : bytes_(bytes) {
  if (bytes == 0) return;
  if constexpr (Kind == MemoryKind::device) {
    CUDA_CHECK(cudaMalloc(&p_, bytes));
  } else {
    CUDA_CHECK(cudaMallocHost(&p_, bytes));
  }
}
template <MemoryKind Kind>
CudaBuffer<Kind>::~CudaBuffer() {
  if (p_ == nullptr) return;
  if constexpr (Kind == MemoryKind::device) {
    cudaFree(p_);
  } else {
    cudaFreeHost(p_);
  }
}
template <MemoryKind Kind>
CudaBuffer<Kind>::CudaBuffer(CudaBuffer&& o) noexcept
    : p_(std::exchange(o.p_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
template <MemoryKind Kind>
CudaBuffer<Kind>& CudaBuffer<Kind>::operator=(CudaBuffer&& o) noexcept {
  std::swap(p_, o.p_);
  std::swap(bytes_, o.bytes_);
  return *this;
}
template class CudaBuffer<MemoryKind::device>;
template class CudaBuffer<MemoryKind::pinned_host>;

StreamOwner::StreamOwner() { CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
StreamOwner::~StreamOwner() {
  if (s_ != nullptr) cudaStreamDestroy(s_);
}
void StreamOwner::synchronize() const { cuda::synchronize(s_); }

namespace {
// cuBLAS asks for up to 32 MiB on Hopper and 4 MiB before it; one size for all.
constexpr std::size_t kBlasWorkspace = std::size_t{32} << 20;
}  // namespace

Blas::Blas(Stream stream) : stream_(stream), workspace_(kBlasWorkspace) {
  CUBLAS_CHECK(cublasCreate(&h_));
  try {
    // cublasSetStream resets the workspace to cuBLAS's own pool, so the workspace comes after.
    CUBLAS_CHECK(cublasSetStream(h_, stream_));
    CUBLAS_CHECK(cublasSetWorkspace(h_, workspace_.data(), workspace_.bytes()));
  } catch (...) {
    cublasDestroy(h_);
    throw;
  }
}
Blas::~Blas() {
  if (h_ != nullptr) cublasDestroy(h_);
}

void copy_to_device(void* dst, const void* src, std::size_t bytes, Stream stream) {
  if (bytes > 0) CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream));
}
void copy_to_host(void* dst, const void* src, std::size_t bytes, Stream stream) {
  if (bytes > 0) CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream));
}
void copy_on_device(void* dst, const void* src, std::size_t bytes, Stream stream) {
  if (bytes > 0) CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
}
void fill_zero(void* dst, std::size_t bytes, Stream stream) {
  if (bytes > 0) CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, stream));
}
void synchronize(Stream stream) {
  CUDA_CHECK(cudaStreamSynchronize(stream));
  CUDA_CHECK(cudaGetLastError());
}

namespace {

// Each thread sums float4s at a grid stride; one float per block comes back so that the
// compiler cannot drop the loads.
static __global__ void read_kernel(const float4* __restrict__ p, std::size_t n, float* __restrict__ out) {
  float acc = 0.0f;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float4 v = p[i];
    acc += v.x + v.y + v.z + v.w;
  }
  if (acc == 1.2345f) out[blockIdx.x] = acc;  // almost never true; keeps the loads alive
}

}  // namespace

double measure_read_bandwidth_gbs(std::size_t bytes, int passes) {
  bytes = bytes / 16 * 16;
  CUDA_REQUIRE(bytes > 0 && passes > 0, "bandwidth measurement needs bytes and passes");
  DeviceBuffer buf(bytes), out(sizeof(float) * 4096);
  StreamOwner stream;
  CUDA_CHECK(cudaMemsetAsync(buf.data(), 0, bytes, stream.get()));
  int device = 0, sms = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const unsigned blocks = static_cast<unsigned>(std::min(4096, std::max(1, sms * 8)));
  cudaEvent_t start = nullptr, stop = nullptr;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  double best = 0;
  try {
    for (int i = 0; i <= passes; ++i) {  // pass 0 warms up
      CUDA_CHECK(cudaEventRecord(start, stream.get()));
      read_kernel<<<blocks, 256, 0, stream.get()>>>(buf.as<const float4>(), bytes / 16, out.as<float>());
      CUDA_CHECK_LAUNCH();
      CUDA_CHECK(cudaEventRecord(stop, stream.get()));
      CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0;
      CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
      if (i > 0 && ms > 0) best = std::max(best, static_cast<double>(bytes) / (ms * 1e-3) / 1e9);
    }
  } catch (...) {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    throw;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return best;
}

}  // namespace infergate::kernels::cuda
