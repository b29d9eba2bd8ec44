// Lists the CUDA devices the runtime can see. No device or no driver is not an error: the
// engine then runs on the CPU, and the note says why.
#include <cuda_runtime.h>

#include "infergate/kernels/devices.h"

namespace infergate::kernels {

GpuInventory detect_gpus() {
  GpuInventory inv;
  inv.built_with_cuda = true;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    inv.note = std::string("no usable CUDA device: ") + cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error
    return inv;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    GpuDevice d;
    d.index = i;
    d.name = prop.name;
    d.total_memory_bytes = prop.totalGlobalMem;
    d.compute_major = prop.major;
    d.compute_minor = prop.minor;
    inv.devices.push_back(d);
  }
  if (inv.devices.empty()) inv.note = "CUDA runtime reports no devices";
  return inv;
}

}  // namespace infergate::kernels
