// The CPU backend: one transformer step over a batch of sequences, every token of the batch in
// one matrix product per weight (so each weight byte is read once per step), attention per
// (token, head) over the paged cache, on a persistent thread pool.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "infergate/engine/backend.h"
#include "infergate/kernels/cpu/kernels.h"

namespace infergate::engine {

namespace {

namespace kc = kernels::cpu;

class CpuBackend final : public Backend {
 public:
  CpuBackend(std::shared_ptr<const Model> model, KvGeometry kv, unsigned threads, std::int64_t max_tokens)
      : model_(std::move(model)), c_(model_->config()), kv_(kv), pool_(threads), max_tokens_(max_tokens) {
    const auto per_layer = static_cast<std::size_t>(kv.n_blocks) * static_cast<std::size_t>(kv.block_size) *
                           static_cast<std::size_t>(c_.kv_dim());
    layer_stride_ = per_layer;
    const std::size_t cache = per_layer * static_cast<std::size_t>(c_.n_layer);
    if (kv.type == KvType::f16) {
      k16_.assign(cache, 0);
      v16_.assign(cache, 0);
    } else {
      k_cache_.assign(cache, 0.0f);
      v_cache_.assign(cache, 0.0f);
    }
    const auto t = static_cast<std::size_t>(max_tokens);
    x_.resize(t * c_.n_embd);
    h_.resize(t * c_.n_embd);
    q_.resize(t * c_.n_embd);
    k_.resize(t * c_.kv_dim());
    v_.resize(t * c_.kv_dim());
    att_.resize(t * c_.n_embd);
    tmp_.resize(t * c_.n_embd);
    gate_.resize(t * c_.n_ff);
    up_.resize(t * c_.n_ff);
    // Rotary angles for every position a sequence can reach (the model's context, or the
    // whole KV pool when that is smaller), computed once.
    rope_positions_ = std::min<std::int64_t>(c_.n_ctx_train, static_cast<std::int64_t>(kv.n_blocks) * kv.block_size);
    rope_.resize(static_cast<std::size_t>(rope_positions_ * c_.rot_dim));
    kc::rope_angles(rope_positions_, c_.rot_dim, c_.rope_base, rope_.data());
    pack_weights();
  }

  std::string describe() const override {
    return std::string("cpu (") + kc::isa_name(kc::active_isa()) + ", " + std::to_string(pool_.size()) + " threads, kv " +
           kv_type_name(kv_.type) + ")";
  }

