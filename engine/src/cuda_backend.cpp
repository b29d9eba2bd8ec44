// The CUDA backend: the same step as the CPU backend (cpu_backend.cpp), on one GPU. The weights
// are copied to the device once, in their own format (F32 stays F32 for SGEMM, F16 stays F16
// for GemmEx, Q8_0 is split into quants and scales); the KV cache (F32), the activations, the
// product scratch and the per-step metadata (pinned on the host, mirrored on the device) are
// allocated once here, so a step allocates nothing. A step copies its token ids, positions,
// cache slots and block tables to the device in one copy, runs every layer on one stream,
// copies the wanted logits back and waits for the stream.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "infergate/engine/backend.h"
#include "infergate/engine/device.h"
#include "infergate/kernels/devices.h"

#if INFERGATE_HAVE_CUDA
#include "infergate/kernels/cuda/add.h"
#include "infergate/kernels/cuda/attention.h"
#include "infergate/kernels/cuda/device_matrix.h"
#include "infergate/kernels/cuda/embedding.h"
#include "infergate/kernels/cuda/kv_store.h"
#include "infergate/kernels/cuda/matmul.h"
#include "infergate/kernels/cuda/rmsnorm.h"
#include "infergate/kernels/cuda/rope.h"
#include "infergate/kernels/cuda/runtime.h"
#include "infergate/kernels/cuda/silu_mul.h"
#endif

namespace infergate::engine {

#if INFERGATE_HAVE_CUDA

namespace {

namespace kg = kernels::cuda;

// Lays buffers out one after another in one allocation, each 256-byte aligned.
class Layout {
 public:
  std::size_t take(std::size_t bytes) {
    const std::size_t at = size_;
    size_ += (bytes + 255) / 256 * 256;
    return at;
  }
  std::size_t size() const { return size_; }

 private:
  std::size_t size_ = 0;
};

std::string gpu_description(int gpu_index) {
  const auto inv = kernels::detect_gpus();
  for (const auto& d : inv.devices) {
    if (d.index != gpu_index) continue;
    return "cuda:" + std::to_string(d.index) + " " + d.name + " (" + std::to_string(d.total_memory_bytes >> 30) +
           " GiB, sm_" + std::to_string(d.compute_major) + std::to_string(d.compute_minor) + ")";
  }
  throw DeviceError("the CUDA backend cannot use GPU " + std::to_string(gpu_index) + ": " +
                    (inv.devices.empty() ? (inv.note.empty() ? std::string("no CUDA device found") : inv.note)
                                         : "there are only " + std::to_string(inv.devices.size()) + " device(s)") +
                    "; set engine.device = auto or cpu to run on the CPU");
}

// Makes the GPU current for the calling thread (before the stream and handles are made on it).
int use_gpu(int gpu_index) {
  kg::set_device(gpu_index);
  return gpu_index;
}

class CudaBackend final : public Backend {
 public:
  CudaBackend(std::shared_ptr<const Model> model, KvGeometry kv, int gpu_index, std::int64_t max_tokens)
      : model_(std::move(model)),
        c_(model_->config()),
        kv_(kv),
        max_tokens_(max_tokens),
        description_(gpu_description(gpu_index)),
        gpu_(use_gpu(gpu_index)),
        blas_(stream_.get()) {
    if (static_cast<std::int64_t>(kv.n_blocks) * kv.block_size > std::numeric_limits<std::int32_t>::max())
      throw std::invalid_argument("KV cache of " + std::to_string(kv.n_blocks) + " blocks of " +
                                  std::to_string(kv.block_size) + " has more rows than the CUDA backend indexes");
    if (c_.head_dim > kg::kMaxAttentionHeadDim)
      throw std::invalid_argument("the CUDA attention kernel takes head_dim up to 256; this model has " +
                                  std::to_string(c_.head_dim));
    upload_weights();
    allocate_state();
  }

