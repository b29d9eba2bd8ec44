#include <algorithm>
#include <stdexcept>

#include "infergate/engine/scheduler.h"

namespace infergate::engine {

using Clock = std::chrono::steady_clock;

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::stop: return "stop";
    case FinishReason::length: return "length";
    case FinishReason::cancelled: return "cancelled";
    case FinishReason::error: return "error";
    case FinishReason::none: return "none";
  }
  return "none";
}

struct Scheduler::Sequence {
  Id id;
  GenerationRequest req;
  std::vector<std::int32_t> tokens;  // prompt, then every generated token
  std::int64_t prompt_len;
  std::int64_t max_new;              // max_tokens, bounded by the context
  std::int64_t cached = 0;           // positions whose keys/values are in the cache
  std::int64_t max_cached = 0;       // the most ever cached (preemption resets `cached`)
  std::int64_t cache_hit = 0;        // positions taken from the prefix cache when first scheduled
  std::int64_t published = 0;        // leading prompt blocks published (or taken from the cache)
  BlockTable blocks;
  Sampler sampler;
  StreamDecoder decoder;
  StopMatcher stops;
  Clock::time_point submitted = Clock::now();
  std::optional<Clock::time_point> scheduled, first_token;
  bool running = false;
  bool done = false;

  Sequence(Id i, GenerationRequest r, const Tokenizer& tok, std::int64_t ctx, std::uint64_t seed)
      : id(i), req(std::move(r)), tokens(req.prompt), prompt_len(static_cast<std::int64_t>(tokens.size())),
        max_new(std::min(req.sampling.max_tokens, ctx - prompt_len)), sampler(req.sampling, seed),
        decoder(tok), stops(req.sampling.stop) {}
  std::int64_t generated() const { return static_cast<std::int64_t>(tokens.size()) - prompt_len; }
  bool prefilling() const { return cached < static_cast<std::int64_t>(tokens.size()) - 1 || generated() == 0; }
};

Scheduler::Scheduler(std::shared_ptr<const Model> model, std::unique_ptr<Backend> backend, SchedulerOptions options)
    : model_(std::move(model)), backend_(std::move(backend)), opt_(options), pool_(options.kv_blocks, options.block_size),
      seed_counter_(static_cast<std::uint64_t>(Clock::now().time_since_epoch().count())) {
  if (opt_.max_batch_tokens < 1 || opt_.max_seqs < 1) throw std::invalid_argument("max_batch_tokens and max_seqs must be positive");
  logits_.resize(static_cast<std::size_t>(opt_.max_seqs) * static_cast<std::size_t>(model_->config().n_vocab));
  stats_.kv_blocks_total = pool_.total();
}

Scheduler::~Scheduler() {
  std::vector<Id> left;
  for (const auto& [id, s] : seqs_) left.push_back(id);
  for (const Id id : left) {
    if (const auto it = seqs_.find(id); it != seqs_.end()) finish(it->second.get(), FinishReason::cancelled);
  }
}

void Scheduler::add(Id id, GenerationRequest r) {
  const auto& c = model_->config();
  const auto n = static_cast<std::int64_t>(r.prompt.size());
  if (n == 0) throw std::invalid_argument("the prompt is empty");
  if (n >= c.n_ctx_train) {
    throw std::invalid_argument("the prompt has " + std::to_string(n) + " tokens; the model's context is " +
                                std::to_string(c.n_ctx_train) + " tokens, leaving no room to generate");
  }
  if (pool_.blocks_for(n + 1) > pool_.total()) {
    throw std::invalid_argument("the prompt has " + std::to_string(n) + " tokens; the KV cache holds at most " +
                                std::to_string(static_cast<std::int64_t>(pool_.total()) * pool_.block_size() - 1));
  }
  for (const auto t : r.prompt) {
    if (t < 0 || t >= c.n_vocab) throw std::invalid_argument("token id " + std::to_string(t) + " is outside the vocabulary");
  }
  if (r.sampling.max_tokens < 1) throw std::invalid_argument("max_tokens must be at least 1");
  if (r.weight == 0) r.weight = 1;
  if (seqs_.count(id) != 0) throw std::invalid_argument("duplicate sequence id");
  auto seq = std::make_unique<Sequence>(id, std::move(r), model_->tokenizer(), c.n_ctx_train, seed_counter_++);
  TenantQueue& tq = tenants_[seq->req.tenant];
  tq.weight = seq->req.weight;
  const bool was_idle = tq.waiting.empty();
  // A tenant coming back from idle starts at the current virtual time: no banked credit.
  if (was_idle) tq.pass = std::max(tq.pass, virtual_time_);
  tq.waiting.push_back(seq.get());
  ++waiting_count_;
  seqs_.emplace(id, std::move(seq));
}

void Scheduler::cancel(Id id) { cancel_requests_.push_back(id); }

void Scheduler::cancel_all() {
  for (const auto& [id, s] : seqs_) {
    if (!s->done) cancel_requests_.push_back(id);
  }
}

