// Continuous batching, preemption, fairness, cancellation, sampling and stop sequences, on the
// toy model with the real CPU backend.
#include <gtest/gtest.h>

#include <mutex>

#include <condition_variable>

#include <chrono>
#include <future>
#include <thread>

#include "engine/engine_test_util.h"
#include "infergate/engine/engine.h"

namespace ie = infergate::engine;

namespace {

struct Outcome {
  std::vector<std::int32_t> tokens;
  std::string text;
  ie::FinishReason reason = ie::FinishReason::none;
  std::int64_t completion_tokens = -1;
  std::int64_t cached_prompt_tokens = -1;
  bool finished = false;
};

ie::GenerationRequest request(std::vector<std::int32_t> prompt, std::int64_t max_tokens, Outcome* out,
                              std::string tenant = "t") {
  ie::GenerationRequest r;
  r.tenant = std::move(tenant);
  r.prompt = std::move(prompt);
  r.sampling.temperature = 0;
  r.sampling.max_tokens = max_tokens;
  r.sampling.ignore_eos = true;
  r.on_event = [out](const ie::GenerationEvent& e) {
    if (e.token >= 0) out->tokens.push_back(e.token);
    out->text += e.text;
    if (e.finished) {
      out->finished = true;
      out->reason = e.reason;
      out->completion_tokens = e.completion_tokens;
      out->cached_prompt_tokens = e.cached_prompt_tokens;
    }
  };
  return r;
}

using infergate::kernels::WeightType;

// F32 weights with an F32 cache; Q8_0 with an F16 cache, as engine.kv_cache_type = auto gives them.
std::unique_ptr<ie::Scheduler> scheduler(ie::SchedulerOptions o, WeightType type = WeightType::f32) {
  auto m = ie::testing::toy_model(type);
  const ie::KvType kv = type == WeightType::f32 ? ie::KvType::f32 : ie::KvType::f16;
  return std::make_unique<ie::Scheduler>(m, ie::make_cpu_backend(m, {o.kv_blocks, o.block_size, kv}, 2, o.max_batch_tokens), o);
}

void run_all(ie::Scheduler& s) {
  for (int i = 0; i < 100000 && !s.idle(); ++i) s.step();
  ASSERT_TRUE(s.idle());
}

const std::vector<std::vector<std::int32_t>> kPrompts = {
    {1, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60},
    {1, 300, 12},
    {1, 99, 98, 97, 96, 95, 94, 93, 92, 91},
    {1, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7},
};

std::vector<Outcome> alone(std::int64_t max_tokens, WeightType type = WeightType::f32) {
  std::vector<Outcome> out(kPrompts.size());
  for (std::size_t i = 0; i < kPrompts.size(); ++i) {
    auto s = scheduler({512, 16, 64, 16}, type);
    s->add(1, request(kPrompts[i], max_tokens, &out[i]));
    run_all(*s);
  }
  return out;
}

}  // namespace

void expect_batched_equals_alone(WeightType type) {
  const auto ref = alone(24, type);
  // Small steps: prefill is chunked (at most 8 tokens per step) and mixed with decodes.
  auto s = scheduler({8, 4, 64, 4}, type);
  std::vector<Outcome> out(kPrompts.size());
  for (std::size_t i = 0; i < kPrompts.size(); ++i) s->add(i + 1, request(kPrompts[i], 24, &out[i]));
  run_all(*s);
  for (std::size_t i = 0; i < kPrompts.size(); ++i) {
    EXPECT_EQ(out[i].tokens, ref[i].tokens) << "prompt " << i;
    EXPECT_EQ(out[i].reason, ie::FinishReason::length);
    EXPECT_EQ(out[i].completion_tokens, 24);
  }
  EXPECT_EQ(s->pool().used(), 0);
}

TEST(Scheduler, BatchedGreedyDecodingEqualsDecodingAlone) { expect_batched_equals_alone(WeightType::f32); }

// Q8_0 runs other kernels (integer dots; the tile unit where the CPU has one, whose batches and
// single tokens take different code paths) and an F16 cache: the same must hold.
TEST(Scheduler, BatchedGreedyDecodingEqualsDecodingAloneQ8) { expect_batched_equals_alone(WeightType::q8_0); }