  ~CudaBackend() override {
    try {
      kg::set_device(gpu_);  // the buffers, handle and stream below are freed on their own device
    } catch (...) {
    }
  }

  std::string describe() const override { return description_; }

  void forward(std::span<const StepSequence> batch, float* logits) override {
    kg::set_device(gpu_);  // the engine thread may not be the thread that built the backend
    const Step step = stage(batch);
    if (step.n_tokens == 0) return;
    const kg::Stream s = stream_.get();
    try {
      run(step, logits);
    } catch (...) {
      // A failure after the metadata copy was queued: let the queued work finish before the
      // next step rewrites the pinned metadata it may still be reading (a kernel fault leaves
      // the context broken, and every later call says so).
      try {
        kg::synchronize(s);
      } catch (...) {
      }
      throw;
    }
  }

 private:
  struct Step {
    std::int64_t n_tokens = 0;
    std::int64_t n_logits = 0;
    std::size_t table_len = 0;
  };

  // The step itself, on the stream, ending with the wait for it.
  void run(const Step& step, float* logits) {
    const std::int64_t T = step.n_tokens, d = c_.n_embd, kvd = c_.kv_dim();
    const kg::Stream s = stream_.get();
    kg::copy_to_device(meta_dev_.data(), meta_host_.data(), (6 * static_cast<std::size_t>(max_tokens_) + step.table_len) * 4, s);

    kg::embedding(tok_embd_, ids_dev(), T, x_, s);
    kg::PagedBatch pb;
    pb.token_seq = seq_dev();
    pb.token_pos = pos_dev();
    pb.seq_table = seq_table_dev();
    pb.blocks = blocks_dev();
    pb.n_tokens = T;
    pb.block_size = kv_.block_size;
    const float scale = 1.0f / std::sqrt(static_cast<float>(c_.head_dim));
    for (std::int64_t layer = 0; layer < c_.n_layer; ++layer) {
      const DeviceLayer& w = layers_[static_cast<std::size_t>(layer)];
      float* kc = k_cache_ + layer * layer_stride_;
      float* vc = v_cache_ + layer * layer_stride_;
      kg::rmsnorm(x_, w.attn_norm, T, d, c_.rms_eps, nullptr, h_, s);
      kg::matmul(blas_, w.wq, h_, T, q_, scratch_);
      kg::matmul(blas_, w.wk, h_, T, k_, scratch_);
      kg::matmul(blas_, w.wv, h_, T, v_, scratch_);
      kg::rope(q_, T, c_.n_head, c_.head_dim, c_.rot_dim, pos_dev(), c_.rope_base, s);
      kg::rope(k_, T, c_.n_head_kv, c_.head_dim, c_.rot_dim, pos_dev(), c_.rope_base, s);
      kg::kv_store(k_, v_, T, kvd, slots_dev(), kc, vc, s);
      kg::attention(q_, kc, vc, pb, c_.n_head, c_.n_head_kv, c_.head_dim, scale, att_, s);
      kg::matmul(blas_, w.wo, att_, T, tmp_, scratch_);
      kg::add_inplace(x_, tmp_, T * d, s);

      kg::rmsnorm(x_, w.ffn_norm, T, d, c_.rms_eps, nullptr, h_, s);
      kg::matmul(blas_, w.w_gate, h_, T, gate_, scratch_);
      kg::matmul(blas_, w.w_up, h_, T, up_, scratch_);
      kg::silu_mul(gate_, up_, T * c_.n_ff, gate_, s);
      kg::matmul(blas_, w.w_down, gate_, T, tmp_, scratch_);
      kg::add_inplace(x_, tmp_, T * d, s);
    }
    if (step.n_logits > 0) {
      // Final norm of the last token of each sequence that wants logits, then one product.
      kg::rmsnorm(x_, output_norm_, step.n_logits, d, c_.rms_eps, logit_rows_dev(), h_, s);
      kg::matmul(blas_, output_, h_, step.n_logits, logits_dev_, scratch_);
      kg::copy_to_host(logits, logits_dev_,
                       static_cast<std::size_t>(step.n_logits) * static_cast<std::size_t>(c_.n_vocab) * sizeof(float), s);
    }
    kg::synchronize(s);
  }

