// Loading a Llama GGUF: metadata -> LlamaConfig, tensors -> weight views checked for presence,
// shape and type, tokenizer.ggml.* -> Tokenizer.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "infergate/engine/model.h"

namespace infergate::engine {

namespace {

using kernels::WeightMatrix;
using kernels::WeightType;

[[noreturn]] void fail(const GgufFile& f, const std::string& msg) {
  throw ModelError(f.source() + ": " + msg);
}

std::string shape_text(const std::vector<std::uint64_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

const GgufTensorInfo& need_tensor(const GgufFile& f, const std::string& name) {
  const auto* t = f.tensor(name);
  if (t == nullptr) fail(f, "tensor '" + name + "' is missing (is this a complete llama model?)");
  return *t;
}

void check_shape(const GgufFile& f, const GgufTensorInfo& t, std::vector<std::uint64_t> want) {
  if (t.dims != want) {
    fail(f, "tensor '" + t.name + "' has shape " + shape_text(t.dims) + ", expected " + shape_text(want));
  }
}

WeightMatrix matrix(const GgufFile& f, const std::string& name, std::int64_t cols, std::int64_t rows) {
  const auto& t = need_tensor(f, name);
  check_shape(f, t, {static_cast<std::uint64_t>(cols), static_cast<std::uint64_t>(rows)});
  WeightType type;
  switch (t.type) {
    case 0: type = WeightType::f32; break;
    case 1: type = WeightType::f16; break;
    case 8: type = WeightType::q8_0; break;
    default:
      fail(f, "tensor '" + name + "' has weight type " + ggml_type_name(t.type) +
                  ", which infergate does not support (F32, F16, Q8_0)");
  }
  if (type == WeightType::q8_0 && cols % kernels::kQ8Block != 0) {
    fail(f, "tensor '" + name + "' is Q8_0 with rows of " + std::to_string(cols) + " (not a multiple of 32)");
  }
  return WeightMatrix{type, t.data, rows, cols};
}

const float* norm(const GgufFile& f, const std::string& name, std::int64_t n) {
  const auto& t = need_tensor(f, name);
  check_shape(f, t, {static_cast<std::uint64_t>(n)});
  if (t.type != 0) fail(f, "tensor '" + name + "' must be F32, is " + ggml_type_name(t.type));
  return reinterpret_cast<const float*>(t.data);
}

std::int64_t positive(const GgufFile& f, const std::string& key, std::uint64_t limit) {
  const auto v = f.get_uint(key);
  if (v == 0 || v > limit) fail(f, "metadata '" + key + "' = " + std::to_string(v) + " is out of range (1.." + std::to_string(limit) + ")");
  return static_cast<std::int64_t>(v);
}

// A tokenizer array must hold strings (want_strings) or integers; an array of the wrong kind
// would otherwise read as empty.
const GgufArray& tokenizer_array(const GgufFile& f, const char* key, bool want_strings) {
  const GgufArray& a = f.get_array(key);
  const bool integer = a.type != GgufType::string && a.type != GgufType::f32 && a.type != GgufType::f64 &&
                       a.type != GgufType::boolean;
  if (want_strings ? a.type != GgufType::string : !integer) {
    fail(f, std::string("metadata ") + key + " should be an array of " + (want_strings ? "strings" : "integers") +
                " but holds " + gguf_type_name(a.type));
  }
  return a;
}

// A float hyperparameter that must be finite and positive (and fit a float).
float positive_float(const GgufFile& f, const std::string& key) {
  const double value = f.get_float(key);
  if (!(value > 0) || !(value <= std::numeric_limits<float>::max())) {
    fail(f, "metadata '" + key + "' = " + std::to_string(value) + " must be a finite number above 0");
  }
  return static_cast<float>(value);
}

}  // namespace

TokenizerSpec tokenizer_spec_from_gguf(const GgufFile& f) {
  TokenizerSpec s;
  try {
    s.model = f.get_string("tokenizer.ggml.model");
    if (f.has("tokenizer.ggml.pre")) s.pre = f.get_string("tokenizer.ggml.pre");
    s.tokens = tokenizer_array(f, "tokenizer.ggml.tokens", true).strings;
    if (f.has("tokenizer.ggml.scores")) {
      const GgufArray& scores = f.get_array("tokenizer.ggml.scores");
      if (scores.type == GgufType::string) fail(f, "metadata tokenizer.ggml.scores should be an array of numbers but holds string");
      for (const double d : scores.numbers) {
        // Clamped first: converting a double beyond the float range is undefined behaviour.
        const double lim = std::numeric_limits<float>::max();
        s.scores.push_back(static_cast<float>(std::isnan(d) ? d : std::clamp(d, -lim, lim)));
      }
    }
    if (f.has("tokenizer.ggml.token_type")) {
      const auto& types = tokenizer_array(f, "tokenizer.ggml.token_type", false).numbers;
      for (std::size_t i = 0; i < types.size(); ++i) {
        if (types[i] < std::numeric_limits<std::int32_t>::min() || types[i] > std::numeric_limits<std::int32_t>::max()) {
          fail(f, "tokenizer.ggml.token_type[" + std::to_string(i) + "] = " +
                      std::to_string(static_cast<long long>(types[i])) + " is not a token type (0..6)");
        }
        s.token_types.push_back(static_cast<std::int32_t>(types[i]));
      }
    }
    if (f.has("tokenizer.ggml.merges")) s.merges = tokenizer_array(f, "tokenizer.ggml.merges", true).strings;
    auto id = [&](const char* key) -> std::int32_t {
      const auto v = f.get_uint_or(key);
      if (!v) return -1;
      if (*v > 0x7fffffff) fail(f, std::string("metadata '") + key + "' is out of range");
      return static_cast<std::int32_t>(*v);
    };
    s.bos_id = id("tokenizer.ggml.bos_token_id");
    s.eos_id = id("tokenizer.ggml.eos_token_id");
    s.unknown_id = id("tokenizer.ggml.unknown_token_id");
    s.padding_id = id("tokenizer.ggml.padding_token_id");
    if (f.has("tokenizer.ggml.add_bos_token")) s.add_bos = f.get_bool("tokenizer.ggml.add_bos_token");
    if (f.has("tokenizer.chat_template")) s.chat_template = f.get_string("tokenizer.chat_template");
  } catch (const GgufError& e) {
    throw ModelError(std::string("tokenizer: ") + e.what());
  }
  return s;
}

std::shared_ptr<const Model> Model::load(const std::string& path) {
  return from_gguf(GgufFile::open(path));
}

std::shared_ptr<const Model> Model::from_gguf(GgufFile file) {
  std::shared_ptr<Model> m(new Model());
  m->file_ = std::move(file);
  const GgufFile& f = m->file_;
  if (!f.has("general.architecture")) {
    fail(f, "metadata general.architecture is missing (is this a model file? infergate runs llama-architecture models)");
  }
  const std::string arch = f.get_string("general.architecture");
  if (arch != "llama") {
    fail(f, "architecture '" + arch + "' is not supported (infergate runs llama-architecture models)");
  }
  m->name_ = f.has("general.name") ? f.get_string("general.name")
                                   : std::filesystem::path(f.source()).stem().string();
  LlamaConfig& c = m->config_;
  c.n_embd = positive(f, "llama.embedding_length", 1 << 16);
  c.n_layer = positive(f, "llama.block_count", 1024);
  c.n_head = positive(f, "llama.attention.head_count", 1024);
  c.n_head_kv = f.has("llama.attention.head_count_kv") ? positive(f, "llama.attention.head_count_kv", 1024) : c.n_head;
  c.n_ff = positive(f, "llama.feed_forward_length", 1 << 18);
  c.n_ctx_train = positive(f, "llama.context_length", 1 << 24);
  if (c.n_embd % c.n_head != 0) {
    fail(f, "llama.embedding_length (" + std::to_string(c.n_embd) + ") is not a multiple of llama.attention.head_count (" +
                std::to_string(c.n_head) + ")");
  }
  if (c.n_head % c.n_head_kv != 0) {
    fail(f, "llama.attention.head_count (" + std::to_string(c.n_head) +
                ") is not a multiple of llama.attention.head_count_kv (" + std::to_string(c.n_head_kv) + ")");
  }
  c.head_dim = c.n_embd / c.n_head;
  c.rot_dim = f.has("llama.rope.dimension_count") ? positive(f, "llama.rope.dimension_count", 1 << 16) : c.head_dim;
  if (c.rot_dim > c.head_dim || c.rot_dim % 2 != 0) {
    fail(f, "llama.rope.dimension_count (" + std::to_string(c.rot_dim) + ") must be even and at most the head size (" +
                std::to_string(c.head_dim) + ")");
  }
  const std::string eps_key = "llama.attention.layer_norm_rms_epsilon", base_key = "llama.rope.freq_base";
  if (f.has(eps_key)) c.rms_eps = positive_float(f, eps_key);
  if (f.has(base_key)) c.rope_base = positive_float(f, base_key);
  if (!(c.rope_base > 1)) fail(f, "metadata 'llama.rope.freq_base' must be above 1");

  try {
    m->tokenizer_ = std::make_unique<Tokenizer>(tokenizer_spec_from_gguf(f));
  } catch (const TokenizerError& e) {
    fail(f, e.what());  // already starts with "tokenizer: "
  }
  const auto& embd = need_tensor(f, "token_embd.weight");
  if (embd.dims.size() != 2) fail(f, "tensor 'token_embd.weight' has shape " + shape_text(embd.dims) + ", expected 2 dimensions");
  c.n_vocab = static_cast<std::int64_t>(embd.dims[1]);
  if (f.has("llama.vocab_size") && f.get_uint("llama.vocab_size") != static_cast<std::uint64_t>(c.n_vocab)) {
    fail(f, "llama.vocab_size = " + std::to_string(f.get_uint("llama.vocab_size")) + " disagrees with token_embd.weight (" +
                std::to_string(c.n_vocab) + " rows)");
  }
  if (static_cast<std::int64_t>(m->tokenizer_->vocab_size()) != c.n_vocab) {
    fail(f, "the tokenizer has " + std::to_string(m->tokenizer_->vocab_size()) + " tokens but the embedding has " +
                std::to_string(c.n_vocab) + " rows");
  }
  m->tok_embd_ = matrix(f, "token_embd.weight", c.n_embd, c.n_vocab);
  m->output_norm_ = norm(f, "output_norm.weight", c.n_embd);
  m->output_ = f.tensor("output.weight") != nullptr ? matrix(f, "output.weight", c.n_embd, c.n_vocab) : m->tok_embd_;
  const std::int64_t kv = c.kv_dim();
  for (std::int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    LayerWeights l;
    l.attn_norm = norm(f, p + "attn_norm.weight", c.n_embd);
    l.wq = matrix(f, p + "attn_q.weight", c.n_embd, c.n_embd);
    l.wk = matrix(f, p + "attn_k.weight", c.n_embd, kv);
    l.wv = matrix(f, p + "attn_v.weight", c.n_embd, kv);
    l.wo = matrix(f, p + "attn_output.weight", c.n_embd, c.n_embd);
    l.ffn_norm = norm(f, p + "ffn_norm.weight", c.n_embd);
    l.w_gate = matrix(f, p + "ffn_gate.weight", c.n_embd, c.n_ff);
    l.w_up = matrix(f, p + "ffn_up.weight", c.n_embd, c.n_ff);
    l.w_down = matrix(f, p + "ffn_down.weight", c.n_ff, c.n_embd);
    m->layers_.push_back(l);
  }
  return m;
}

std::string Model::weight_type() const {
  return layers_.empty() ? kernels::weight_type_name(output_.type) : kernels::weight_type_name(layers_[0].wq.type);
}

std::uint64_t Model::weight_bytes_per_token() const {
  auto bytes = [](const kernels::WeightMatrix& w) {
    return static_cast<std::uint64_t>(w.rows * kernels::row_bytes(w.type, w.cols));
  };
  std::uint64_t total = bytes(output_);
  for (const auto& l : layers_) {
    total += bytes(l.wq) + bytes(l.wk) + bytes(l.wv) + bytes(l.wo) + bytes(l.w_gate) + bytes(l.w_up) + bytes(l.w_down);
  }
  return total;
}

}  // namespace infergate::engine