TEST(Scheduler, PreemptionAndRecomputeDoNotChangeTheOutput) {
  const auto ref = alone(40);
  // 20 blocks of 4 positions: not enough for all four sequences' 60-odd positions at once.
  auto s = scheduler({64, 4, 20, 4});
  std::vector<Outcome> out(kPrompts.size());
  for (std::size_t i = 0; i < kPrompts.size(); ++i) s->add(i + 1, request(kPrompts[i], 40, &out[i]));
  run_all(*s);
  EXPECT_GT(s->stats().preemptions, 0u);
  for (std::size_t i = 0; i < kPrompts.size(); ++i) {
    EXPECT_EQ(out[i].tokens, ref[i].tokens) << "prompt " << i;
    // A preempted sequence readmitted takes back its own prompt blocks from the cache; that is
    // the engine's business, not a cache hit of the request's.
    EXPECT_EQ(out[i].cached_prompt_tokens, 0) << "prompt " << i;
  }
  EXPECT_GT(s->stats().prefix_cache_hit_tokens, 0u);
  EXPECT_EQ(s->pool().used(), 0);
}

TEST(Scheduler, ATenantWithOneRequestIsNotStarvedByABacklog) {
  auto s = scheduler({64, 2, 64, 16});
  std::vector<Outcome> a(100);
  for (int i = 0; i < 100; ++i) s->add(static_cast<ie::Scheduler::Id>(i + 1), request({1, 5, 6}, 4, &a[i], "tenant-a"));
  for (int i = 0; i < 3; ++i) s->step();  // A's backlog is running
  Outcome b;
  s->add(1000, request({1, 9, 9}, 4, &b, "tenant-b"));
  auto a_started = [&] {
    int n = 0;
    for (int i = 0; i < 100; ++i) n += s->started(static_cast<ie::Scheduler::Id>(i + 1)) ? 1 : 0;
    return n;
  };
  const int a_before = a_started();
  int steps = 0;
  while (!s->started(1000) && !b.finished) {
    ASSERT_LT(steps, 100) << "B never started";
    s->step();
    ++steps;
  }
  // B gets the next free slot: one generation (prefill + 4 decodes) at most, and at most one
  // more request of A's slips in ahead of it.
  EXPECT_LE(steps, 6);
  EXPECT_LE(a_started() - a_before, 1);
}

TEST(Scheduler, CancelMidGenerationFreesEveryBlock) {
  auto s = scheduler({64, 4, 64, 4});
  std::vector<Outcome> out(3);
  for (int i = 0; i < 3; ++i) s->add(static_cast<ie::Scheduler::Id>(i + 1), request(kPrompts[static_cast<std::size_t>(i)], 100, &out[i]));
  for (int i = 0; i < 10; ++i) s->step();
  EXPECT_GT(s->pool().used(), 0);
  for (int i = 0; i < 3; ++i) s->cancel(static_cast<ie::Scheduler::Id>(i + 1));
  s->step();
  EXPECT_EQ(s->pool().used(), 0);
  EXPECT_EQ(s->pool().free_count(), s->pool().total());
  for (const auto& o : out) {
    EXPECT_TRUE(o.finished);
    EXPECT_EQ(o.reason, ie::FinishReason::cancelled);
    EXPECT_GT(o.completion_tokens, 0);  // metered with what was generated
    EXPECT_LT(o.completion_tokens, 100);
  }
}

TEST(Scheduler, CancelWhileWaitingFinishesWithoutTokens) {
  auto s = scheduler({64, 1, 64, 4});
  Outcome a, b;
  s->add(1, request(kPrompts[0], 50, &a));
  s->add(2, request(kPrompts[1], 50, &b));
  s->step();
  s->cancel(2);
  s->step();
  EXPECT_TRUE(b.finished);
  EXPECT_EQ(b.reason, ie::FinishReason::cancelled);
  EXPECT_EQ(b.completion_tokens, 0);
  EXPECT_EQ(s->stats().waiting, 0);
  run_all(*s);
  EXPECT_EQ(a.reason, ie::FinishReason::length);
}