  void forward(std::span<const StepSequence> batch, float* logits) override {
    // Between steps the engine thread samples, streams and waits for work: the pool's workers
    // sleep instead of spinning on a core the gateway could use.
    struct Park {
      kc::ThreadPool& p;
      ~Park() { p.park(); }
    } park{pool_};
    // Which sequence and position each token of the batch is.
    tok_.clear();
    std::int64_t n_logits = 0;
    for (std::size_t s = 0; s < batch.size(); ++s) {
      const auto& seq = batch[s];
      if (static_cast<std::int64_t>(seq.blocks.size()) * kv_.block_size < seq.start_pos + static_cast<std::int64_t>(seq.tokens.size())) {
        throw std::invalid_argument("sequence block table does not cover its positions");
      }
      for (std::size_t j = 0; j < seq.tokens.size(); ++j) {
        tok_.push_back({static_cast<std::int32_t>(s), seq.start_pos + static_cast<std::int64_t>(j), seq.tokens[j]});
      }
      if (seq.want_logits && !seq.tokens.empty()) ++n_logits;
    }
    const auto T = static_cast<std::int64_t>(tok_.size());
    if (T == 0) return;
    if (T > max_tokens_) throw std::invalid_argument("batch of " + std::to_string(T) + " tokens exceeds max_batch_tokens");
    const std::int64_t d = c_.n_embd, kvd = c_.kv_dim();

    for (std::int64_t t = 0; t < T; ++t) {
      const auto id = tok_[static_cast<std::size_t>(t)].token;
      if (id < 0 || id >= c_.n_vocab) throw std::invalid_argument("token id " + std::to_string(id) + " outside the vocabulary");
      const auto& e = model_->token_embedding();
      kernels::dequantize_row(e.type, e.row(id), d, &x_[static_cast<std::size_t>(t * d)]);
    }
    for (std::int64_t layer = 0; layer < c_.n_layer; ++layer) {
      const LayerWeights& w = layers_[static_cast<std::size_t>(layer)];
      per_token(T, d, [&](std::int64_t t) { kc::rmsnorm(&x_[t * d], w.attn_norm, d, c_.rms_eps, &h_[t * d]); });
      const kc::MatmulOut qkv[] = {{&w.wq, q_.data()}, {&w.wk, k_.data()}, {&w.wv, v_.data()}};
      kc::matmul_shared_input(qkv, h_.data(), T, pool_);
      const std::size_t layer_at = static_cast<std::size_t>(layer) * layer_stride_;
      per_token(T, d + 3 * kvd, [&](std::int64_t t) {
        const Tok& tk = tok_[static_cast<std::size_t>(t)];
        if (tk.pos < rope_positions_) {
          const float* angles = &rope_[static_cast<std::size_t>(tk.pos * c_.rot_dim)];
          kc::rope_cached(&q_[t * d], c_.n_head, c_.head_dim, c_.rot_dim, angles);
          kc::rope_cached(&k_[t * kvd], c_.n_head_kv, c_.head_dim, c_.rot_dim, angles);
        } else {
          kc::rope(&q_[t * d], c_.n_head, c_.head_dim, c_.rot_dim, tk.pos, c_.rope_base);
          kc::rope(&k_[t * kvd], c_.n_head_kv, c_.head_dim, c_.rot_dim, tk.pos, c_.rope_base);
        }
        const StepSequence& seq = batch[static_cast<std::size_t>(tk.seq)];
        const std::size_t slot = layer_at + cache_row(seq, tk.pos);
        const std::size_t key_at = layer_at + key_column(seq, tk.pos);
        const auto bs = static_cast<std::size_t>(kv_.block_size);
        if (kv_.type == KvType::f16) {
          thread_local std::vector<std::uint16_t> half;
          half.resize(static_cast<std::size_t>(kvd));
          kc::to_fp16(&k_[t * kvd], kvd, half.data());
          for (std::size_t j = 0; j < half.size(); ++j) k16_[key_at + j * bs] = half[j];
          kc::to_fp16(&v_[t * kvd], kvd, &v16_[slot]);
        } else {
          for (std::int64_t j = 0; j < kvd; ++j) k_cache_[key_at + static_cast<std::size_t>(j) * bs] = k_[t * kvd + j];
          std::copy_n(&v_[t * kvd], kvd, &v_cache_[slot]);
        }
      });
      if (kv_.type == KvType::f16) {
        attention(batch, k16_.data() + layer_at, v16_.data() + layer_at, T);
      } else {
        attention(batch, k_cache_.data() + layer_at, v_cache_.data() + layer_at, T);
      }
      kc::matmul(w.wo, att_.data(), T, tmp_.data(), pool_);
      per_token(T, 2 * d, [&](std::int64_t t) {
        kc::add_inplace(&x_[t * d], &tmp_[t * d], d);
        kc::rmsnorm(&x_[t * d], w.ffn_norm, d, c_.rms_eps, &h_[t * d]);
      });
      const kc::MatmulOut gate_up[] = {{&w.w_gate, gate_.data()}, {&w.w_up, up_.data()}};
      kc::matmul_shared_input(gate_up, h_.data(), T, pool_);
      const std::int64_t ff = c_.n_ff;
      per_token(T, 4 * ff, [&](std::int64_t t) { kc::silu_mul(&gate_[t * ff], &up_[t * ff], ff, &gate_[t * ff]); });
      kc::matmul(w.w_down, gate_.data(), T, tmp_.data(), pool_);
      per_token(T, d, [&](std::int64_t t) { kc::add_inplace(&x_[t * d], &tmp_[t * d], d); });
    }
    if (n_logits == 0) return;
    // Final norm of the last token of each sequence that wants logits, then one product.
    std::int64_t row = 0, t = 0;
    for (const auto& seq : batch) {
      t += static_cast<std::int64_t>(seq.tokens.size());
      if (!seq.want_logits || seq.tokens.empty()) continue;
      kc::rmsnorm(&x_[(t - 1) * d], model_->output_norm(), d, c_.rms_eps, &h_[row * d]);
      ++row;
    }
    kc::matmul(output_, h_.data(), n_logits, logits, pool_);
  }

