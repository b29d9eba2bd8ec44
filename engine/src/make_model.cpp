// make-model: a GGUF v3 llama file with the metadata real readers expect (general.*, llama.*,
// tokenizer.ggml.*, tokenizer.chat_template) and weights from a seeded generator.
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "infergate/engine/bpe_trainer.h"
#include "infergate/engine/gguf.h"
#include "infergate/engine/make_model.h"

namespace infergate::engine {

namespace {

using kernels::WeightType;

// splitmix64: a tiny, well-mixed generator; the same seed gives the same model everywhere.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  float uniform(float a) {  // in [-a, a)
    return static_cast<float>((static_cast<double>(next() >> 11) * 0x1.0p-53 * 2.0 - 1.0) * a);
  }

 private:
  std::uint64_t s_;
};

std::uint32_t ggml_type(WeightType t) {
  switch (t) {
    case WeightType::f32: return 0;
    case WeightType::f16: return 1;
    case WeightType::q8_0: return 8;
  }
  return 0;
}

// A rows x cols matrix (GGUF dims {cols, rows}) with uniform values of standard deviation
// `stddev`, stored as `type`.
std::vector<std::uint8_t> random_matrix(Rng& rng, std::int64_t rows, std::int64_t cols, float stddev, WeightType type) {
  const float a = stddev * std::sqrt(3.0f);
  std::vector<float> row(static_cast<std::size_t>(cols));
  const std::int64_t rb = kernels::row_bytes(type, cols);
  std::vector<std::uint8_t> out(static_cast<std::size_t>(rows * rb));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (auto& v : row) v = rng.uniform(a);
    std::uint8_t* dst = out.data() + r * rb;
    switch (type) {
      case WeightType::f32: std::memcpy(dst, row.data(), row.size() * 4); break;
      case WeightType::f16: {
        auto* h = reinterpret_cast<std::uint16_t*>(dst);
        for (std::int64_t c = 0; c < cols; ++c) h[c] = kernels::fp32_to_fp16(row[static_cast<std::size_t>(c)]);
        break;
      }
      case WeightType::q8_0:
        kernels::quantize_row_q8_0(row.data(), cols, reinterpret_cast<kernels::BlockQ8_0*>(dst));
        break;
    }
  }
  return out;
}

std::vector<std::uint8_t> norm_weights(Rng& rng, std::int64_t n) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = 1.0f + rng.uniform(0.1f);
  std::vector<std::uint8_t> out(v.size() * 4);
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

