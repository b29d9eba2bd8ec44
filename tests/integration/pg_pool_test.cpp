// PgPool against a real Postgres: results, errors, deadlines, outages and recovery, and that a
// slow query never blocks the io thread.
#include <gtest/gtest.h>

#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <pqxx/pqxx>

#include "infergate/infra/pg_pool.h"
#include "support/io_thread.h"
#include "support/services.h"

namespace infergate {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;

int select_int(pqxx::connection& c, const std::string& sql) {
  pqxx::nontransaction tx(c);
  return tx.exec1(sql)[0].as<int>();
}

TEST(PgPool, RunsQueriesAndReturnsResults) {
  infra::MetricsRegistry metrics;
  infra::PgPool pool(test::fresh_database("pool"), metrics);
  test::IoThread io;
  int v = io.run([&]() -> asio::awaitable<int> {
    int r = co_await pool.run([](pqxx::connection& c) { return select_int(c, "SELECT 40 + 2"); });
    co_return r;
  }());
  EXPECT_EQ(v, 42);
  EXPECT_TRUE(pool.up());
}

TEST(PgPool, SqlErrorsReachTheCallerAndThePoolStaysUsable) {
  infra::MetricsRegistry metrics;
  infra::PgPool pool(test::fresh_database("pool"), metrics);
  test::IoThread io;
  EXPECT_THROW(io.run([&]() -> asio::awaitable<int> {
    int r = co_await pool.run([](pqxx::connection& c) { return select_int(c, "SELECT nope"); });
    co_return r;
  }()),
               pqxx::undefined_column);
  int v = io.run([&]() -> asio::awaitable<int> {
    int r = co_await pool.run([](pqxx::connection& c) { return select_int(c, "SELECT 7"); });
    co_return r;
  }());
  EXPECT_EQ(v, 7);
}

TEST(PgPool, DeadlineFailsTheWaitAndThePoolRecovers) {
  infra::MetricsRegistry metrics;
  auto cfg = test::fresh_database("pool");
  cfg.pool_size = 1;
  infra::PgPool pool(cfg, metrics);
  test::IoThread io;
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(io.run([&]() -> asio::awaitable<int> {
    int r = co_await pool.run(
        [](pqxx::connection& c) { return select_int(c, "SELECT 1 FROM pg_sleep(1)"); }, 150ms);
    co_return r;
  }()),
               infra::PgTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 900ms);
  // The single worker finishes the slow query, then serves the next one.
  int v = io.run([&]() -> asio::awaitable<int> {
    int r = co_await pool.run([](pqxx::connection& c) { return select_int(c, "SELECT 5"); }, 5s);
    co_return r;
  }());
  EXPECT_EQ(v, 5);
}

TEST(PgPool, StatementTimeoutStopsRunawayQueriesOnTheServer) {
  infra::MetricsRegistry metrics;
  auto cfg = test::fresh_database("pool");
  cfg.query_timeout = 200ms;
  infra::PgPool pool(cfg, metrics);
  test::IoThread io;
  EXPECT_THROW(io.run([&]() -> asio::awaitable<int> {
    int r = co_await pool.run(
        [](pqxx::connection& c) { return select_int(c, "SELECT 1 FROM pg_sleep(5)"); }, 3s);
    co_return r;
  }()),
               pqxx::sql_error);  // canceling statement due to statement timeout
}

TEST(PgPool, SlowQueriesDoNotBlockTheIoThread) {
  infra::MetricsRegistry metrics;
  infra::PgPool pool(test::fresh_database("pool"), metrics);
  test::IoThread io(1);  // one io thread: if the query ran on it, the timer could not fire
  auto fired_after = io.run([&]() -> asio::awaitable<std::chrono::milliseconds> {
    auto ex = co_await asio::this_coro::executor;
    auto start = std::chrono::steady_clock::now();
    std::chrono::milliseconds timer_elapsed{0};
    asio::co_spawn(
        ex,
        [&]() -> asio::awaitable<void> {
          asio::steady_timer t(ex, 50ms);
          co_await t.async_wait(asio::use_awaitable);
          timer_elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::steady_clock::now() - start);
        },
        asio::detached);
    co_await pool.run([](pqxx::connection& c) { return select_int(c, "SELECT 1 FROM pg_sleep(0.5)"); });
    co_return timer_elapsed;
  }());
  EXPECT_GT(fired_after.count(), 0);
  EXPECT_LT(fired_after, 300ms);
}

TEST(PgPool, UnreachableServerFailsFastAndRecoversWhenItComesBack) {
  test::PrivatePostgres pg(/*start_now=*/false);
  infra::MetricsRegistry metrics;
  infra::PgPool pool(test::postgres_config(pg.port()), metrics);
  test::IoThread io;
  auto ping = [&] { io.run([&]() -> asio::awaitable<int> {
                      co_await pool.ping(2s);
                      co_return 0;
                    }()); };
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(ping(), infra::PgUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_FALSE(pool.up());
  EXPECT_NE(pool.last_error().find("Connection refused"), std::string::npos) << pool.last_error();

  pg.start();
  // Retries the ping for up to 5 s; true once it succeeds.
  auto recovers = [&] {
    for (int i = 0; i < 100; ++i) {
      try {
        ping();
        return true;
      } catch (const std::exception&) {
        std::this_thread::sleep_for(50ms);
      }
    }
    return false;
  };
  EXPECT_TRUE(recovers());
  EXPECT_TRUE(pool.up());

  // Killed while connected: the next job reports the loss, later ones reconnect.
  pg.stop();
  EXPECT_ANY_THROW(ping());
  pg.start();
  EXPECT_TRUE(recovers());
}

TEST(PgPool, StopFailsQueuedJobs) {
  infra::MetricsRegistry metrics;
  auto cfg = test::fresh_database("pool");
  infra::PgPool pool(cfg, metrics);
  pool.stop();
  test::IoThread io;
  EXPECT_THROW(io.run([&]() -> asio::awaitable<int> {
    co_await pool.ping(1s);
    co_return 0;
  }()),
               infra::PgUnavailable);
}

}  // namespace
}  // namespace infergate
