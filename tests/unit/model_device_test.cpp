// Which device the gateway puts a model on at startup: engine.device = cuda without a usable GPU
// stops startup naming the model and the reason; cpu always runs on the CPU; with a GPU (and a
// CUDA build) cuda runs on it. ServedModel::device is what the log and /metrics report.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "infergate/engine/make_model.h"
#include "infergate/gateway/models.h"
#include "infergate/kernels/devices.h"

namespace infergate::gateway {
namespace {

class ModelDeviceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::filesystem::path(std::filesystem::temp_directory_path() /
                                     ("infergate-model-device-" + std::to_string(::getpid())));
    std::filesystem::create_directories(*dir_);
    engine::MakeModelOptions o;
    o.preset = *engine::find_preset("toy");
    engine::make_model(o, (*dir_ / "toy.gguf").string());
    o.type = kernels::WeightType::q8_0;
    engine::make_model(o, (*dir_ / "toy-q8.gguf").string());
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }

  static infra::Config config(const std::string& device, const std::string& file = "toy.gguf",
                              const std::string& kv_cache_type = "auto") {
    infra::Config cfg;
    cfg.engine.device = device;
    cfg.engine.kv_cache_type = kv_cache_type;
    cfg.engine.kv_blocks = 16;
    cfg.engine.max_batch_tokens = 32;
    cfg.engine.threads = 1;
    infra::ModelConfig mc;
    mc.name = "toy-chat";
    mc.file = (*dir_ / file).string();
    mc.tier = "small";
    cfg.models.push_back(mc);
    return cfg;
  }

  static std::filesystem::path* dir_;
};

std::filesystem::path* ModelDeviceTest::dir_ = nullptr;

TEST_F(ModelDeviceTest, CudaWithoutAGpuStopsStartupNamingTheModel) {
  const auto inv = kernels::detect_gpus();
  if (!inv.devices.empty()) GTEST_SKIP() << "a GPU is present";
  try {
    ModelRegistry reg(config("cuda"));
    FAIL() << "startup succeeded with engine.device = cuda and no GPU";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("model 'toy-chat'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("engine.device = cuda but no GPU can be used"), std::string::npos) << msg;
  }
}

TEST_F(ModelDeviceTest, CpuRunsOnTheCpuAndSaysSo) {
  ModelRegistry reg(config("cpu"));
  ASSERT_EQ(reg.models().size(), 1u);
  EXPECT_EQ(reg.models().front()->device.rfind("cpu (", 0), 0u) << reg.models().front()->device;
}

// engine.kv_cache_type: auto keeps F32 weights exact (F32 cache) and gives quantized weights an
// F16 cache; an explicit choice wins either way. The device line says which.
TEST_F(ModelDeviceTest, KvCacheTypeAutoIsF16ForQuantizedWeightsAndF32ForF32) {
  const auto device_of = [](const std::string& file, const std::string& kv) {
    ModelRegistry reg(config("cpu", file, kv));
    return reg.models().front()->device;
  };
  EXPECT_NE(device_of("toy.gguf", "auto").find("kv f32"), std::string::npos);
  EXPECT_NE(device_of("toy-q8.gguf", "auto").find("kv f16"), std::string::npos);
  EXPECT_NE(device_of("toy.gguf", "f16").find("kv f16"), std::string::npos);
  EXPECT_NE(device_of("toy-q8.gguf", "f32").find("kv f32"), std::string::npos);
}

TEST_F(ModelDeviceTest, CudaWithAGpuRunsOnIt) {
  const auto inv = kernels::detect_gpus();
  if (inv.devices.empty()) GTEST_SKIP() << "no CUDA device: " << (inv.note.empty() ? "none found" : inv.note);
  ModelRegistry reg(config("cuda"));
  EXPECT_EQ(reg.models().front()->device.rfind("cuda:", 0), 0u) << reg.models().front()->device;
}

}  // namespace
}  // namespace infergate::gateway