 private:
  // The matrices the products read: the model's, each Q8_0 one with a copy repacked for the AMX
  // kernel when the CPU runs it (the products' results are the same either way; the repacked
  // copy streams faster, and costs as much memory again as the Q8_0 weights).
  // Small F32 matrices (a small model's) likewise get a column-major copy on AVX-512 CPUs.
  void pack_weights() {
    layers_ = model_->layers();
    output_ = model_->output();
    const kc::Isa isa = kc::active_isa();
    std::vector<kernels::WeightMatrix*> all;
    for (auto& l : layers_) {
      for (kernels::WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) all.push_back(m);
    }
    all.push_back(&output_);
    const auto bytes = [&](const kernels::WeightMatrix& m) -> std::size_t {
      if (m.type == kernels::WeightType::q8_0 && isa == kc::Isa::amx) return kc::amx_packed_bytes(m);
      if (m.type == kernels::WeightType::f32 && isa >= kc::Isa::avx512 && m.cols <= kc::kMaxColumnsPacked) {
        return kc::f32_columns_bytes(m);
      }
      return 0;
    };
    std::size_t total = 0;
    for (const auto* m : all) total += (bytes(*m) + 63) / 64 * 64;
    if (total == 0) return;
    packed_.resize(total / 64);
    auto* at = reinterpret_cast<std::uint8_t*>(packed_.data());
    for (auto* m : all) {
      const std::size_t n = bytes(*m);
      if (n == 0) continue;
      if (m->type == kernels::WeightType::q8_0) {
        kc::pack_q8_0_amx(*m, at);
      } else {
        kc::pack_f32_columns(*m, at);
      }
      m->packed = at;
      at += (n + 63) / 64 * 64;
    }
  }

  struct alignas(64) Line {
    std::uint8_t bytes[64];
  };
  std::vector<LayerWeights> layers_;
  kernels::WeightMatrix output_;
  std::vector<Line> packed_;
  struct Tok {
    std::int32_t seq;
    std::int64_t pos;
    std::int32_t token;
  };

  // Where position pos's key goes: keys are stored dimension-major within a block (dimension j of
  // the block's positions side by side, j = kv head * head_dim + d), so attention dots sixteen
  // positions at once; values stay row-major (a position's row, kv_dim long). Returns the offset
  // of dimension 0; dimension j is block_size further per j.
  // fn(t) for every token of the step: across the pool for a batch (these per-token passes, norms,
  // rotary embeddings and cache writes, activations, residual adds, would otherwise leave the
  // other threads idle between the products), on this thread for a few tokens, where handing
  // out the work costs more than it saves. Each token's arithmetic is the same either way.
  // `floats` is about how many values a token's pass touches.
  template <class Fn>
  void per_token(std::int64_t T, std::int64_t floats, Fn&& fn) {
    if (T >= 4 && T * floats >= kParallelFloats) {
      pool_.run(T, fn);
    } else {
      for (std::int64_t t = 0; t < T; ++t) fn(t);
    }
  }
  // A few microseconds of such work on one core; below that the hand-off costs more than it saves
  // (a small model's batches stay on this thread).
  static constexpr std::int64_t kParallelFloats = std::int64_t{1} << 13;

  std::size_t key_column(const StepSequence& s, std::int64_t pos) const {
    const auto block = static_cast<std::size_t>(s.blocks[static_cast<std::size_t>(pos / kv_.block_size)]);
    return block * static_cast<std::size_t>(kv_.block_size) * static_cast<std::size_t>(c_.kv_dim()) +
           static_cast<std::size_t>(pos % kv_.block_size);
  }

  std::size_t cache_row(const StepSequence& s, std::int64_t pos) const {
    const auto block = static_cast<std::size_t>(s.blocks[static_cast<std::size_t>(pos / kv_.block_size)]);
    return (block * static_cast<std::size_t>(kv_.block_size) + static_cast<std::size_t>(pos % kv_.block_size)) *
           static_cast<std::size_t>(c_.kv_dim());
  }

