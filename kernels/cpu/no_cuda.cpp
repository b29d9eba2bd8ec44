#include "infergate/kernels/devices.h"

namespace infergate::kernels {

GpuInventory detect_gpus() {
  GpuInventory inv;
  inv.note = "built without CUDA (INFERGATE_CUDA=OFF or nvcc not found at build time)";
  return inv;
}

}  // namespace infergate::kernels
