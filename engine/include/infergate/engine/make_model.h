// Writes Llama GGUF models with deterministic random weights and a BPE vocabulary learned from
// the text shipped in the repo, so tests and benchmarks need no download. Weights are scaled so
// activations stay near unit size through every layer (the outputs are meaningless but the
// arithmetic is the real thing). Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "infergate/engine/chat_template.h"
#include "infergate/kernels/weights.h"

namespace infergate::engine {

struct ModelPreset {
  std::string name;
  std::int64_t n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx;
};

// toy (tests), small (~15M parameters), medium (~100M parameters).
std::optional<ModelPreset> find_preset(std::string_view name);
std::vector<std::string> preset_names();

struct MakeModelOptions {
  ModelPreset preset;
  kernels::WeightType type = kernels::WeightType::f32;  // of every matrix; norms stay F32
  std::uint64_t seed = 1;
  ChatStyle chat = ChatStyle::chatml;
};

// Writes the model to `path` (atomically); throws GgufError / std::invalid_argument on failure.
// Returns the number of parameters.
std::uint64_t make_model(const MakeModelOptions& options, const std::string& path);
// The same file as bytes (tests).
std::vector<std::uint8_t> make_model_bytes(const MakeModelOptions& options);

}  // namespace infergate::engine
