// Error checking shared by the CUDA kernels: every runtime and cuBLAS call goes through
// CUDA_CHECK / CUBLAS_CHECK, which throw std::runtime_error with the file, the line, the call
// and the library's own error string; CUDA_CHECK_LAUNCH follows every kernel launch.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace infergate::kernels::cuda::detail {

[[noreturn]] inline void throw_cuda(cudaError_t err, const char* call, const char* file, int line) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + call + " failed: " +
                           cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

[[noreturn]] inline void throw_cublas(cublasStatus_t st, const char* call, const char* file, int line) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + call + " failed: " +
                           cublasGetStatusName(st) + " (" + cublasGetStatusString(st) + ")");
}

// A launcher's argument that is wrong: a programming error in the caller, reported with where.
[[noreturn]] inline void throw_arg(const char* what, const char* file, int line) {
  throw std::invalid_argument(std::string(file) + ":" + std::to_string(line) + ": " + what);
}

// Blocks of `threads` covering n items (n > 0), checked against the grid's x limit.
inline unsigned grid_for(std::int64_t n, unsigned threads) {
  const std::int64_t blocks = (n + threads - 1) / threads;
  if (blocks > 0x7fffffff) throw std::invalid_argument("CUDA launch of " + std::to_string(n) + " items is too large");
  return static_cast<unsigned>(blocks);
}

}  // namespace infergate::kernels::cuda::detail

#define CUDA_CHECK(call)                                                                               \
  do {                                                                                                 \
    const cudaError_t ig_err_ = (call);                                                                \
    if (ig_err_ != cudaSuccess) ::infergate::kernels::cuda::detail::throw_cuda(ig_err_, #call, __FILE__, __LINE__); \
  } while (0)

#define CUBLAS_CHECK(call)                                                                             \
  do {                                                                                                 \
    const cublasStatus_t ig_st_ = (call);                                                              \
    if (ig_st_ != CUBLAS_STATUS_SUCCESS)                                                               \
      ::infergate::kernels::cuda::detail::throw_cublas(ig_st_, #call, __FILE__, __LINE__);             \
  } while (0)

// After a <<<...>>> launch: a bad configuration is reported here; faults inside the kernel
// surface at the next synchronizing call, which is checked too.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

#define CUDA_REQUIRE(cond, what)                                                                      \
  do {                                                                                                 \
    if (!(cond)) ::infergate::kernels::cuda::detail::throw_arg(what, __FILE__, __LINE__);            \
  } while (0)
