#include "infergate/engine/device.h"

namespace infergate::engine {

DeviceChoice parse_device_choice(std::string_view s) {
  if (s == "auto") return DeviceChoice::automatic;
  if (s == "cpu") return DeviceChoice::cpu;
  if (s == "cuda") return DeviceChoice::cuda;
  throw DeviceError("unknown device '" + std::string(s) + "': expected auto, cpu or cuda");
}

ResolvedDevice resolve_device(DeviceChoice choice, const kernels::CpuFeatures& cpu,
                              const kernels::GpuInventory& gpus) {
  ResolvedDevice r;
  if (choice != DeviceChoice::cpu && !gpus.devices.empty()) {
    const auto& d = gpus.devices.front();
    r.cuda = true;
    r.gpu_index = d.index;
    r.description = "cuda:" + std::to_string(d.index) + " " + d.name + " (" +
                    std::to_string(d.total_memory_bytes >> 30) + " GiB, sm_" +
                    std::to_string(d.compute_major) + std::to_string(d.compute_minor) + ")";
    return r;
  }
  if (choice == DeviceChoice::cuda)
    throw DeviceError("engine.device = cuda but no GPU can be used: " +
                      (gpus.note.empty() ? std::string("no device found") : gpus.note) +
                      "; set engine.device = auto or cpu to run on the CPU");
  r.description = "cpu (" + cpu.best_isa() + ", " + std::to_string(cpu.hardware_threads) +
                  " hardware threads)";
  return r;
}

}  // namespace infergate::engine
