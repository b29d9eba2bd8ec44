#include "infergate/gateway/models.h"

#include <algorithm>
#include <stdexcept>
#include <thread>

#include "infergate/engine/backend.h"
#include "infergate/engine/device.h"
#include "infergate/infra/log.h"

namespace infergate::gateway {

namespace {

std::size_t tier_rank(const infra::RoutingConfig& r, const std::string& tier) {
  return static_cast<std::size_t>(std::find(r.tiers.begin(), r.tiers.end(), tier) - r.tiers.begin());
}

std::unique_ptr<ServedModel> load(const infra::Config& cfg, const infra::ModelConfig& mc) {
  auto m = std::make_unique<ServedModel>();
  m->name = mc.name;
  m->tier = mc.tier;
  m->tier_rank = tier_rank(cfg.routing, mc.tier);
  m->aliases = mc.aliases;
  const std::string what = "model '" + mc.name + "' (" + mc.file + ")";
  try {
    m->model = engine::Model::load(mc.file);
  } catch (const std::exception& e) {
    throw std::runtime_error(what + ": " + e.what());
  }
  const auto& c = m->model->config();
  m->context_length = mc.context_length > 0 ? mc.context_length : c.n_ctx_train;
  if (m->context_length > c.n_ctx_train) {
    throw std::runtime_error(what + ": context_length " + std::to_string(mc.context_length) +
                             " is longer than the model's own (" + std::to_string(c.n_ctx_train) + ")");
  }
  const auto& tok = m->model->tokenizer();
  m->chat = !mc.chat_template.empty() ? *engine::parse_chat_style(mc.chat_template)
                                      : engine::detect_chat_style(tok.spec().chat_template);
  for (const auto& text : engine::chat_stop_strings(m->chat)) {
    if (const auto id = tok.find(text)) m->stop_tokens.push_back(*id);
  }
  for (std::int32_t id = 0; id < static_cast<std::int32_t>(tok.vocab_size()); ++id) {
    if (tok.is_control(id) && !tok.token_bytes(id).empty()) m->reserved_texts.push_back(tok.token_bytes(id));
  }

  const auto choice = engine::parse_device_choice(mc.device.empty() ? cfg.engine.device : mc.device);
  const auto cpu = kernels::detect_cpu();
  engine::ResolvedDevice resolved;
  try {
    resolved = engine::resolve_device(choice, cpu, kernels::detect_gpus());  // throws for cuda without GPU
  } catch (const std::exception& e) {
    throw std::runtime_error(what + ": " + e.what());
  }
  const unsigned threads = cfg.engine.threads > 0 ? static_cast<unsigned>(cfg.engine.threads)
                                                  : engine::auto_cpu_threads(*m->model, std::thread::hardware_concurrency());
  engine::SchedulerOptions so;
  so.max_batch_tokens = cfg.engine.max_batch_tokens;
  so.max_seqs = cfg.engine.max_seqs;
  so.kv_blocks = cfg.engine.kv_blocks;
  so.block_size = cfg.engine.block_size;
  so.prefix_cache = cfg.engine.prefix_cache;
  // KV cache type: F16 halves its memory and the bytes attention reads, at a rounding of keys
  // and values far below that of quantized weights; F32 models keep F32 (their point is exactness).
  const std::string& kv_choice = cfg.engine.kv_cache_type;
  const bool f32_weights = m->model->weight_type() == "F32";
  const engine::KvGeometry kv{so.kv_blocks, so.block_size,
                              kv_choice == "f16" || (kv_choice == "auto" && !f32_weights) ? engine::KvType::f16
                                                                                          : engine::KvType::f32};
  std::unique_ptr<engine::Backend> backend;
  if (resolved.cuda) {
    try {
      engine::KvGeometry gpu_kv = kv;
      if (kv_choice == "auto") gpu_kv.type = engine::KvType::f32;  // the CUDA cache is F32
      backend = engine::make_cuda_backend(m->model, gpu_kv, resolved.gpu_index, so.max_batch_tokens);
      // Not on the GPU: its step's block tables are sized for sequences that share no block,
      // and its products are not batch-invariant (a reused block would not be bit for bit the
      // one the request computes itself).
      so.prefix_cache = false;
    } catch (const std::exception& e) {
      // device = cuda is a promise the operator made; auto only prefers the GPU.
      if (choice == engine::DeviceChoice::cuda) throw std::runtime_error(what + ": " + e.what());
      infra::log::warn("the model does not fit or run on the GPU; using the CPU",
                       {{"model", mc.name}, {"gpu", resolved.description}, {"error", std::string(e.what())}});
    }
  }
  if (!backend) backend = engine::make_cpu_backend(m->model, kv, threads, so.max_batch_tokens);
  m->device = backend->describe();
  m->engine = std::make_unique<engine::Engine>(m->model, std::move(backend), so);
  infra::log::info("model loaded", {{"model", m->name},
                                    {"tier", m->tier},
                                    {"file", mc.file},
                                    {"weights", m->model->weight_type()},
                                    {"layers", c.n_layer},
                                    {"context", m->context_length},
                                    {"chat_format", std::string(engine::chat_style_name(m->chat))},
                                    {"device", m->device}});
  return m;
}

}  // namespace

ModelRegistry::ModelRegistry(const infra::Config& cfg) : routing_(cfg.routing) {
  for (const auto& mc : cfg.models) models_.push_back(load(cfg, mc));
}

ModelRegistry::ModelRegistry(std::vector<std::unique_ptr<ServedModel>> models, infra::RoutingConfig routing)
    : models_(std::move(models)), routing_(std::move(routing)) {
  for (auto& m : models_) m->tier_rank = tier_rank(routing_, m->tier);
}

void ModelRegistry::cancel_all_generations() {
  for (auto& m : models_) {
    if (m->engine) m->engine->cancel_all();
  }
}

bool ModelRegistry::generating() const {
  for (const auto& m : models_) {
    if (!m->engine) continue;
    const auto st = m->engine->stats().scheduler;
    if (st.running + st.waiting > 0) return true;
  }
  return false;
}

void ModelRegistry::stop_engines() {
  for (auto& m : models_) m->engine.reset();
}

const ServedModel* ModelRegistry::find(std::string_view name) const {
  for (const auto& m : models_) {
    if (m->name == name) return m.get();
    for (const auto& a : m->aliases) {
      if (a == name) return m.get();
    }
  }
  return nullptr;
}

}  // namespace infergate::gateway
