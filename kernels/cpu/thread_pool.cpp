#include "infergate/kernels/cpu/thread_pool.h"

namespace infergate::kernels::cpu {

namespace {
constexpr int kSpinRounds = 20000;  // ~tens of microseconds: steps follow each other closely
inline void cpu_relax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

ThreadPool::ThreadPool(unsigned threads) {
  for (unsigned i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::drain() {
  for (;;) {
    const std::int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= n_) return;
    task_(ctx_, i);
  }
}

void ThreadPool::run_erased(std::int64_t n, Task task, void* ctx) {
  n_ = n;
  task_ = task;
  ctx_ = ctx;
  arrived_.store(0, std::memory_order_relaxed);
  next_.store(0, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_acq_rel);  // publishes the job
  generation_.notify_all();
  drain();
  // Every worker takes part in every job and reports back, so none is still inside this job
  // when the next one resets the counters.
  const auto workers = static_cast<std::int64_t>(workers_.size());
  while (arrived_.load(std::memory_order_acquire) < workers) cpu_relax();
}

void ThreadPool::worker_loop() {
  std::uint64_t seen = 0;  // the generation at construction: a job published before this
                          // thread got going still counts as new
  for (;;) {
    std::uint64_t g = generation_.load(std::memory_order_acquire);
    for (int spin = 0; g == seen && spin < kSpinRounds; ++spin) {
      cpu_relax();
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      generation_.wait(seen, std::memory_order_acquire);
      continue;
    }
    seen = g;
    if (stop_.load()) return;
    drain();
    arrived_.fetch_add(1, std::memory_order_release);
  }
}

}  // namespace infergate::kernels::cpu
