#include "infergate/infra/pg_pool.h"

#include <pthread.h>
#include <pqxx/nontransaction>

#include "infergate/infra/log.h"

namespace infergate::infra {
namespace {

// libpq messages span lines ("...failed: Connection refused\n\tIs the server running..."):
// fold them into one line for logs and JSON.
std::string one_line(const std::string& text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (c == '\n' || c == '\t' || c == '\r' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

}  // namespace

PgPool::PgPool(PostgresConfig cfg, MetricsRegistry& metrics)
    : cfg_(std::move(cfg)), conninfo_(cfg_.conninfo()), metrics_(metrics) {
  auto& jobs = metrics.counter("infergate_postgres_jobs_total",
                               "Postgres pool jobs by outcome (ok, error, timeout)", {"outcome"});
  jobs_ok_ = &jobs.with({"ok"});
  jobs_failed_ = &jobs.with({"error"});
  jobs_timeout_ = &jobs.with({"timeout"});
  latency_ = &metrics
                  .histogram("infergate_postgres_job_duration_seconds",
                             "Time a Postgres job spent on its worker", {})
                  .with({});
  up_gauge_ = metrics.gauge_callback("infergate_postgres_up", "1 if the last Postgres contact succeeded",
                         [this] { return up() ? 1.0 : 0.0; });
  threads_.reserve(static_cast<std::size_t>(cfg_.pool_size));
  for (int i = 0; i < cfg_.pool_size; ++i) threads_.emplace_back([this] {
    pthread_setname_np(pthread_self(), "ig-postgres");
    worker();
  });
}

PgPool::~PgPool() {
  stop();
  metrics_.remove_callback("infergate_postgres_up", up_gauge_);
}

void PgPool::stop() {
  std::deque<Job> orphans;
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    orphans.swap(queue_);
  }
  cv_.notify_all();
  for (auto& j : orphans)
    j.fail(std::make_exception_ptr(PgUnavailable("postgres pool is shutting down")));
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

std::string PgPool::last_error() const {
  std::lock_guard lock(err_mu_);
  return last_error_;
}

void PgPool::submit(Job job) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      queue_.push_back(std::move(job));
      cv_.notify_one();
      return;
    }
  }
  job.fail(std::make_exception_ptr(PgUnavailable("postgres pool is shutting down")));
}

void PgPool::mark_up() {
  if (state_.exchange(State::up) != State::up)
    log::info("postgres up", {{"host", cfg_.host}, {"port", cfg_.port}});
}

void PgPool::mark_down(const std::string& why) {
  {
    std::lock_guard lock(err_mu_);
    last_error_ = why;
  }
  if (state_.exchange(State::down) != State::down)
    log::warn("postgres down", {{"host", cfg_.host}, {"port", cfg_.port}, {"error", why}});
}

void PgPool::worker() {
  std::unique_ptr<pqxx::connection> conn;
  auto last_attempt = std::chrono::steady_clock::time_point{};
  std::string last_failure;
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= job.deadline) {
      jobs_timeout_->inc();
      job.fail(std::make_exception_ptr(PgTimeout("postgres query waited past its deadline")));
      continue;
    }
    if (!conn || !conn->is_open()) {
      conn.reset();
      if (now - last_attempt < cfg_.reconnect_backoff && !last_failure.empty()) {
        jobs_failed_->inc();
        job.fail(std::make_exception_ptr(PgUnavailable("postgres unavailable: " + last_failure)));
        continue;
      }
      last_attempt = now;
      try {
        conn = std::make_unique<pqxx::connection>(conninfo_);
        last_failure.clear();
        mark_up();
      } catch (const std::exception& e) {
        last_failure = one_line(e.what());
        mark_down(last_failure);
        jobs_failed_->inc();
        job.fail(std::make_exception_ptr(PgUnavailable("postgres unavailable: " + last_failure)));
        continue;
      }
    }
    const auto t0 = std::chrono::steady_clock::now();
    bool healthy = job.run(*conn);
    latency_->observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (healthy && conn->is_open()) {
      jobs_ok_->inc();
      mark_up();
    } else {
      jobs_failed_->inc();
      last_failure = "connection lost";
      mark_down(last_failure);
      conn.reset();
      last_attempt = {};  // reconnect on the next job right away
      last_failure.clear();
    }
  }
}

asio::awaitable<void> PgPool::ping(Millis timeout) {
  co_await run(
      [](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        tx.exec("SELECT 1");
      },
      timeout);
}

}  // namespace infergate::infra
