// One model's engine: a thread that owns the Scheduler and steps it while there is work, and a
// thread-safe front for the gateway: submit, cancel, stats. Inference never runs on the
// caller's thread; event callbacks run on the engine thread (see GenerationRequest).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "infergate/engine/scheduler.h"

namespace infergate::engine {

struct EngineStats {
  SchedulerStats scheduler;
  double tokens_per_second = 0;  // generated tokens, over the last few seconds
  std::string device;
};

class Engine {
 public:
  using Handle = std::uint64_t;

  Engine(std::shared_ptr<const Model> model, std::unique_ptr<Backend> backend, SchedulerOptions options);
  ~Engine();  // stops the thread; unfinished requests finish "cancelled"
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Thread-safe. Checks the request up front (same checks as Scheduler::add) and throws
  // std::invalid_argument with a clear message; otherwise queues it and returns its handle.
  Handle submit(GenerationRequest request);
  // Thread-safe; takes effect at the next step. Unknown or finished handles are ignored.
  void cancel(Handle h);
  // Thread-safe: cancels every request submitted so far (at shutdown). Each finishes "cancelled"
  // at the end of the step under way, through its callback, as if cancelled one by one.
  void cancel_all();
  EngineStats stats() const;
  const Model& model() const { return *model_; }

 private:
  void loop();

  std::shared_ptr<const Model> model_;
  std::string device_;
  SchedulerOptions options_;
  std::unique_ptr<Scheduler> scheduler_;  // touched only by the engine thread after start
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::vector<std::pair<Handle, GenerationRequest>> inbox_;
  std::vector<Handle> cancels_;
  bool cancel_all_ = false;
  bool stop_ = false;
  Handle next_handle_ = 1;
  SchedulerStats last_stats_;
  double tokens_per_second_ = 0;
  std::thread thread_;
};

}  // namespace infergate::engine