bool Scheduler::started(Id id) const {
  const auto it = seqs_.find(id);
  return it != seqs_.end() && it->second->scheduled.has_value();
}

void Scheduler::apply_cancellations() {
  for (const Id id : cancel_requests_) {
    const auto it = seqs_.find(id);
    if (it == seqs_.end() || it->second->done) continue;
    Sequence* s = it->second.get();
    if (!s->running) {
      auto drop = [s](std::deque<Sequence*>& q) { return std::erase(q, s) > 0; };
      bool was_waiting = drop(preempted_);
      if (auto t = tenants_.find(s->req.tenant); t != tenants_.end()) was_waiting = drop(t->second.waiting) || was_waiting;
      if (was_waiting) --waiting_count_;
    }
    finish(s, FinishReason::cancelled);
  }
  cancel_requests_.clear();
}

Scheduler::Sequence* Scheduler::pick_next() {
  if (!preempted_.empty()) return preempted_.front();
  TenantQueue* best = nullptr;
  for (auto& [name, tq] : tenants_) {
    if (!tq.waiting.empty() && (best == nullptr || tq.pass < best->pass)) best = &tq;
  }
  return best == nullptr ? nullptr : best->waiting.front();
}

void Scheduler::admit() {
  // Forget idle tenants that hold no debt; their return starts at the virtual time anyway.
  std::erase_if(tenants_, [this](const auto& kv) { return kv.second.waiting.empty() && kv.second.pass <= virtual_time_; });
  while (static_cast<std::int32_t>(running_.size()) < opt_.max_seqs) {
    Sequence* s = pick_next();
    if (s == nullptr) return;
    // The whole prompt (and the first token) must fit now, so prefill never needs preemption.
    const std::int32_t reused = take_cached_prefix(*s);
    const auto need = pool_.blocks_for(static_cast<std::int64_t>(s->tokens.size()) + 1) - reused;
    if (need > pool_.free_count()) {
      s->blocks.release(pool_);  // the cached blocks it took wait with it
      return;
    }
    s->cached = static_cast<std::int64_t>(reused) * pool_.block_size();
    s->published = reused;
    s->max_cached = std::max(s->max_cached, s->cached);
    stats_.prefix_cache_hit_tokens += static_cast<std::uint64_t>(s->cached);
    if (!preempted_.empty() && preempted_.front() == s) {
      preempted_.pop_front();
    } else {
      TenantQueue& tq = tenants_[s->req.tenant];
      tq.waiting.pop_front();
      virtual_time_ = tq.pass;
      tq.pass += 1.0 / tq.weight;
    }
    --waiting_count_;
    s->blocks.reserve(pool_, static_cast<std::int64_t>(s->tokens.size()) + 1);
    s->running = true;
    if (!s->scheduled) {
      s->scheduled = Clock::now();
      s->cache_hit = s->cached;
    }
    running_.push_back(s);
  }
}

std::int32_t Scheduler::take_cached_prefix(Sequence& s) {
  if (!opt_.prefix_cache) return 0;
  // Never the block of the prompt's last token: its logits are needed, so it is computed.
  const std::int64_t bs = pool_.block_size();
  BlockPool::Ref parent;
  std::int32_t n = 0;
  while ((n + 1) * bs <= s.prompt_len - 1) {
    const auto b = pool_.take_cached(parent, std::span(s.tokens).subspan(static_cast<std::size_t>(n * bs),
                                                                        static_cast<std::size_t>(bs)));
    if (!b) break;
    s.blocks.adopt(*b);
    parent = pool_.ref(*b);
    ++n;
  }
  return n;
}

void Scheduler::publish_prompt_blocks(Sequence& s) {
  if (!opt_.prefix_cache) return;
  const std::int64_t bs = pool_.block_size();
  const std::int64_t full = std::min(s.cached, s.prompt_len) / bs;
  const auto& blocks = s.blocks.blocks();
  for (; s.published < full; ++s.published) {
    const auto b = static_cast<std::size_t>(s.published);
    const BlockPool::Ref parent = b == 0 ? BlockPool::Ref{} : pool_.ref(blocks[b - 1]);
    pool_.publish(blocks[b], parent, std::span(s.tokens).subspan(b * static_cast<std::size_t>(bs), static_cast<std::size_t>(bs)));
  }
}

void Scheduler::preempt(Sequence* s) {
  s->blocks.release(pool_);
  s->cached = 0;  // recomputed from its tokens (prompt + generated) when readmitted
  s->published = 0;
  s->running = false;
  std::erase(running_, s);
  preempted_.push_front(s);
  ++waiting_count_;
  ++stats_.preemptions;
}

