// Without a usable GPU (or without CUDA in the build), asking for the CUDA backend fails at
// once with a message that says why and what to set instead.
#include <gtest/gtest.h>

#include <string>

#include "engine/engine_test_util.h"
#include "infergate/engine/backend.h"
#include "infergate/engine/device.h"
#include "infergate/kernels/devices.h"

namespace ie = infergate::engine;

TEST(CudaBackendUnavailable, FailsWithAClearMessageWithoutAGpu) {
  const auto inv = infergate::kernels::detect_gpus();
  if (!inv.devices.empty()) GTEST_SKIP() << "a GPU is present; the gpu tests cover the CUDA backend";
  std::string msg;
  try {
    ie::make_cuda_backend(ie::testing::toy_model(), {8, 16}, 0, 16);
    FAIL() << "make_cuda_backend succeeded without a GPU";
  } catch (const ie::DeviceError& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("set engine.device = auto or cpu"), std::string::npos) << msg;
  if (inv.built_with_cuda) {
    EXPECT_NE(msg.find("cannot use GPU 0"), std::string::npos) << msg;
    if (!inv.note.empty()) {
      EXPECT_NE(msg.find(inv.note), std::string::npos) << msg;
    }
  } else {
    EXPECT_NE(msg.find("this build has no CUDA backend"), std::string::npos) << msg;
  }
}
