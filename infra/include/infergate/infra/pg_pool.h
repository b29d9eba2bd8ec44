// A small Postgres connection pool that never blocks an io thread: each connection lives on its
// own worker thread; a coroutine hands a job over and is resumed on its own executor when the job
// is done or its deadline passes. Connections are opened lazily and reopened after a failure
// (at most once per reconnect_backoff per worker), so the pool recovers by itself when Postgres
// returns. State changes (up/down) are logged once each, not once per query. Thread-safe.
#pragma once

#include <pqxx/connection>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "infergate/infra/async_op.h"
#include "infergate/infra/config.h"
#include "infergate/infra/metrics.h"

namespace infergate::infra {

// Postgres could not be reached, or the query missed its deadline. Errors raised by the query
// itself (constraint violations, SQL errors) reach the caller as the original pqxx exception.
class PgUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
class PgTimeout : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class PgPool {
 public:
  PgPool(PostgresConfig cfg, MetricsRegistry& metrics);
  ~PgPool();
  PgPool(const PgPool&) = delete;
  PgPool& operator=(const PgPool&) = delete;

  // Runs fn(connection) on a worker and returns its result. `timeout` bounds the whole wait
  // (queueing included); the server-side statement_timeout is postgres.query_timeout_ms.
  // fn may still be running after a timeout resumed the caller: capture by value, never
  // references to the caller's locals.
  template <class Fn>
  auto run(const Fn& fn, std::optional<Millis> timeout = std::nullopt)
      -> asio::awaitable<std::invoke_result_t<Fn, pqxx::connection&>>;

  // SELECT 1. Throws PgUnavailable / PgTimeout.
  asio::awaitable<void> ping(Millis timeout);

  bool up() const { return state_.load() == State::up; }
  std::string last_error() const;

  // Fails queued jobs and joins the workers. Idempotent.
  void stop();

 private:
  enum class State { unknown, up, down };
  struct Job {
    std::chrono::steady_clock::time_point deadline;
    // Runs the job on a live connection; returns false if the connection turned out broken.
    std::function<bool(pqxx::connection&)> run;
    // Fails the job without running it.
    std::function<void(std::exception_ptr)> fail;
  };

  void submit(Job job);
  void worker();
  void mark_up();
  void mark_down(const std::string& why);

  PostgresConfig cfg_;
  std::string conninfo_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::atomic<State> state_{State::unknown};
  mutable std::mutex err_mu_;
  std::string last_error_;
  Counter* jobs_ok_;
  Counter* jobs_failed_;
  Counter* jobs_timeout_;
  Histogram* latency_;
  MetricsRegistry& metrics_;
  std::uint64_t up_gauge_ = 0;
};

template <class Fn>
auto PgPool::run(const Fn& fn, std::optional<Millis> timeout)
    -> asio::awaitable<std::invoke_result_t<Fn, pqxx::connection&>> {
  using R = std::invoke_result_t<Fn, pqxx::connection&>;
  using T = std::conditional_t<std::is_void_v<R>, bool, R>;
  const Millis limit = timeout.value_or(cfg_.query_timeout);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  auto shared_fn = std::make_shared<Fn>(fn);
  const std::function<void(std::shared_ptr<Completion<T>>)> start =
      [this, shared_fn, deadline](std::shared_ptr<Completion<T>> done) {
    Job job;
    job.deadline = deadline;
    job.fail = [done](std::exception_ptr e) { done->complete(e, std::nullopt); };
    job.run = [done, shared_fn](pqxx::connection& conn) -> bool {
      auto& job_fn = *shared_fn;
      if (done->done()) return true;  // the caller gave up already
      try {
        if constexpr (std::is_void_v<R>) {
          job_fn(conn);
          done->complete(nullptr, true);
        } else {
          done->complete(nullptr, job_fn(conn));
        }
        return true;
      } catch (const pqxx::broken_connection& e) {
        done->complete(std::make_exception_ptr(PgUnavailable(
                           std::string("postgres connection lost: ") + e.what())),
                       std::nullopt);
        return false;
      } catch (...) {
        done->complete(std::current_exception(), std::nullopt);
        return true;
      }
    };
    submit(std::move(job));
  };
  const std::function<std::exception_ptr()> on_timeout = [limit] {
    return std::make_exception_ptr(
        PgTimeout("postgres query timed out after " + std::to_string(limit.count()) + " ms"));
  };
  if constexpr (std::is_void_v<R>) {
    co_await await_completion<T>(limit, start, on_timeout);
  } else {
    T value = co_await await_completion<T>(limit, start, on_timeout);
    co_return value;
  }
}

}  // namespace infergate::infra