GgufWriter build(const MakeModelOptions& o) {
  const ModelPreset& p = o.preset;
  if (p.n_embd % p.n_head != 0 || p.n_head % p.n_head_kv != 0) throw std::invalid_argument("preset head counts do not divide");
  if (o.type == WeightType::q8_0 && (p.n_embd % 32 != 0 || p.n_ff % 32 != 0)) {
    throw std::invalid_argument("Q8_0 needs embedding and feed-forward sizes that are multiples of 32");
  }
  const auto specials = default_special_tokens();
  const TokenizerSpec tok = train_byte_level_bpe(builtin_corpus(), static_cast<std::size_t>(p.n_vocab), specials);
  const auto n_vocab = static_cast<std::int64_t>(tok.tokens.size());

  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_string("general.name", "infergate-" + p.name + "-" + kernels::weight_type_name(o.type));
  w.add_string("general.description", "deterministic random weights from infergate make-model (seed " + std::to_string(o.seed) + ")");
  w.add_u32("general.file_type", o.type == WeightType::f32 ? 0 : o.type == WeightType::f16 ? 1 : 7);
  w.add_u32("llama.context_length", static_cast<std::uint32_t>(p.n_ctx));
  w.add_u32("llama.embedding_length", static_cast<std::uint32_t>(p.n_embd));
  w.add_u32("llama.block_count", static_cast<std::uint32_t>(p.n_layer));
  w.add_u32("llama.feed_forward_length", static_cast<std::uint32_t>(p.n_ff));
  w.add_u32("llama.attention.head_count", static_cast<std::uint32_t>(p.n_head));
  w.add_u32("llama.attention.head_count_kv", static_cast<std::uint32_t>(p.n_head_kv));
  w.add_u32("llama.rope.dimension_count", static_cast<std::uint32_t>(p.n_embd / p.n_head));
  w.add_f32("llama.rope.freq_base", 10000.0f);
  w.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.add_u32("llama.vocab_size", static_cast<std::uint32_t>(n_vocab));
  w.add_string("tokenizer.ggml.model", tok.model);
  w.add_string("tokenizer.ggml.pre", tok.pre);
  w.add_string_array("tokenizer.ggml.tokens", tok.tokens);
  w.add_i32_array("tokenizer.ggml.token_type", tok.token_types);
  w.add_string_array("tokenizer.ggml.merges", tok.merges);
  w.add_u32("tokenizer.ggml.bos_token_id", static_cast<std::uint32_t>(tok.bos_id));
  w.add_u32("tokenizer.ggml.eos_token_id", static_cast<std::uint32_t>(tok.eos_id));
  w.add_bool("tokenizer.ggml.add_bos_token", true);
  w.add_string("tokenizer.chat_template", chat_template_text(o.chat));

  Rng rng(o.seed);
  const std::int64_t d = p.n_embd, kv = p.n_head_kv * (p.n_embd / p.n_head), ff = p.n_ff;
  const auto u = [](std::int64_t v) { return static_cast<std::uint64_t>(v); };
  const std::uint32_t t = ggml_type(o.type);
  // Unit-variance inputs give unit-variance outputs (stddev 1/sqrt(fan_in)); the projections
  // back into the residual stream are smaller so the stream grows slowly over the layers.
  const float proj = 1.0f / std::sqrt(static_cast<float>(2 * p.n_layer));
  w.add_tensor("token_embd.weight", {u(d), u(n_vocab)}, t, random_matrix(rng, n_vocab, d, 1.0f, o.type));
  for (std::int64_t i = 0; i < p.n_layer; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    const float in_d = 1.0f / std::sqrt(static_cast<float>(d)), in_ff = 1.0f / std::sqrt(static_cast<float>(ff));
    w.add_tensor(b + "attn_norm.weight", {u(d)}, 0, norm_weights(rng, d));
    w.add_tensor(b + "attn_q.weight", {u(d), u(d)}, t, random_matrix(rng, d, d, in_d * 2.0f, o.type));
    w.add_tensor(b + "attn_k.weight", {u(d), u(kv)}, t, random_matrix(rng, kv, d, in_d * 2.0f, o.type));
    w.add_tensor(b + "attn_v.weight", {u(d), u(kv)}, t, random_matrix(rng, kv, d, in_d, o.type));
    w.add_tensor(b + "attn_output.weight", {u(d), u(d)}, t, random_matrix(rng, d, d, in_d * proj, o.type));
    w.add_tensor(b + "ffn_norm.weight", {u(d)}, 0, norm_weights(rng, d));
    w.add_tensor(b + "ffn_gate.weight", {u(d), u(ff)}, t, random_matrix(rng, ff, d, in_d, o.type));
    w.add_tensor(b + "ffn_up.weight", {u(d), u(ff)}, t, random_matrix(rng, ff, d, in_d, o.type));
    w.add_tensor(b + "ffn_down.weight", {u(ff), u(d)}, t, random_matrix(rng, d, ff, in_ff * proj, o.type));
  }
  w.add_tensor("output_norm.weight", {u(d)}, 0, norm_weights(rng, d));
  // Larger output weights give peaked next-token distributions, like a trained model's.
  w.add_tensor("output.weight", {u(d), u(n_vocab)}, t,
               random_matrix(rng, n_vocab, d, 4.0f / std::sqrt(static_cast<float>(d)), o.type));
  return w;
}

std::uint64_t parameter_count(const ModelPreset& p, std::int64_t n_vocab) {
  const std::int64_t d = p.n_embd, kv = p.n_head_kv * (p.n_embd / p.n_head), ff = p.n_ff;
  const std::int64_t layer = 2 * d + 2 * d * d + 2 * d * kv + 3 * d * ff;
  return static_cast<std::uint64_t>(2 * n_vocab * d + d + p.n_layer * layer);
}

}  // namespace

std::optional<ModelPreset> find_preset(std::string_view name) {
  //            name     vocab  embd layers heads kv_heads  ff   ctx
  if (name == "toy") return ModelPreset{"toy", 384, 64, 2, 4, 2, 192, 512};
  if (name == "small") return ModelPreset{"small", 4096, 384, 8, 6, 2, 1024, 2048};
  if (name == "medium") return ModelPreset{"medium", 8192, 768, 12, 12, 4, 2560, 2048};
  return std::nullopt;
}

std::vector<std::string> preset_names() { return {"toy", "small", "medium"}; }

std::vector<std::uint8_t> make_model_bytes(const MakeModelOptions& options) { return build(options).serialize(); }

std::uint64_t make_model(const MakeModelOptions& options, const std::string& path) {
  build(options).write(path);
  return parameter_count(options.preset, options.preset.n_vocab);
}

}  // namespace infergate::engine