  template <typename Elem>
  void attention(std::span<const StepSequence> batch, const Elem* kl, const Elem* vl, std::int64_t T) {
    const std::int64_t hd = c_.head_dim, group = c_.n_head / c_.n_head_kv, kvd = c_.kv_dim();
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    // One work item per (token, key/value head): the query heads that share it (grouped-query
    // attention) read each cached key and value once between them.
    auto one = [&](std::int64_t i) {
      const std::int64_t t = i / c_.n_head_kv, kvh = i % c_.n_head_kv;
      const Tok& tk = tok_[static_cast<std::size_t>(t)];
      const StepSequence& s = batch[static_cast<std::size_t>(tk.seq)];
      const std::int64_t n_pos = tk.pos + 1;  // causal: itself and everything before it
      thread_local std::vector<const Elem*> kp, vp;
      thread_local std::vector<float> scratch;
      const auto nb = static_cast<std::size_t>((n_pos + kv_.block_size - 1) / kv_.block_size);
      kp.resize(nb);
      vp.resize(nb);
      scratch.resize(static_cast<std::size_t>(n_pos * group));
      for (std::size_t b = 0; b < nb; ++b) {
        const std::size_t block = static_cast<std::size_t>(s.blocks[b]) * static_cast<std::size_t>(kv_.block_size) *
                                  static_cast<std::size_t>(kvd);
        // this kv head's keys: dimensions kvh * hd .. + hd, block_size apart; its value columns
        kp[b] = kl + block + static_cast<std::size_t>(kvh * hd * kv_.block_size);
        vp[b] = vl + block + static_cast<std::size_t>(kvh * hd);
      }
      const std::int64_t first = t * c_.n_embd + kvh * group * hd;
      kc::attend_heads_kt(&q_[first], group, kp.data(), vp.data(), kv_.block_size, kvd, n_pos, hd, scale,
                          scratch.data(), &att_[first]);
    };
    // Little attention (short contexts of a small model) stays on this thread, as small
    // products do: handing it out would cost more than it saves (a medium model at batch 1 with a
    // hundred positions is over the line).
    std::int64_t positions = 0;
    for (const Tok& tk : tok_) positions += tk.pos + 1;
    if (positions * c_.n_head * hd < (std::int64_t{1} << 15)) {
      for (std::int64_t i = 0; i < T * c_.n_head_kv; ++i) one(i);
    } else {
      pool_.run(T * c_.n_head_kv, one);
    }
  }

  std::shared_ptr<const Model> model_;
  const LlamaConfig& c_;
  KvGeometry kv_;
  kc::ThreadPool pool_;
  std::int64_t max_tokens_;
  std::size_t layer_stride_ = 0;
  std::vector<float> k_cache_, v_cache_;  // KvType::f32
  std::vector<std::uint16_t> k16_, v16_;  // KvType::f16
  std::vector<float> x_, h_, q_, k_, v_, att_, tmp_, gate_, up_;
  std::int64_t rope_positions_ = 0;
  std::vector<float> rope_;  // (cos, sin) pairs, rot_dim floats per position
  std::vector<Tok> tok_;
};

}  // namespace

unsigned auto_cpu_threads(const Model& model, unsigned hardware) {
  constexpr std::uint64_t kOneCoreBytes = std::uint64_t{4} << 20;
  if (model.weight_bytes_per_token() < kOneCoreBytes) return 1;
  return std::max(1u, hardware);
}

const char* kv_type_name(KvType t) { return t == KvType::f16 ? "f16" : "f32"; }

std::unique_ptr<Backend> make_cpu_backend(std::shared_ptr<const Model> model, KvGeometry kv, unsigned threads,
                                          std::int64_t max_batch_tokens) {
  if (kv.n_blocks <= 0 || kv.block_size <= 0) throw std::invalid_argument("KV geometry needs blocks");
  if (max_batch_tokens <= 0) throw std::invalid_argument("max_batch_tokens must be positive");
  return std::make_unique<CpuBackend>(std::move(model), kv, std::max(1u, threads), max_batch_tokens);
}

}  // namespace infergate::engine
