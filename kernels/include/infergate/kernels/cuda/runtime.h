// The CUDA runtime as the engine needs it, in plain C++: device memory and pinned host memory
// owned by RAII buffers, a stream, a cuBLAS handle bound to that stream, and copies on it.
// No CUDA header here (this is included by code g++ compiles); streams and cuBLAS handles are
// the runtime's own opaque pointer types, declared ahead. Every failing CUDA or cuBLAS call
// throws std::runtime_error naming the file, the line and the runtime's error string.
// Objects are not thread-safe; one engine thread uses them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

struct CUstream_st;    // cudaStream_t is CUstream_st*
struct cublasContext;  // cublasHandle_t is cublasContext*

namespace infergate::kernels::cuda {

using Stream = CUstream_st*;

// Makes `index` the calling thread's current device (throws when it cannot be used).
void set_device(int index);

// Memory from one CUDA allocation, freed on destruction: device memory (cudaMalloc, 256-byte
// aligned) or page-locked host memory (cudaMallocHost, so that copies on a stream are truly
// asynchronous).
enum class MemoryKind { device, pinned_host };

template <MemoryKind Kind>
class CudaBuffer {
 public:
  CudaBuffer() = default;
  explicit CudaBuffer(std::size_t bytes);
  ~CudaBuffer();
  CudaBuffer(CudaBuffer&& o) noexcept;
  CudaBuffer& operator=(CudaBuffer&& o) noexcept;
  CudaBuffer(const CudaBuffer&) = delete;
  CudaBuffer& operator=(const CudaBuffer&) = delete;

  void* data() const { return p_; }
  std::size_t bytes() const { return bytes_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(p_);
  }

 private:
  void* p_ = nullptr;
  std::size_t bytes_ = 0;
};

using DeviceBuffer = CudaBuffer<MemoryKind::device>;
using PinnedBuffer = CudaBuffer<MemoryKind::pinned_host>;
extern template class CudaBuffer<MemoryKind::device>;
extern template class CudaBuffer<MemoryKind::pinned_host>;

// A non-blocking stream on the current device.
class StreamOwner {
 public:
  StreamOwner();
  ~StreamOwner();
  StreamOwner(const StreamOwner&) = delete;
  StreamOwner& operator=(const StreamOwner&) = delete;
  Stream get() const { return s_; }
  void synchronize() const;

 private:
  Stream s_ = nullptr;
};

// A cuBLAS handle whose work goes to `stream`, with its own workspace allocated here once (so
// that no product allocates device memory while the engine runs).
class Blas {
 public:
  explicit Blas(Stream stream);
  ~Blas();
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;
  cublasContext* handle() const { return h_; }
  Stream stream() const { return stream_; }

 private:
  cublasContext* h_ = nullptr;
  Stream stream_ = nullptr;
  DeviceBuffer workspace_;
};

// Copies on `stream` (asynchronous with respect to the host when the host side is pinned).
void copy_to_device(void* dst, const void* src, std::size_t bytes, Stream stream);
void copy_to_host(void* dst, const void* src, std::size_t bytes, Stream stream);
void copy_on_device(void* dst, const void* src, std::size_t bytes, Stream stream);
void fill_zero(void* dst, std::size_t bytes, Stream stream);
// Throws if a kernel launched earlier on the stream failed (after waiting for it).
void synchronize(Stream stream);

// Device memory read bandwidth in GB/s (1e9 bytes/s): the best of `passes` runs of a kernel
// that reads `bytes` once (and writes a few bytes), on the current device.
double measure_read_bandwidth_gbs(std::size_t bytes, int passes);

}  // namespace infergate::kernels::cuda
