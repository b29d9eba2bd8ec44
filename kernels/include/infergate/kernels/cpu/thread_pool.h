// A persistent pool of worker threads for data-parallel loops. `run(n, fn)` calls fn(i) for
// every i in [0, n) across the workers and the calling thread, and returns when all are done.
// Workers spin briefly between jobs (steps come back to back) and then sleep. One caller at a
// time: a pool belongs to one engine loop. Not for blocking work.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
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

  template <class Fn>
  void run(std::int64_t n, Fn&& fn) {
    if (n <= 0) return;
    if (n == 1 || workers_.empty()) {
      for (std::int64_t i = 0; i < n; ++i) fn(i);
      return;
    }
    run_erased(n, [](void* ctx, std::int64_t i) { (*static_cast<Fn*>(ctx))(i); }, &fn);
  }

 private:
  using Task = void (*)(void*, std::int64_t);
  void run_erased(std::int64_t n, Task task, void* ctx);
  void worker_loop();
  void drain();  // claims and runs items of the current job until none are left

  std::vector<std::thread> workers_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> next_{0};
  std::atomic<std::int64_t> arrived_{0};  // workers done with the current job
  std::int64_t n_ = 0;
  Task task_ = nullptr;
  void* ctx_ = nullptr;
};

}  // namespace infergate::kernels::cpu
