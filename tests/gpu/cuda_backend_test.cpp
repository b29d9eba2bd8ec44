// The CUDA backend against the CPU backend (the reference) on whole models: the toy and small
// presets in F32, F16 and Q8_0, a prefill step then greedy decode steps; batched decoding
// against decoding alone; and the same refusals of bad batches. Skipped (with the reason) when
// no GPU can be used.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "engine/engine_test_util.h"
#include "gpu/gpu_test_util.h"
#include "infergate/engine/backend.h"
#include "infergate/engine/make_model.h"

namespace infergate::gpu_testing {
namespace {

namespace ie = engine;
using kernels::WeightType;

std::shared_ptr<const ie::Model> preset_model(const std::string& preset, WeightType type) {
  if (preset == "toy") return ie::testing::toy_model(type);
  static std::map<std::pair<std::string, int>, std::vector<std::uint8_t>> cache;
  auto& bytes = cache[{preset, static_cast<int>(type)}];
  if (bytes.empty()) {
    ie::MakeModelOptions o;
    o.preset = *ie::find_preset(preset);
    o.type = type;
    o.seed = 3;
    bytes = ie::make_model_bytes(o);
  }
  return ie::Model::from_gguf(ie::GgufFile::parse(bytes, preset));
}

std::int32_t argmax(const std::vector<float>& v) {
  return static_cast<std::int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

std::vector<std::int32_t> prompt(std::int64_t n, std::int64_t n_vocab, std::int32_t salt) {
  std::vector<std::int32_t> t;
  for (std::int64_t i = 0; i < n; ++i) t.push_back(static_cast<std::int32_t>((i * 37 + salt * 101 + 1) % n_vocab));
  return t;
}

// Relative L2 of the CUDA logits against the CPU logits, per weight type: F32 runs in F32 on
// both (1e-4 after every layer's differences in summation order); F16 rounds activations to
// F16 before each product on the GPU (1e-2); Q8_0 rounds activations to 8 bits on the CPU
// (3e-2, the bound the CPU backend itself meets against a double-precision reference).
double tolerance(WeightType type) {
  switch (type) {
    case WeightType::f32: return 1e-4;
    case WeightType::f16: return 1e-2;
    case WeightType::q8_0: return 3e-2;
  }
  return 0;
}

struct Case {
  std::string preset;
  WeightType type;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.preset << " " << kernels::weight_type_name(c.type); }

class CudaBackendLogits : public GpuTest, public ::testing::WithParamInterface<Case> {};

// A 40-token prefill (past the Q8_0 direct limit of 32, so the batched product path runs) then
// six decode steps, each fed the CPU's greedy token; block size 4 and a scrambled block table.
TEST_P(CudaBackendLogits, MatchCpuBackendThroughPrefillAndDecode) {
  const auto m = preset_model(GetParam().preset, GetParam().type);
  const auto n_vocab = static_cast<std::size_t>(m->config().n_vocab);
  auto cpu = ie::make_cpu_backend(m, {64, 4}, 2, 64);
  auto gpu = ie::make_cuda_backend(m, {64, 4}, 0, 64);
  std::vector<std::int32_t> blocks;
  for (int b = 0; b < 16; ++b) blocks.push_back((b * 7 + 3) % 64);
  auto tokens = prompt(40, m->config().n_vocab, 1);
  std::vector<float> want(n_vocab), got(n_vocab);
  std::int64_t start = 0;
  std::size_t n_new = tokens.size();
  for (int step = 0; step < 7; ++step) {
    ie::StepSequence s{std::span(tokens).subspan(static_cast<std::size_t>(start), n_new), start, blocks, true};
    cpu->forward(std::span(&s, 1), want.data());
    gpu->forward(std::span(&s, 1), got.data());
    EXPECT_LT(relative_l2(got, want), tolerance(GetParam().type))
        << GetParam().preset << " " << kernels::weight_type_name(GetParam().type) << " step " << step;
    start += static_cast<std::int64_t>(n_new);
    n_new = 1;
    tokens.push_back(argmax(want));
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, CudaBackendLogits,
                         ::testing::Values(Case{"toy", WeightType::f32}, Case{"toy", WeightType::f16},
                                           Case{"toy", WeightType::q8_0}, Case{"small", WeightType::f32},
                                           Case{"small", WeightType::f16}, Case{"small", WeightType::q8_0}),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           return i.param.preset + "_" + kernels::weight_type_name(i.param.type);
                         });

class CudaBackend : public GpuTest {};

TEST_F(CudaBackend, DescribesItsGpu) {
  auto gpu = ie::make_cuda_backend(ie::testing::toy_model(), {8, 16}, 0, 16);
  EXPECT_EQ(gpu->describe().rfind("cuda:0 ", 0), 0u) << gpu->describe();
}

// Four sequences of different prompt lengths: decoded one at a time (a step per sequence), and
// decoded together (all four prompts in one step, then one step of four decodes). Greedy
// tokens must be equal and logits within 1e-4.
TEST_F(CudaBackend, BatchedDecodeEqualsDecodingAlone) {
  for (const WeightType type : {WeightType::f32, WeightType::q8_0}) {
    const auto m = ie::testing::toy_model(type);
    const auto n_vocab = static_cast<std::size_t>(m->config().n_vocab);
    const std::int64_t lengths[4] = {3, 7, 12, 5};
    constexpr int kSteps = 8;
    std::vector<std::vector<std::int32_t>> tables(4);
    for (int s = 0; s < 4; ++s)
      for (int b = 0; b < 8; ++b) tables[static_cast<std::size_t>(s)].push_back(s * 8 + (b * 3) % 8);

    const auto run = [&](bool together) {
      auto gpu = ie::make_cuda_backend(m, {32, 4}, 0, 64);
      std::vector<std::vector<std::int32_t>> seqs;
      for (int s = 0; s < 4; ++s) seqs.push_back(prompt(lengths[s], m->config().n_vocab, s));
      std::vector<std::vector<float>> logits(4, std::vector<float>(n_vocab));
      std::vector<std::vector<float>> trace;
      std::vector<std::int64_t> start(4, 0);
      for (int step = 0; step <= kSteps; ++step) {
        std::vector<ie::StepSequence> batch;
        for (int s = 0; s < 4; ++s) {
          const auto& t = seqs[static_cast<std::size_t>(s)];
          const auto st = start[static_cast<std::size_t>(s)];
          batch.push_back({std::span(t).subspan(static_cast<std::size_t>(st)), st, tables[static_cast<std::size_t>(s)], true});
        }
        if (together) {
          std::vector<float> all(4 * n_vocab);
          gpu->forward(batch, all.data());
          for (std::size_t s = 0; s < 4; ++s)
            std::copy_n(all.begin() + static_cast<long>(s * n_vocab), n_vocab, logits[s].begin());
        } else {
          for (std::size_t s = 0; s < 4; ++s) gpu->forward(std::span(&batch[s], 1), logits[s].data());
        }
        for (std::size_t s = 0; s < 4; ++s) {
          start[s] = static_cast<std::int64_t>(seqs[s].size());
          seqs[s].push_back(argmax(logits[s]));
          trace.push_back(logits[s]);
        }
      }
      return std::make_pair(seqs, trace);
    };
    const auto alone = run(false), together = run(true);
    EXPECT_EQ(alone.first, together.first) << kernels::weight_type_name(type);
    ASSERT_EQ(alone.second.size(), together.second.size());
    for (std::size_t i = 0; i < alone.second.size(); ++i)
      EXPECT_LT(relative_l2(together.second[i], alone.second[i]), 1e-4) << kernels::weight_type_name(type) << " " << i;
  }
}

TEST_F(CudaBackend, RejectsBadBatchesLikeTheCpuBackend) {
  const auto m = ie::testing::toy_model();
  auto gpu = ie::make_cuda_backend(m, {4, 4}, 0, 8);
  std::vector<float> logits(static_cast<std::size_t>(m->config().n_vocab) * 2);
  const std::vector<std::int32_t> blocks = {0}, three = {0, 1, 2}, outside = {4};
  const std::vector<std::int32_t> too_many(9, 1), five(5, 1), one = {1}, bad_id = {100000};
  ie::StepSequence a{too_many, 0, three, true};
  EXPECT_THROW(gpu->forward(std::span(&a, 1), logits.data()), std::invalid_argument);
  ie::StepSequence b{five, 0, blocks, true};  // 5 positions, one block of 4
  EXPECT_THROW(gpu->forward(std::span(&b, 1), logits.data()), std::invalid_argument);
  ie::StepSequence c{bad_id, 0, blocks, true};
  EXPECT_THROW(gpu->forward(std::span(&c, 1), logits.data()), std::invalid_argument);
  ie::StepSequence d{one, 0, outside, true};  // block 4 of a 4-block cache
  EXPECT_THROW(gpu->forward(std::span(&d, 1), logits.data()), std::invalid_argument);
  // Still usable after refusing.
  ie::StepSequence e{one, 0, blocks, true};
  EXPECT_NO_THROW(gpu->forward(std::span(&e, 1), logits.data()));
}

}  // namespace
}  // namespace infergate::gpu_testing
