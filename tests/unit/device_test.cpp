// Device choice: parsing engine.device and resolving it against the machine's CPU and GPUs.
#include "infergate/engine/device.h"

#include <string>

#include <gtest/gtest.h>

namespace infergate::engine {
namespace {

kernels::CpuFeatures avx2_cpu() {
  kernels::CpuFeatures cpu;
  cpu.avx2 = true;
  cpu.fma = true;
  cpu.hardware_threads = 8;
  return cpu;
}

kernels::GpuInventory one_h100() {
  kernels::GpuInventory inv;
  inv.built_with_cuda = true;
  kernels::GpuDevice d;
  d.index = 0;
  d.name = "NVIDIA H100 80GB HBM3";
  d.total_memory_bytes = std::size_t{85520809984};  // 79.6 GiB
  d.compute_major = 9;
  d.compute_minor = 0;
  inv.devices.push_back(d);
  return inv;
}

kernels::GpuInventory no_gpu(std::string note) {
  kernels::GpuInventory inv;
  inv.note = std::move(note);
  return inv;
}

template <class F>
std::string device_error(F&& f) {
  try {
    f();
  } catch (const DeviceError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a DeviceError";
  return {};
}

TEST(DeviceTest, ParseDeviceChoice) {
  EXPECT_EQ(parse_device_choice("auto"), DeviceChoice::automatic);
  EXPECT_EQ(parse_device_choice("cpu"), DeviceChoice::cpu);
  EXPECT_EQ(parse_device_choice("cuda"), DeviceChoice::cuda);
}

TEST(DeviceTest, ParseDeviceChoiceRejectsOtherValues) {
  EXPECT_EQ(device_error([] { parse_device_choice("gpu"); }),
            "unknown device 'gpu': expected auto, cpu or cuda");
  for (const char* bad : {"", "CUDA", "Auto", "cuda:0", " cpu", "cpu "})
    EXPECT_THROW(parse_device_choice(bad), DeviceError) << '"' << bad << '"';
}

TEST(DeviceTest, CpuChoiceWithGpuPresentIsCpu) {
  ResolvedDevice d = resolve_device(DeviceChoice::cpu, avx2_cpu(), one_h100());
  EXPECT_FALSE(d.cuda);
  EXPECT_EQ(d.gpu_index, -1);
  EXPECT_EQ(d.description, "cpu (avx2, 8 hardware threads)");
}

TEST(DeviceTest, AutoWithGpuIsCuda) {
  ResolvedDevice d = resolve_device(DeviceChoice::automatic, avx2_cpu(), one_h100());
  EXPECT_TRUE(d.cuda);
  EXPECT_EQ(d.gpu_index, 0);
  EXPECT_NE(d.description.find("NVIDIA H100 80GB HBM3"), std::string::npos) << d.description;
  EXPECT_EQ(d.description, "cuda:0 NVIDIA H100 80GB HBM3 (79 GiB, sm_90)");
}

TEST(DeviceTest, CudaWithGpuIsCudaOnTheFirstDevice) {
  kernels::GpuInventory inv = one_h100();
  kernels::GpuDevice second;
  second.index = 1;
  second.name = "NVIDIA L4";
  second.total_memory_bytes = std::size_t{24} << 30;
  second.compute_major = 8;
  second.compute_minor = 9;
  inv.devices.push_back(second);
  ResolvedDevice d = resolve_device(DeviceChoice::cuda, avx2_cpu(), inv);
  EXPECT_TRUE(d.cuda);
  EXPECT_EQ(d.gpu_index, 0);
  EXPECT_EQ(d.description, "cuda:0 NVIDIA H100 80GB HBM3 (79 GiB, sm_90)");
}

TEST(DeviceTest, CudaWithoutGpuThrowsWithTheInventoryNote) {
  const std::string note = "built without CUDA support (INFERGATE_CUDA=OFF)";
  std::string msg =
      device_error([&] { resolve_device(DeviceChoice::cuda, avx2_cpu(), no_gpu(note)); });
  EXPECT_NE(msg.find(note), std::string::npos) << msg;
  EXPECT_EQ(msg, "engine.device = cuda but no GPU can be used: " + note +
                     "; set engine.device = auto or cpu to run on the CPU");
}

TEST(DeviceTest, CudaWithoutGpuAndWithoutNoteSaysNoDeviceFound) {
  std::string msg =
      device_error([] { resolve_device(DeviceChoice::cuda, avx2_cpu(), no_gpu("")); });
  EXPECT_EQ(msg,
            "engine.device = cuda but no GPU can be used: no device found; set engine.device = "
            "auto or cpu to run on the CPU");
}

TEST(DeviceTest, AutoWithoutGpuIsCpu) {
  ResolvedDevice d =
      resolve_device(DeviceChoice::automatic, avx2_cpu(), no_gpu("no CUDA driver found"));
  EXPECT_FALSE(d.cuda);
  EXPECT_EQ(d.gpu_index, -1);
  EXPECT_EQ(d.description, "cpu (avx2, 8 hardware threads)");
}

TEST(DeviceTest, CpuDescriptionNamesTheBestIsa) {
  kernels::CpuFeatures cpu;  // nothing: scalar, 1 thread
  EXPECT_EQ(resolve_device(DeviceChoice::cpu, cpu, no_gpu("")).description,
            "cpu (scalar, 1 hardware threads)");
  cpu.avx2 = true;  // avx2 without fma is not enough
  EXPECT_EQ(cpu.best_isa(), "scalar");
  cpu.fma = true;
  EXPECT_EQ(cpu.best_isa(), "avx2");
  cpu.avx512f = true;
  cpu.avx512bw = true;
  EXPECT_EQ(cpu.best_isa(), "avx2");  // avx512 needs f, bw and vl
  cpu.avx512vl = true;
  cpu.hardware_threads = 64;
  EXPECT_EQ(cpu.best_isa(), "avx512");
  EXPECT_EQ(resolve_device(DeviceChoice::automatic, cpu, no_gpu("")).description,
            "cpu (avx512, 64 hardware threads)");
}

}  // namespace
}  // namespace infergate::engine
