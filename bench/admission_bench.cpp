// Admission throughput and latency through one Redis. Measures, in one run and with the same
// concurrency (many coroutines sharing one pipelined connection):
//   baseline   bare PING round trips                 (ops/s, p50/p99)
//   admission  admit + settle of a request with every limit set (ops/s, p50/p99 of admit)
// Needs the configured Redis (scripts/services.sh start). Usage:
//   admission_bench [--config PATH] [--seconds N] [--concurrency N]
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "infergate/gateway/admission.h"
#include "infergate/infra/ids.h"
#include "infergate/infra/log.h"

extern char** environ;

using namespace infergate;
using Clock = std::chrono::steady_clock;
namespace asio = boost::asio;

namespace {

struct Result {
  double ops_per_s = 0, p50_us = 0, p99_us = 0;
};

// Runs `concurrency` loops of `op` for `seconds`; latencies of each call.
template <class Op>
Result measure(asio::io_context& io, int concurrency, double seconds, Op op) {
  std::vector<std::vector<double>> lat(static_cast<std::size_t>(concurrency));
  std::atomic<int> running{concurrency};
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(seconds));
  for (int c = 0; c < concurrency; ++c) {
    asio::co_spawn(
        io,
        [&, c]() -> asio::awaitable<void> {
          auto& mine = lat[static_cast<std::size_t>(c)];
          while (Clock::now() < end) {
            auto t0 = Clock::now();
            co_await op();
            mine.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
          }
          --running;
        },
        asio::detached);
  }
  auto t0 = Clock::now();
  while (running > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const double took = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  Result r;
  r.ops_per_s = static_cast<double>(all.size()) / took;
  r.p50_us = all[all.size() / 2];
  r.p99_us = all[static_cast<std::size_t>(0.99 * static_cast<double>(all.size() - 1))];
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = "config/infergate.toml";
  double seconds = 3;
  int concurrency = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--config")) config_path = argv[i + 1];
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::stod(argv[i + 1]);
    if (!std::strcmp(argv[i], "--concurrency")) concurrency = std::stoi(argv[i + 1]);
  }
  infra::log::set_level(infra::log::Level::warn);
  auto cfg = infra::load_config(config_path, infra::environment_overrides(environ));
  cfg.redis.command_timeout = infra::Millis(5000);
  cfg.admission.redis_timeout = infra::Millis(5000);

  asio::io_context io(1);
  auto guard = asio::make_work_guard(io);
  std::thread io_thread([&] { io.run(); });
  infra::MetricsRegistry metrics;
  infra::RedisClient redis(io, cfg.redis, metrics);
  redis.start();
  for (int i = 0; i < 300 && !redis.connected(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (!redis.connected()) {
    std::fprintf(stderr, "admission_bench: cannot reach Redis at %s:%u (scripts/services.sh start)\n",
                 cfg.redis.host.c_str(), cfg.redis.port);
    return 1;
  }
  gateway::Admission admission(redis, cfg.admission, metrics);

  const std::vector<std::string> ping{"PING"};
  Result base = measure(io, concurrency, seconds, [&]() -> asio::awaitable<void> {
    co_await redis.command(ping);
  });

  // Limits high enough never to refuse, so every call does the full work.
  gateway::AdmissionRequest req;
  req.tenant_id = "bench_" + infra::random_hex(4);
  req.key_id = "k";
  req.tokens = 100;
  req.tenant = {1000000000, 1000000000000, 1000000, 1000000000000, 1000000000000};
  req.key = {1000000000, 1000000000000, 1000000};
  req.periods = {"2026-11-22", "2026-11", 4102444800000, 4102444800000};
  std::atomic<long> refused{0};
  Result adm = measure(io, concurrency, seconds, [&]() -> asio::awaitable<void> {
    gateway::AdmissionDecision d = co_await admission.admit(req);
    if (d.reservation) {
      co_await admission.settle(*d.reservation, 50);
    } else {
      ++refused;
    }
  });

  redis.stop();
  guard.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  io.stop();
  io_thread.join();
  std::printf("admission_bench (one io thread, %d concurrent, %.1f s each)\n", concurrency, seconds);
  std::printf("  baseline   PING            %10.0f ops/s   p50 %7.1f us   p99 %7.1f us\n",
              base.ops_per_s, base.p50_us, base.p99_us);
  std::printf("  admission  admit+settle    %10.0f ops/s   p50 %7.1f us   p99 %7.1f us   "
              "%.2fx of the PING rate\n",
              adm.ops_per_s, adm.p50_us, adm.p99_us, adm.ops_per_s / base.ops_per_s);
  if (refused > 0) std::printf("  (%ld refused: limits too low for the benchmark)\n", refused.load());
  return 0;
}