TEST(Scheduler, SameSeedSameOutputAndTopKTopPRestrictChoices) {
  auto sample = [](std::uint64_t seed, float temp, std::int32_t top_k, float top_p) {
    auto s = scheduler({64, 4, 64, 16});
    Outcome o;
    auto r = request(kPrompts[2], 30, &o);
    r.sampling.temperature = temp;
    r.sampling.top_k = top_k;
    r.sampling.top_p = top_p;
    r.sampling.seed = seed;
    s->add(1, std::move(r));
    run_all(*s);
    return o.tokens;
  };
  EXPECT_EQ(sample(42, 1.0f, 0, 1.0f), sample(42, 1.0f, 0, 1.0f));
  EXPECT_NE(sample(42, 1.0f, 0, 1.0f), sample(43, 1.0f, 0, 1.0f));
  // top_k = 1 and a tiny top_p both reduce to greedy.
  auto s = scheduler({64, 4, 64, 16});
  Outcome greedy;
  s->add(1, request(kPrompts[2], 30, &greedy));
  run_all(*s);
  EXPECT_EQ(sample(5, 1.0f, 1, 1.0f), greedy.tokens);
  EXPECT_EQ(sample(6, 0.8f, 0, 1e-6f), greedy.tokens);
}

TEST(Scheduler, StopSequenceSpanningTokensEndsGenerationBeforeIt) {
  auto s = scheduler({64, 4, 64, 16});
  Outcome full;
  s->add(1, request(kPrompts[0], 40, &full));
  run_all(*s);
  ASSERT_GE(full.text.size(), 12u);
  // A stop string from the middle of the text that most likely spans a token boundary.
  const std::string stop = full.text.substr(full.text.size() / 2, 5);
  const std::string expected = full.text.substr(0, full.text.find(stop));
  Outcome o;
  auto r = request(kPrompts[0], 40, &o);
  r.sampling.stop = {"never-appears-xyz", stop};
  s->add(2, std::move(r));
  run_all(*s);
  EXPECT_EQ(o.reason, ie::FinishReason::stop);
  EXPECT_EQ(o.text, expected);
  EXPECT_LT(o.completion_tokens, 40);
}

TEST(Scheduler, StopTokenEndsWithStopAndIsNotInTheText) {
  auto s = scheduler({64, 4, 64, 16});
  Outcome full;
  s->add(1, request(kPrompts[1], 20, &full));
  run_all(*s);
  Outcome o;
  auto r = request(kPrompts[1], 20, &o);
  r.sampling.stop_tokens = {full.tokens[5]};
  s->add(2, std::move(r));
  run_all(*s);
  EXPECT_EQ(o.reason, ie::FinishReason::stop);
  const auto first = std::find(full.tokens.begin(), full.tokens.end(), full.tokens[5]) - full.tokens.begin();
  EXPECT_EQ(o.completion_tokens, first + 1);  // the stop token counts as generated
}

TEST(Scheduler, RejectsRequestsThatCanNeverRun) {
  auto s = scheduler({64, 4, 8, 16});
  Outcome o;
  EXPECT_THROW(s->add(1, request({}, 4, &o)), std::invalid_argument);
  EXPECT_THROW(s->add(2, request(std::vector<std::int32_t>(600, 1), 4, &o)), std::invalid_argument);  // > context
  EXPECT_THROW(s->add(3, request(std::vector<std::int32_t>(200, 1), 4, &o)), std::invalid_argument);  // > KV pool
  EXPECT_THROW(s->add(4, request({1, 100000}, 4, &o)), std::invalid_argument);
  EXPECT_THROW(s->add(5, request({1, 2}, 0, &o)), std::invalid_argument);
  EXPECT_TRUE(s->idle());
}

// The router reads an engine's load (waiting requests) while the engine may be in a long step
// (a big prefill on a real model takes seconds). A request that arrived just before that step
// must count as waiting or running during it, not vanish from both. A backend whose step the
// test holds stands in for the long one.
namespace {
// A backend whose steps wait until the test releases them: a stand-in for a long step.
struct HeldBackend final : ie::Backend {
  std::unique_ptr<ie::Backend> inner;
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  int steps = 0;
  std::string describe() const override { return inner->describe(); }
  void forward(std::span<const ie::StepSequence> batch, float* logits) override {
    std::unique_lock lock(mu);
    ++steps;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
    lock.unlock();
    inner->forward(batch, logits);
  }
  bool wait_for_step() {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return steps > 0; });
  }
  void let_go() {
    {
      std::lock_guard lock(mu);
      release = true;
    }
    cv.notify_all();
  }
};