  struct DeviceLayer {
    const float* attn_norm = nullptr;
    const float* ffn_norm = nullptr;
    kg::DeviceMatrix wq, wk, wv, wo, w_gate, w_up, w_down;
  };

  // The per-step metadata, int32 each, at fixed offsets: ids, positions, sequence of each token,
  // cache slot of each token, rows that want logits, where each sequence's table starts (all
  // max_tokens long), then the block tables (table_cap_ long).
  std::int32_t* meta(std::int32_t* base, int i) const { return base + static_cast<std::size_t>(i) * static_cast<std::size_t>(max_tokens_); }
  const std::int32_t* ids_dev() const { return meta(meta_dev_.as<std::int32_t>(), 0); }
  const std::int32_t* pos_dev() const { return meta(meta_dev_.as<std::int32_t>(), 1); }
  const std::int32_t* seq_dev() const { return meta(meta_dev_.as<std::int32_t>(), 2); }
  const std::int32_t* slots_dev() const { return meta(meta_dev_.as<std::int32_t>(), 3); }
  const std::int32_t* logit_rows_dev() const { return meta(meta_dev_.as<std::int32_t>(), 4); }
  const std::int32_t* seq_table_dev() const { return meta(meta_dev_.as<std::int32_t>(), 5); }
  const std::int32_t* blocks_dev() const { return meta(meta_dev_.as<std::int32_t>(), 6); }

  // Checks the batch exactly as the CPU backend does (and the block ids, which the device must
  // not read past), and fills the pinned metadata.
  Step stage(std::span<const StepSequence> batch) {
    Step step;
    for (const auto& seq : batch) {
      if (seq.start_pos < 0) throw std::invalid_argument("sequence start position is negative");
      if (static_cast<std::int64_t>(seq.blocks.size()) * kv_.block_size <
          seq.start_pos + static_cast<std::int64_t>(seq.tokens.size())) {
        throw std::invalid_argument("sequence block table does not cover its positions");
      }
      step.n_tokens += static_cast<std::int64_t>(seq.tokens.size());
    }
    if (step.n_tokens == 0) return step;
    if (step.n_tokens > max_tokens_)
      throw std::invalid_argument("batch of " + std::to_string(step.n_tokens) + " tokens exceeds max_batch_tokens");
    std::int32_t* host = meta_host_.as<std::int32_t>();
    std::int32_t *ids = meta(host, 0), *pos = meta(host, 1), *seq_of = meta(host, 2), *slots = meta(host, 3),
                 *logit_rows = meta(host, 4), *seq_table = meta(host, 5), *tables = meta(host, 6);
    std::int64_t t = 0, n_seq = 0;
    for (const auto& seq : batch) {
      if (seq.tokens.empty()) continue;
      const std::int64_t end = seq.start_pos + static_cast<std::int64_t>(seq.tokens.size());
      if (end > std::numeric_limits<std::int32_t>::max()) throw std::invalid_argument("sequence position out of range");
      const auto need = static_cast<std::size_t>((end + kv_.block_size - 1) / kv_.block_size);
      if (step.table_len + need > table_cap_)
        throw std::invalid_argument("the batch's block tables are longer than the KV cache has blocks");
      for (std::size_t b = 0; b < need; ++b) {
        const std::int32_t block = seq.blocks[b];
        if (block < 0 || block >= kv_.n_blocks)
          throw std::invalid_argument("block " + std::to_string(block) + " is outside the KV cache");
        tables[step.table_len + b] = block;
      }
      seq_table[n_seq] = static_cast<std::int32_t>(step.table_len);
      for (std::size_t j = 0; j < seq.tokens.size(); ++j, ++t) {
        const std::int32_t id = seq.tokens[j];
        if (id < 0 || id >= c_.n_vocab)
          throw std::invalid_argument("token id " + std::to_string(id) + " outside the vocabulary");
        const std::int64_t p = seq.start_pos + static_cast<std::int64_t>(j);
        ids[t] = id;
        pos[t] = static_cast<std::int32_t>(p);
        seq_of[t] = static_cast<std::int32_t>(n_seq);
        slots[t] = seq.blocks[static_cast<std::size_t>(p / kv_.block_size)] * kv_.block_size +
                   static_cast<std::int32_t>(p % kv_.block_size);
      }
      if (seq.want_logits) logit_rows[step.n_logits++] = static_cast<std::int32_t>(t - 1);
      step.table_len += need;
      ++n_seq;
    }
    return step;
  }

