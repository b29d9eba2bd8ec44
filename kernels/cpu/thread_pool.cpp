#include "infergate/kernels/cpu/thread_pool.h"

#include <pthread.h>

namespace infergate::kernels::cpu {

namespace {
constexpr int kSpinRounds = 20000;  // ~1 ms: steps follow each other closely
inline void cpu_relax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

ThreadPool::ThreadPool(unsigned threads) {
  for (unsigned i = 1; i < threads; ++i) workers_.emplace_back([this] {
    pthread_setname_np(pthread_self(), "ig-compute");
    worker_loop();
  });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::drain(std::uint32_t job) {
  std::uint64_t cur = next_.load(std::memory_order_acquire);
  for (;;) {
    if (static_cast<std::uint32_t>(cur >> 32) != job) return;  // a newer job started
    const auto left = static_cast<std::int64_t>(cur & 0xffffffffu);
    if (left == 0) return;
    if (!next_.compare_exchange_weak(cur, cur - 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    const std::int64_t i = left - 1;  // items go from the last to the first
    // The claim succeeded for `job`, which cannot end before this item is done: the job's
    // task and context are still the ones published with it.
    task_.load(std::memory_order_relaxed)(ctx_.load(std::memory_order_relaxed), i);
    done_.fetch_add(1, std::memory_order_acq_rel);
    cur = next_.load(std::memory_order_acquire);
  }
}

void ThreadPool::run_erased(std::int64_t n, Task task, void* ctx) {
  if (n > 0xffffffffLL) {  // the claim word holds 32 bits of count; never near that in practice
    for (std::int64_t i = 0; i < n; ++i) task(ctx, i);
    return;
  }
  const auto job = static_cast<std::uint32_t>(generation_.load(std::memory_order_relaxed) + 1);
  task_.store(task, std::memory_order_relaxed);
  ctx_.store(ctx, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  parked_.store(false, std::memory_order_relaxed);
  next_.store(static_cast<std::uint64_t>(job) << 32 | static_cast<std::uint64_t>(n), std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  drain(job);
  while (done_.load(std::memory_order_acquire) < n) cpu_relax();
}

void ThreadPool::worker_loop() {
  std::uint64_t seen = 0;
  for (;;) {
    std::uint64_t g = generation_.load(std::memory_order_acquire);
    for (int spin = 0; g == seen && spin < kSpinRounds && !parked_.load(std::memory_order_acquire); ++spin) {
      cpu_relax();
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      generation_.wait(seen, std::memory_order_acquire);
      continue;
    }
    seen = g;
    if (stop_.load()) return;
    drain(static_cast<std::uint32_t>(g));
  }
}

}  // namespace infergate::kernels::cpu