void Scheduler::finish(Sequence* s, FinishReason reason, std::string error) {
  if (s->done) return;
  s->done = true;
  s->blocks.release(pool_);
  if (s->running) {
    s->running = false;
    std::erase(running_, s);
  }
  GenerationEvent ev;
  ev.finished = true;
  if (reason != FinishReason::cancelled && reason != FinishReason::error) {
    ev.text = s->decoder.finish();
    ev.text = s->stops.push(ev.text);
    if (!s->stops.stopped()) ev.text += s->stops.finish();
  }
  ev.prompt_tokens = s->prompt_len;
  ev.completion_tokens = s->generated();
  ev.prompt_tokens_processed = std::min(s->max_cached, s->prompt_len);
  ev.cached_prompt_tokens = std::min(s->cache_hit, ev.prompt_tokens_processed);
  ev.reason = reason;
  ev.error = std::move(error);
  if (s->scheduled) ev.queue_time = *s->scheduled - s->submitted;
  if (s->first_token) ev.time_to_first_token = *s->first_token - s->submitted;
  ev.at = Clock::now();
  const Id id = s->id;
  EventCallback cb = std::move(s->req.on_event);
  seqs_.erase(id);  // s is gone from here on
  if (cb) cb(ev);
}

void Scheduler::deliver(Sequence& s, std::int32_t token) {
  s.tokens.push_back(token);
  ++stats_.generated_tokens;
  if (!s.first_token) s.first_token = Clock::now();
  const Tokenizer& tok = model_->tokenizer();
  const bool eos = (!s.req.sampling.ignore_eos && token == tok.eos()) ||
                   std::find(s.req.sampling.stop_tokens.begin(), s.req.sampling.stop_tokens.end(), token) !=
                       s.req.sampling.stop_tokens.end();
  GenerationEvent ev;
  ev.token = token;
  ev.prompt_tokens_processed = s.prompt_len;
  if (!eos) ev.text = s.stops.push(s.decoder.push(token));
  ev.prompt_tokens = s.prompt_len;
  ev.completion_tokens = s.generated();
  ev.at = Clock::now();
  if (s.req.on_event) s.req.on_event(ev);
  if (eos || s.stops.stopped()) {
    finish(&s, FinishReason::stop);
  } else if (s.generated() >= s.max_new) {
    finish(&s, FinishReason::length);
  }
}

bool Scheduler::step() {
  apply_cancellations();
  admit();
  if (running_.empty()) return false;

  // Decode tokens first: each running sequence past its prefill needs one more position. When
  // the pool is dry, the newest sequence gives its blocks back (possibly the one asking).
  for (std::size_t i = 0; i < running_.size();) {
    Sequence* s = running_[i];
    if (s->prefilling() || s->blocks.reserve(pool_, s->cached + 1)) {
      ++i;
      continue;
    }
    preempt(running_.back());
  }
  std::vector<StepSequence> batch;
  std::vector<Sequence*> in_batch;
  std::int64_t budget = opt_.max_batch_tokens;
  for (Sequence* s : running_) {
    if (s->prefilling() || budget == 0) continue;
    batch.push_back({std::span(s->tokens).subspan(static_cast<std::size_t>(s->cached), 1), s->cached, s->blocks.blocks(), true});
    in_batch.push_back(s);
    --budget;
  }
  // Then a bounded chunk of prefill, oldest sequence first.
  for (Sequence* s : running_) {
    if (!s->prefilling() || budget == 0) continue;
    const std::int64_t left = static_cast<std::int64_t>(s->tokens.size()) - s->cached;
    const std::int64_t n = std::min(left, budget);
    batch.push_back({std::span(s->tokens).subspan(static_cast<std::size_t>(s->cached), static_cast<std::size_t>(n)),
                     s->cached, s->blocks.blocks(), n == left});
    in_batch.push_back(s);
    budget -= n;
    stats_.prompt_tokens += static_cast<std::uint64_t>(n);
  }
  if (batch.empty()) return false;
  try {
    backend_->forward(batch, logits_.data());
  } catch (const std::exception& e) {
    for (Sequence* s : in_batch) finish(s, FinishReason::error, e.what());
    return true;
  }
  ++stats_.steps;
  const auto n_vocab = static_cast<std::size_t>(model_->config().n_vocab);
  std::size_t row = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    Sequence* s = in_batch[i];
    s->cached += static_cast<std::int64_t>(batch[i].tokens.size());
    s->max_cached = std::max(s->max_cached, s->cached);
    if (s->published * pool_.block_size() < s->prompt_len) publish_prompt_blocks(*s);
    if (!batch[i].want_logits) continue;
    const std::int32_t token = s->sampler.sample(std::span(logits_).subspan(row * n_vocab, n_vocab));
    ++row;
    deliver(*s, token);
  }
  return true;
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats st = stats_;
  st.waiting = waiting_count_;
  st.running = static_cast<std::int64_t>(running_.size());
  st.kv_blocks_used = pool_.used();
  st.kv_blocks_total = pool_.total();
  st.kv_blocks_cached = pool_.cached_count();
  return st;
}

}  // namespace infergate::engine
