// A persistent pool of worker threads for data-parallel loops. `run(n, fn)` calls fn(i) for
// every i in [0, n) across the workers and the calling thread, and returns when all are done.
// Items are claimed one at a time, so a worker the OS has descheduled never holds up a job it
// has not started: the others (the caller included) take its share. Workers spin briefly
// between jobs (the regions of a step come back to back) and then sleep; park() sends them to
// sleep at once, for when the caller knows no job follows soon (the end of a step), so idle
// workers never take a core from the rest of the process. One caller at a time: a pool
// belongs to one engine loop. Not for blocking work.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <vector>

namespace infergate::kernels::cpu {

class ThreadPool {
 public:
  // threads counts the caller: ThreadPool(1) runs everything on the caller.
  explicit ThreadPool(unsigned threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  unsigned size() const { return static_cast<unsigned>(workers_.size()) + 1; }

  // Workers stop spinning and sleep until the next job.
  void park() { parked_.store(true, std::memory_order_release); }

  template <class Fn>
  void run(std::int64_t n, Fn&& fn) {
    if (n <= 0) return;
    if (n == 1 || workers_.empty()) {
      for (std::int64_t i = 0; i < n; ++i) fn(i);
      return;
    }
    using F = std::remove_reference_t<Fn>;
    run_erased(n, [](void* ctx, std::int64_t i) { (*static_cast<F*>(ctx))(i); }, const_cast<void*>(static_cast<const void*>(&fn)));
  }

 private:
  using Task = void (*)(void*, std::int64_t);
  void run_erased(std::int64_t n, Task task, void* ctx);
  void worker_loop();
  // Claims and runs items of job `job` until none are left or a newer job has started.
  void drain(std::uint32_t job);

  std::vector<std::thread> workers_;
  std::atomic<std::uint64_t> generation_{0};  // the current job's number
  std::atomic<bool> stop_{false};
  std::atomic<bool> parked_{false};
  // (job number << 32) | items not yet claimed: a claim succeeds only for the job it was meant
  // for, so a worker waking late cannot take an item of a later job with a stale view of it.
  std::atomic<std::uint64_t> next_{0};
  std::atomic<std::int64_t> done_{0};
  std::atomic<Task> task_{nullptr};
  std::atomic<void*> ctx_{nullptr};
};

}  // namespace infergate::kernels::cpu