// The toy model's engine over a HeldBackend.
struct HeldEngine {
  static std::unique_ptr<ie::Backend> make(const std::shared_ptr<const ie::Model>& m, HeldBackend*& out) {
    auto b = std::make_unique<HeldBackend>();
    b->inner = ie::make_cpu_backend(m, {64, 16}, 1, 64);
    out = b.get();
    return b;
  }
  std::shared_ptr<const ie::Model> model = ie::testing::toy_model();
  HeldBackend* held = nullptr;
  ie::Engine engine{model, make(model, held), {64, 4, 64, 16}};
};
}  // namespace

TEST(Engine, ARequestThatArrivedCountsInItsStatsDuringALongStep) {
  HeldEngine he;
  HeldBackend& held = *he.held;
  ie::Engine& engine = he.engine;
  std::promise<void> done;
  ie::GenerationRequest r;
  r.tenant = "x";
  r.prompt = kPrompts[0];
  r.sampling.max_tokens = 2;
  r.on_event = [&](const ie::GenerationEvent& e) {
    if (e.finished) done.set_value();
  };
  engine.submit(std::move(r));
  ASSERT_TRUE(held.wait_for_step());
  const auto st = engine.stats().scheduler;  // the engine is inside its first step now
  EXPECT_EQ(st.waiting + st.running, 1);
  held.let_go();
  ASSERT_EQ(done.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
}

// Shutdown cancels everything an engine holds at once: the request inside the step under way
// and those still waiting in the inbox all finish "cancelled" when that step ends, through their
// callbacks, and the engine is left idle with its KV blocks free. A request submitted afterwards
// is not affected.
TEST(Engine, CancelAllEndsEveryRequestHeldAtTheEndOfTheStepUnderWay) {
  HeldEngine he;
  HeldBackend& held = *he.held;
  ie::Engine& engine = he.engine;
  constexpr int kHeld = 3;
  std::vector<std::promise<ie::GenerationEvent>> done(kHeld + 1);
  auto request = [&](int i) {
    ie::GenerationRequest r;
    r.tenant = "x";
    r.prompt = kPrompts[static_cast<std::size_t>(i) % 2];
    r.sampling.max_tokens = 50;
    r.sampling.ignore_eos = true;
    r.on_event = [&done, i](const ie::GenerationEvent& e) {
      if (e.finished) done[static_cast<std::size_t>(i)].set_value(e);
    };
    return r;
  };
  engine.submit(request(0));
  ASSERT_TRUE(held.wait_for_step());  // request 0 is inside the engine's first step
  for (int i = 1; i < kHeld; ++i) engine.submit(request(i));  // in the inbox meanwhile
  engine.cancel_all();
  held.let_go();
  for (int i = 0; i < kHeld; ++i) {
    auto f = done[static_cast<std::size_t>(i)].get_future();
    ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready) << "request " << i;
    const auto ev = f.get();
    EXPECT_EQ(ev.reason, ie::FinishReason::cancelled) << "request " << i;
    EXPECT_LE(ev.completion_tokens, 1) << "request " << i;  // the token of the step under way at most
  }
  for (int i = 0; i < 100 && engine.stats().scheduler.kv_blocks_used != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto st = engine.stats().scheduler;
  EXPECT_EQ(st.running + st.waiting, 0);
  EXPECT_EQ(st.kv_blocks_used, 0);
  engine.submit(request(kHeld));
  auto later = done[kHeld].get_future();
  ASSERT_EQ(later.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  const auto ev = later.get();
  EXPECT_EQ(ev.reason, ie::FinishReason::length);
  EXPECT_EQ(ev.completion_tokens, 50);
}

TEST(Engine, StreamsOnItsOwnThreadAndCancelReleasesKv) {
  auto m = ie::testing::toy_model();
  ie::Engine engine(m, ie::make_cpu_backend(m, {64, 16}, 1, 64), {64, 4, 64, 16});
  std::promise<ie::GenerationEvent> done;
  std::atomic<int> tokens{0};
  std::atomic<bool> other_thread{false};
  const auto caller = std::this_thread::get_id();
  ie::GenerationRequest r;
  r.tenant = "x";
  r.prompt = kPrompts[0];
  r.sampling.max_tokens = 400;
  r.sampling.ignore_eos = true;
  r.on_event = [&](const ie::GenerationEvent& e) {
    other_thread = std::this_thread::get_id() != caller;
    if (e.token >= 0) ++tokens;
    if (e.finished) done.set_value(e);
  };
  const auto h = engine.submit(std::move(r));
  while (tokens < 5) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  engine.cancel(h);
  auto fut = done.get_future();
  ASSERT_EQ(fut.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  const auto ev = fut.get();
  EXPECT_EQ(ev.reason, ie::FinishReason::cancelled);
  EXPECT_GE(ev.completion_tokens, 5);
  EXPECT_LT(ev.completion_tokens, 400);
  EXPECT_TRUE(other_thread);
  for (int i = 0; i < 100 && engine.stats().scheduler.kv_blocks_used != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(engine.stats().scheduler.kv_blocks_used, 0);
  ie::GenerationRequest bad;
  EXPECT_THROW(engine.submit(std::move(bad)), std::invalid_argument);
}

namespace {

std::vector<std::int32_t> cat(std::vector<std::int32_t> a, const std::vector<std::int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// A 40-token start shared by the prompts below (two full blocks of 16, and 8 more positions).
std::vector<std::int32_t> shared_start() {
  std::vector<std::int32_t> p{1};
  for (int i = 0; i < 39; ++i) p.push_back(100 + (i * 37) % 200);
  return p;
}

}  // namespace

// Prompts that start the same way take the cached blocks of the first and compute only the
// rest; every output is what the same prompt gives in a scheduler of its own without the cache,
// token for token (cached keys and values are bit-identical to recomputed ones).
void expect_prefix_cache_changes_nothing(WeightType type) {
  const auto start = shared_start();
  const std::vector<std::vector<std::int32_t>> prompts = {cat(start, {7, 8, 9}), cat(start, {300, 301}),
                                                          cat(start, {7, 8, 9}),
                                                          std::vector<std::int32_t>(start.begin(), start.begin() + 33)};
  std::vector<Outcome> ref(prompts.size());
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    ie::SchedulerOptions o{512, 16, 64, 16};
    o.prefix_cache = false;
    auto s = scheduler(o, type);
    s->add(1, request(prompts[i], 12, &ref[i]));
    run_all(*s);
    EXPECT_EQ(s->stats().prefix_cache_hit_tokens, 0u);
  }
  auto s = scheduler({512, 16, 64, 16}, type);
  std::vector<Outcome> out(prompts.size());
  s->add(1, request(prompts[0], 12, &out[0]));
  run_all(*s);
  EXPECT_EQ(s->stats().prefix_cache_hit_tokens, 0u);
  EXPECT_EQ(s->stats().kv_blocks_cached, 2);  // the two full blocks of its 43-token prompt
  EXPECT_EQ(s->pool().used(), 0);             // cached blocks nobody holds count as free
  for (std::size_t i = 1; i < prompts.size(); ++i) s->add(i + 1, request(prompts[i], 12, &out[i]));
  run_all(*s);
  // Each of the three takes both cached blocks (the 33-token prompt's last token is position 32,
  // in its third block).
  EXPECT_EQ(s->stats().prefix_cache_hit_tokens, 3u * 32u);
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(out[i].tokens, ref[i].tokens) << "prompt " << i;
    EXPECT_EQ(out[i].completion_tokens, 12);
    // What each request is told (and billed) as served from the cache.
    EXPECT_EQ(ref[i].cached_prompt_tokens, 0) << "prompt " << i;
    EXPECT_EQ(out[i].cached_prompt_tokens, i == 0 ? 0 : 32) << "prompt " << i;
  }
  EXPECT_EQ(s->pool().used(), 0);
}

TEST(Scheduler, PrefixCacheReusesBlocksAndChangesNoOutput) { expect_prefix_cache_changes_nothing(WeightType::f32); }
TEST(Scheduler, PrefixCacheReusesBlocksAndChangesNoOutputQ8) { expect_prefix_cache_changes_nothing(WeightType::q8_0); }

// A prompt of exactly two blocks takes only the first: the block with its last token is
// computed, for the logits.
TEST(Scheduler, PrefixCacheNeverTakesTheBlockOfThePromptsLastToken) {
  const auto start = shared_start();
  const std::vector<std::int32_t> p(start.begin(), start.begin() + 32);
  auto s = scheduler({512, 16, 64, 16});
  Outcome a, b;
  s->add(1, request(p, 3, &a));
  run_all(*s);
  s->add(2, request(p, 3, &b));
  run_all(*s);
  EXPECT_EQ(s->stats().prefix_cache_hit_tokens, 16u);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.cached_prompt_tokens, 0);
  EXPECT_EQ(b.cached_prompt_tokens, 16);
}

// With a small pool, cached blocks nobody holds are given new content when plain free blocks
// run out (least recently released first); what is then taken from the cache is still right.
TEST(Scheduler, CachedBlocksAreReusedForOtherContentWhenThePoolNeedsThem) {
  std::vector<std::vector<std::int32_t>> prompts;
  for (int i = 0; i < 6; ++i) {
    std::vector<std::int32_t> p{1};
    for (int j = 0; j < 20; ++j) p.push_back(10 + i * 30 + j);
    prompts.push_back(p);
  }
  std::vector<Outcome> ref(prompts.size());
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    ie::SchedulerOptions o{64, 4, 64, 4};
    o.prefix_cache = false;
    auto s = scheduler(o, WeightType::f32);
    s->add(1, request(prompts[i], 6, &ref[i]));
    run_all(*s);
  }
  // 12 blocks of 4 positions: one request needs 7 (21 prompt + 6 generated); each leaves 5
  // prompt blocks cached, so the cache keeps overflowing into fresh allocations.
  auto s = scheduler({64, 4, 12, 4});
  for (int round = 0; round < 2; ++round) {
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      Outcome o;
      s->add(round * 100 + i + 1, request(prompts[i], 6, &o));
      run_all(*s);
      EXPECT_EQ(o.tokens, ref[i].tokens) << "round " << round << ", prompt " << i;
      EXPECT_EQ(s->pool().used(), 0);
      EXPECT_LE(s->stats().kv_blocks_cached, 12);
    }
  }
  // The last prompt run is still cached: running it again takes all 5 of its blocks.
  const auto hits = s->stats().prefix_cache_hit_tokens;
  Outcome again;
  s->add(1000, request(prompts.back(), 6, &again));
  run_all(*s);
  EXPECT_EQ(s->stats().prefix_cache_hit_tokens - hits, 20u);
  EXPECT_EQ(again.tokens, ref.back().tokens);
}