  void upload_weights() {
    // Sizes first, then one allocation, then the copies.
    Layout layout;
    std::vector<std::size_t> at;
    const auto plan_matrix = [&](const kernels::WeightMatrix& w) { at.push_back(layout.take(kg::device_bytes(w))); };
    const auto plan_vector = [&] { at.push_back(layout.take(kg::device_bytes_f32(c_.n_embd))); };
    const bool tied = model_->output().data == model_->token_embedding().data;
    plan_matrix(model_->token_embedding());
    if (!tied) plan_matrix(model_->output());
    plan_vector();
    for (const auto& l : model_->layers()) {
      plan_vector();
      plan_vector();
      for (const auto* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) plan_matrix(*w);
    }
    weights_ = kg::DeviceBuffer(layout.size());
    auto* base = weights_.as<std::uint8_t>();
    std::size_t i = 0;
    const auto next = [&] { return base + at[i++]; };
    tok_embd_ = kg::upload(model_->token_embedding(), next());
    output_ = tied ? tok_embd_ : kg::upload(model_->output(), next());
    output_norm_ = kg::upload_f32(model_->output_norm(), c_.n_embd, next());
    for (const auto& l : model_->layers()) {
      DeviceLayer dl;
      dl.attn_norm = kg::upload_f32(l.attn_norm, c_.n_embd, next());
      dl.ffn_norm = kg::upload_f32(l.ffn_norm, c_.n_embd, next());
      dl.wq = kg::upload(l.wq, next());
      dl.wk = kg::upload(l.wk, next());
      dl.wv = kg::upload(l.wv, next());
      dl.wo = kg::upload(l.wo, next());
      dl.w_gate = kg::upload(l.w_gate, next());
      dl.w_up = kg::upload(l.w_up, next());
      dl.w_down = kg::upload(l.w_down, next());
      layers_.push_back(dl);
    }
  }

