// What compute the machine offers: CPU SIMD features (chosen at run time by the CPU kernels)
// and CUDA devices (empty when built without CUDA or when no driver/device is present).
// No CUDA header here: this is included by code that is not compiled by nvcc.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace infergate::kernels {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512vnni = false;  // byte dot products (VPDPBUSD); the Q8_0 kernels use it
  // Intel's tile unit with int8 products, and the kernel's permission for this process to use
  // its state (asked for by detect_cpu); the Q8_0 kernels use it when present.
  bool amx_int8 = false;
  unsigned hardware_threads = 1;
  std::string best_isa() const;  // "avx512", "avx2" or "scalar"
};

CpuFeatures detect_cpu();

struct GpuDevice {
  int index = 0;
  std::string name;
  std::size_t total_memory_bytes = 0;
  int compute_major = 0;
  int compute_minor = 0;
};

struct GpuInventory {
  bool built_with_cuda = false;
  std::vector<GpuDevice> devices;
  std::string note;  // why the list is empty, when it is
};

GpuInventory detect_gpus();

}  // namespace infergate::kernels