TEST(BlockPool, CachedBlocksAreCountedHeldAndForgottenWhenReused) {
  ie::BlockPool pool(3, 2);
  const std::vector<std::int32_t> t1{5, 6}, t2{7, 8};
  const auto a = *pool.allocate();
  pool.publish(a, {}, t1);
  const auto b = *pool.allocate();
  pool.publish(b, pool.ref(a), t2);
  EXPECT_EQ(pool.cached_count(), 2);
  EXPECT_FALSE(pool.take_cached({}, t2));               // not a first block
  EXPECT_FALSE(pool.take_cached(pool.ref(b), t2));      // not after b
  EXPECT_EQ(pool.take_cached({}, t1), a);               // a second holder
  pool.release(a);
  pool.release(a);
  pool.release(b);
  EXPECT_EQ(pool.free_count(), 3);  // cached, held by nobody: free to take
  EXPECT_THROW(pool.release(a), std::logic_error);
  // Three allocations: the plain free block first, then the cached ones, oldest released first.
  const auto c = *pool.allocate();
  EXPECT_NE(c, a);
  EXPECT_NE(c, b);
  EXPECT_EQ(pool.cached_count(), 2);
  EXPECT_EQ(*pool.allocate(), a);
  EXPECT_EQ(pool.cached_count(), 1);
  EXPECT_FALSE(pool.take_cached({}, t1));
  // b's parent is gone (a holds other content now): b can never be found through it.
  const auto stale_parent = ie::BlockPool::Ref{a, pool.ref(a).generation - 1};
  EXPECT_FALSE(pool.take_cached(pool.ref(a), t2));
  EXPECT_EQ(pool.take_cached(stale_parent, t2), b);  // only under the identity it was published with
  EXPECT_FALSE(pool.allocate());  // all three held
}
