// Continuous batching over one model: each step() runs the decode token of every running
// sequence plus a bounded chunk of prefill, within max_batch_tokens and max_seqs. Waiting
// requests are admitted weighted-fair across tenants (stride scheduling: each admission
// advances its tenant's pass by 1/weight and the lowest pass goes next, so a tenant with a
// deep backlog cannot starve one with a single request). KV blocks come from a fixed pool; when
// decode runs out, the newest sequence is preempted (blocks freed) and later recomputed. With
// prefix caching, the full blocks of a prompt are published once computed, and a prompt that
// starts with the same blocks takes them instead of computing them (kv_cache.h).
// Single-threaded: the Engine owns one and drives it from its thread; tests drive it directly.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "infergate/engine/backend.h"
#include "infergate/engine/generation.h"
#include "infergate/engine/kv_cache.h"
#include "infergate/engine/model.h"

namespace infergate::engine {

struct SchedulerOptions {
  std::int64_t max_batch_tokens = 512;
  std::int32_t max_seqs = 16;
  std::int32_t kv_blocks = 256;
  std::int32_t block_size = 16;
  bool prefix_cache = true;  // reuse the cached KV blocks of prompts that start the same way
};

struct SchedulerStats {
  std::int64_t waiting = 0;
  std::int64_t running = 0;
  std::int32_t kv_blocks_used = 0;
  std::int32_t kv_blocks_total = 0;
  std::uint64_t steps = 0;
  std::uint64_t preemptions = 0;
  std::uint64_t prompt_tokens = 0;     // prefill tokens computed (recomputes included)
  std::uint64_t generated_tokens = 0;  // tokens sampled
  std::uint64_t prefix_cache_hit_tokens = 0;  // prompt positions taken from cached blocks
  std::int32_t kv_blocks_cached = 0;          // blocks published for reuse (held or not)
};

class Scheduler {
 public:
  using Id = std::uint64_t;
  Scheduler(std::shared_ptr<const Model> model, std::unique_ptr<Backend> backend, SchedulerOptions options);
  ~Scheduler();  // cancels whatever is left (callbacks get their finished event)

  // Queues a request; throws std::invalid_argument with a clear message when it can never run
  // (empty prompt, prompt at or over the context length or the KV pool, bad parameters).
  void add(Id id, GenerationRequest request);
  // Takes effect at the next step: the sequence's blocks return and it finishes "cancelled".
  void cancel(Id id);
  // The same for every sequence it holds.
  void cancel_all();
  // One iteration; false when there was nothing to do.
  bool step();
  bool idle() const { return running_.empty() && waiting_count_ == 0; }

  SchedulerStats stats() const;
  const BlockPool& pool() const { return pool_; }
  // Whether a request has been scheduled (prefill begun) at least once (tests of fairness).
  bool started(Id id) const;
  const SchedulerOptions& options() const { return opt_; }

 private:
  struct Sequence;
  struct TenantQueue {
    std::deque<Sequence*> waiting;
    double pass = 0;
    std::uint32_t weight = 1;
  };

  void admit();
  Sequence* pick_next();
  void preempt(Sequence* s);
  void finish(Sequence* s, FinishReason reason, std::string error = {});
  void deliver(Sequence& s, std::int32_t token);
  void apply_cancellations();
  // Takes the cached blocks of the sequence's prompt, as far as they go; returns how many.
  std::int32_t take_cached_prefix(Sequence& s);
  // Publishes the sequence's prompt blocks that are now full.
  void publish_prompt_blocks(Sequence& s);

  std::shared_ptr<const Model> model_;
  std::unique_ptr<Backend> backend_;
  SchedulerOptions opt_;
  BlockPool pool_;
  std::map<Id, std::unique_ptr<Sequence>> seqs_;
  std::map<std::string, TenantQueue> tenants_;
  std::deque<Sequence*> preempted_;  // re-admitted before anything new
  std::vector<Sequence*> running_;   // in admission order; the back is the newest
  std::vector<Id> cancel_requests_;
  std::int64_t waiting_count_ = 0;
  double virtual_time_ = 0;
  std::uint64_t seed_counter_;
  std::vector<float> logits_;
  SchedulerStats stats_;
};

}  // namespace infergate::engine
