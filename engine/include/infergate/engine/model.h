// A Llama-architecture model loaded from a GGUF file: hyperparameters, weight views into the
// memory-mapped file (no copy), and its tokenizer. Immutable after load; shared by the
// scheduler, the backend and the gateway's tokenization, all concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "infergate/engine/gguf.h"
#include "infergate/engine/tokenizer.h"
#include "infergate/kernels/weights.h"

namespace infergate::engine {

class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct LlamaConfig {
  std::int64_t n_vocab = 0;
  std::int64_t n_ctx_train = 0;  // llama.context_length
  std::int64_t n_embd = 0;
  std::int64_t n_layer = 0;
  std::int64_t n_head = 0;
  std::int64_t n_head_kv = 0;
  std::int64_t n_ff = 0;
  std::int64_t head_dim = 0;
  std::int64_t rot_dim = 0;  // llama.rope.dimension_count (default head_dim)
  float rms_eps = 1e-5f;
  float rope_base = 10000.0f;
  std::int64_t kv_dim() const { return n_head_kv * head_dim; }
};

struct LayerWeights {
  const float* attn_norm = nullptr;
  kernels::WeightMatrix wq, wk, wv, wo;
  const float* ffn_norm = nullptr;
  kernels::WeightMatrix w_gate, w_up, w_down;
};

class Model {
 public:
  // Maps and validates the file; throws ModelError (or GgufError) saying what is wrong: not
  // llama, a missing tensor, a wrong shape, an unsupported weight type, a bad tokenizer.
  static std::shared_ptr<const Model> load(const std::string& path);
  static std::shared_ptr<const Model> from_gguf(GgufFile file);

  const std::string& name() const { return name_; }  // general.name, else the file's stem
  const LlamaConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const GgufFile& file() const { return file_; }

  const kernels::WeightMatrix& token_embedding() const { return tok_embd_; }
  const float* output_norm() const { return output_norm_; }
  const kernels::WeightMatrix& output() const { return output_; }  // tok_embd when tied
  const std::vector<LayerWeights>& layers() const { return layers_; }
  // The type most weights use ("F32", "Q8_0", ...), and the bytes one decode step reads.
  std::string weight_type() const;
  std::uint64_t weight_bytes_per_token() const;

 private:
  Model() = default;
  GgufFile file_;
  std::string name_;
  LlamaConfig config_;
  std::unique_ptr<Tokenizer> tokenizer_;
  kernels::WeightMatrix tok_embd_;
  const float* output_norm_ = nullptr;
  kernels::WeightMatrix output_;
  std::vector<LayerWeights> layers_;
};

// The tokenizer.ggml.* metadata of a file as a spec (throws ModelError naming a missing key).
TokenizerSpec tokenizer_spec_from_gguf(const GgufFile& f);

}  // namespace infergate::engine