  void allocate_state() {
    const auto T = static_cast<std::size_t>(max_tokens_);
    const auto d = static_cast<std::size_t>(c_.n_embd), kvd = static_cast<std::size_t>(c_.kv_dim()),
               ff = static_cast<std::size_t>(c_.n_ff), vocab = static_cast<std::size_t>(c_.n_vocab);
    layer_stride_ = static_cast<std::int64_t>(static_cast<std::size_t>(kv_.n_blocks) * static_cast<std::size_t>(kv_.block_size) * kvd);
    cache_ = kg::DeviceBuffer(2 * static_cast<std::size_t>(layer_stride_) * static_cast<std::size_t>(c_.n_layer) * sizeof(float));
    k_cache_ = cache_.as<float>();
    v_cache_ = k_cache_ + layer_stride_ * c_.n_layer;
    kg::fill_zero(cache_.data(), cache_.bytes(), stream_.get());

    std::int64_t act = 0, wsc = 0;
    const auto need = [&](const kg::DeviceMatrix& w) {
      act = std::max(act, kg::matmul_act_f16_elems(w, max_tokens_));
      wsc = std::max(wsc, kg::matmul_w_f16_elems(w, max_tokens_));
    };
    need(output_);
    for (const auto& l : layers_)
      for (const auto* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) need(*w);

    Layout layout;
    const std::size_t x = layout.take(T * d * 4), h = layout.take(T * d * 4), q = layout.take(T * d * 4),
                      k = layout.take(T * kvd * 4), v = layout.take(T * kvd * 4), att = layout.take(T * d * 4),
                      tmp = layout.take(T * d * 4), gate = layout.take(T * ff * 4), up = layout.take(T * ff * 4),
                      lg = layout.take(T * vocab * 4), a16 = layout.take(static_cast<std::size_t>(act) * 2),
                      w16 = layout.take(static_cast<std::size_t>(wsc) * 2);
    activations_ = kg::DeviceBuffer(layout.size());
    auto* base = activations_.as<std::uint8_t>();
    const auto f = [&](std::size_t off) { return reinterpret_cast<float*>(base + off); };
    x_ = f(x), h_ = f(h), q_ = f(q), k_ = f(k), v_ = f(v), att_ = f(att), tmp_ = f(tmp), gate_ = f(gate), up_ = f(up);
    logits_dev_ = f(lg);
    scratch_.act_f16 = act > 0 ? base + a16 : nullptr;
    scratch_.act_f16_elems = act;
    scratch_.w_f16 = wsc > 0 ? base + w16 : nullptr;
    scratch_.w_f16_elems = wsc;

    // Each sequence of a step has at least one token, so at most max_tokens tables, and in a
    // well-formed batch they share no block; the slack allows a few shared ones.
    table_cap_ = static_cast<std::size_t>(kv_.n_blocks) + T;
    const std::size_t meta_bytes = (6 * T + table_cap_) * sizeof(std::int32_t);
    meta_host_ = kg::PinnedBuffer(meta_bytes);
    meta_dev_ = kg::DeviceBuffer(meta_bytes);
    stream_.synchronize();
  }

  std::shared_ptr<const Model> model_;
  const LlamaConfig& c_;
  KvGeometry kv_;
  std::int64_t max_tokens_;
  std::string description_;
  int gpu_;
  kg::StreamOwner stream_;
  kg::Blas blas_;

  kg::DeviceBuffer weights_;
  kg::DeviceMatrix tok_embd_, output_;
  const float* output_norm_ = nullptr;
  std::vector<DeviceLayer> layers_;

  kg::DeviceBuffer cache_;
  float* k_cache_ = nullptr;
  float* v_cache_ = nullptr;
  std::int64_t layer_stride_ = 0;  // floats per layer in each of the K and V caches

  kg::DeviceBuffer activations_;
  float *x_ = nullptr, *h_ = nullptr, *q_ = nullptr, *k_ = nullptr, *v_ = nullptr, *att_ = nullptr, *tmp_ = nullptr,
        *gate_ = nullptr, *up_ = nullptr, *logits_dev_ = nullptr;
  kg::MatmulScratch scratch_;

  std::size_t table_cap_ = 0;
  kg::PinnedBuffer meta_host_;
  kg::DeviceBuffer meta_dev_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(std::shared_ptr<const Model> model, KvGeometry kv, int gpu_index,
                                           std::int64_t max_batch_tokens) {
  if (kv.n_blocks <= 0 || kv.block_size <= 0) throw std::invalid_argument("KV geometry needs blocks");
  if (max_batch_tokens <= 0) throw std::invalid_argument("max_batch_tokens must be positive");
  if (kv.type != KvType::f32) {
    throw DeviceError("the CUDA backend keeps its KV cache in F32; set engine.kv_cache_type = \"f32\" or \"auto\"");
  }
  return std::make_unique<CudaBackend>(std::move(model), kv, gpu_index, max_batch_tokens);
}

#else

std::unique_ptr<Backend> make_cuda_backend(std::shared_ptr<const Model>, KvGeometry, int, std::int64_t) {
  throw DeviceError("this build has no CUDA backend (built with INFERGATE_CUDA=OFF or without nvcc); "
                    "set engine.device = auto or cpu to run on the CPU");
}

#endif

}  // namespace infergate::engine
