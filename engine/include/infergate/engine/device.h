// Which device a model runs on: `engine.device = auto | cpu | cuda`. auto takes a GPU when one
// is usable and the CPU otherwise; cuda without a usable GPU is a startup error that says why.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "infergate/kernels/devices.h"

namespace infergate::engine {

enum class DeviceChoice { automatic, cpu, cuda };

struct ResolvedDevice {
  bool cuda = false;
  int gpu_index = -1;
  std::string description;  // "cpu (avx2, 2 threads)" or "cuda:0 NVIDIA H100 (79 GiB, sm_90)"
};

class DeviceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses "auto" | "cpu" | "cuda"; throws DeviceError naming the accepted values.
DeviceChoice parse_device_choice(std::string_view s);

ResolvedDevice resolve_device(DeviceChoice choice, const kernels::CpuFeatures& cpu,
                              const kernels::GpuInventory& gpus);

}  // namespace infergate::engine
