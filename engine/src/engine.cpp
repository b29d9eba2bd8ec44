#include <pthread.h>
#include <stdexcept>
#include <utility>

#include "infergate/engine/engine.h"

namespace infergate::engine {

namespace {
// The same up-front checks the scheduler makes, on the caller's thread, so a bad request is
// refused synchronously rather than through a callback.
void check(const Model& m, const SchedulerOptions& o, const GenerationRequest& r) {
  const auto n = static_cast<std::int64_t>(r.prompt.size());
  const auto& c = m.config();
  if (n == 0) throw std::invalid_argument("the prompt is empty");
  if (n >= c.n_ctx_train) {
    throw std::invalid_argument("the prompt has " + std::to_string(n) + " tokens; the model's context is " +
                                std::to_string(c.n_ctx_train) + " tokens, leaving no room to generate");
  }
  if ((n + 1 + o.block_size - 1) / o.block_size > o.kv_blocks) {
    throw std::invalid_argument("the prompt has " + std::to_string(n) + " tokens, more than the KV cache holds");
  }
  if (r.sampling.max_tokens < 1) throw std::invalid_argument("max_tokens must be at least 1");
  for (const auto t : r.prompt) {
    if (t < 0 || t >= c.n_vocab) throw std::invalid_argument("token id " + std::to_string(t) + " is outside the vocabulary");
  }
}
}  // namespace

Engine::Engine(std::shared_ptr<const Model> model, std::unique_ptr<Backend> backend, SchedulerOptions options)
    : model_(model), device_(backend->describe()), options_(options),
      scheduler_(std::make_unique<Scheduler>(std::move(model), std::move(backend), options)) {
  last_stats_ = scheduler_->stats();
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "ig-engine");  // one name for top -H and perf
    loop();
  });
}

Engine::~Engine() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  // Requests still in the inbox never reached the scheduler: finish them here.
  for (auto& [h, r] : inbox_) {
    GenerationEvent ev;
    ev.finished = true;
    ev.at = std::chrono::steady_clock::now();
    ev.reason = FinishReason::cancelled;
    ev.prompt_tokens = static_cast<std::int64_t>(r.prompt.size());
    if (r.on_event) r.on_event(ev);
  }
  scheduler_.reset();  // finishes the rest as cancelled
}

Engine::Handle Engine::submit(GenerationRequest request) {
  check(*model_, options_, request);
  Handle h;
  {
    std::lock_guard lock(mu_);
    if (stop_) throw std::runtime_error("the engine is shutting down");
    h = next_handle_++;
    inbox_.emplace_back(h, std::move(request));
  }
  wake_.notify_one();
  return h;
}

void Engine::cancel(Handle h) {
  {
    std::lock_guard lock(mu_);
    cancels_.push_back(h);
  }
  wake_.notify_one();
}

void Engine::cancel_all() {
  {
    std::lock_guard lock(mu_);
    cancel_all_ = true;  // applied after the inbox reaches the scheduler: it covers those too
  }
  wake_.notify_one();
}

EngineStats Engine::stats() const {
  std::lock_guard lock(mu_);
  EngineStats s;
  s.scheduler = last_stats_;
  s.scheduler.waiting += static_cast<std::int64_t>(inbox_.size());
  s.tokens_per_second = tokens_per_second_;
  s.device = device_;
  return s;
}

void Engine::loop() {
  using Clock = std::chrono::steady_clock;
  std::vector<std::pair<Handle, GenerationRequest>> incoming;
  std::vector<Handle> cancels;
  bool cancel_everything = false;
  auto window_start = Clock::now();
  std::uint64_t window_tokens = scheduler_->stats().generated_tokens;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [&] {
        return stop_ || !inbox_.empty() || !cancels_.empty() || cancel_all_ || !scheduler_->idle();
      });
      if (stop_) return;
      incoming.swap(inbox_);
      cancels.swap(cancels_);
      cancel_everything = std::exchange(cancel_all_, false);
    }
    for (auto& [h, r] : incoming) {
      try {
        scheduler_->add(h, std::move(r));
      } catch (const std::invalid_argument& e) {  // checked in submit; kept for safety
        GenerationEvent ev;
        ev.finished = true;
    ev.at = std::chrono::steady_clock::now();
        ev.reason = FinishReason::error;
        ev.error = e.what();
        if (r.on_event) r.on_event(ev);
      }
    }
    const bool changed = !incoming.empty() || !cancels.empty() || cancel_everything;
    incoming.clear();
    for (const Handle h : cancels) scheduler_->cancel(h);
    cancels.clear();
    if (cancel_everything) scheduler_->cancel_all();
    cancel_everything = false;
    if (changed) {
      // What was just taken from the inbox is the scheduler's now: counted in stats() during the
      // step too (a long one, a big prefill, would otherwise hide it from the router's load).
      const SchedulerStats before = scheduler_->stats();
      std::lock_guard lock(mu_);
      last_stats_ = before;
    }
    scheduler_->step();
    const SchedulerStats st = scheduler_->stats();
    const auto now = Clock::now();
    std::lock_guard lock(mu_);
    last_stats_ = st;
    const double secs = std::chrono::duration<double>(now - window_start).count();
    if (secs >= 1.0) {
      tokens_per_second_ = static_cast<double>(st.generated_tokens - window_tokens) / secs;
      window_start = now;
      window_tokens = st.generated_tokens;
    } else if (scheduler_->idle() && secs > 0.2) {
      tokens_per_second_ = 0;
    }
  }
}

}  // namespace infergate::engine
