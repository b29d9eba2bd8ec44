// Authentication cost. Measures, in one run:
//   baseline   a bare SHA-256 of a key secret (the one unavoidable piece of work per request)
//   cached     Authenticator::authenticate of a cached key, one io thread (ops/s)
//   uncached   the same with the cache off: one Postgres round trip per call (p50/p99 latency),
//              beside a bare `SELECT 1` through the same pool as its baseline
// Needs the configured Postgres (scripts/services.sh start); applies migrations and creates its
// own tenant there. Usage: auth_bench [--config PATH] [--seconds N]
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <pqxx/pqxx>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "infergate/gateway/accounts.h"
#include "infergate/gateway/auth.h"
#include "infergate/infra/ids.h"
#include "infergate/infra/log.h"
#include "infergate/infra/migrations.h"
#include "infergate/infra/sha256.h"

extern char** environ;

using namespace infergate;
using Clock = std::chrono::steady_clock;
namespace asio = boost::asio;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = "config/infergate.toml";
  double budget = 2.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--config")) config_path = argv[i + 1];
    if (!std::strcmp(argv[i], "--seconds")) budget = std::stod(argv[i + 1]);
  }
  infra::log::set_level(infra::log::Level::warn);
  auto cfg = infra::load_config(config_path, infra::environment_overrides(environ));

  // A tenant and key of our own.
  std::string full_key;
  try {
    pqxx::connection conn(cfg.postgres.conninfo());
    infra::migrate(conn, infra::embedded_migrations());
    pqxx::work tx(conn);
    const std::string suffix = infra::random_hex(4);
    gateway::accounts::NewPlan plan;
    plan.name = "bench-" + suffix;
    gateway::accounts::create_plan(tx, plan, "bench");
    gateway::accounts::NewTenant tenant;
    tenant.name = "bench-" + suffix;
    tenant.plan = plan.name;
    auto t = gateway::accounts::create_tenant(tx, tenant, "bench");
    gateway::accounts::NewKey key;
    key.tenant = t.id;
    key.scopes = {"inference"};
    full_key = gateway::accounts::create_key(tx, key, "bench").secret_key;
    tx.commit();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "auth_bench: needs Postgres from %s (scripts/services.sh start): %s\n",
                 config_path.c_str(), e.what());
    return 1;
  }
  const std::string header = "Bearer " + full_key;
  const std::string secret = full_key.substr(full_key.rfind('_') + 1);

  // Baseline: bare SHA-256 of the secret.
  std::size_t sha_ops = 0;
  volatile unsigned char sink = 0;
  auto t0 = Clock::now();
  while (seconds_since(t0) < budget) {
    for (int i = 0; i < 1000; ++i) sink = sink ^ static_cast<unsigned char>(infra::sha256(secret)[0]);
    sha_ops += 1000;
  }
  const double sha_rate = static_cast<double>(sha_ops) / seconds_since(t0);

  asio::io_context io(1);
  infra::MetricsRegistry metrics;
  infra::PgPool pool(cfg.postgres, metrics);

  // Cached: the hot path.
  gateway::Authenticator cached_auth(pool, cfg.auth, metrics);
  auto cached = [&]() -> asio::awaitable<std::pair<std::size_t, double>> {
    auto warm = co_await cached_auth.authenticate(header, "inference");
    if (!warm.ok()) throw std::runtime_error("benchmark key was refused");
    std::size_t n = 0;
    auto start = Clock::now();
    while (seconds_since(start) < budget) {
      for (int i = 0; i < 1000; ++i) {
        auto r = co_await cached_auth.authenticate(header, "inference");
        if (!r.ok()) throw std::runtime_error("benchmark key was refused");
      }
      n += 1000;
    }
    co_return std::pair<std::size_t, double>{n, seconds_since(start)};
  };
  auto fut = asio::co_spawn(io, cached(), asio::use_future);
  io.run();
  auto [cached_ops, cached_secs] = fut.get();
  const double cached_rate = static_cast<double>(cached_ops) / cached_secs;

  // Uncached: cache TTL 0, every call reads Postgres; SELECT 1 through the same pool as baseline.
  infra::AuthConfig no_cache = cfg.auth;
  no_cache.cache_ttl = infra::Millis(0);
  gateway::Authenticator uncached_auth(pool, no_cache, metrics);
  auto uncached = [&]() -> asio::awaitable<std::pair<std::vector<double>, std::vector<double>>> {
    std::vector<double> auth_us, ping_us;
    auto start = Clock::now();
    while (seconds_since(start) < budget) {
      auto a = Clock::now();
      auto r = co_await uncached_auth.authenticate(header, "inference");
      if (!r.ok()) throw std::runtime_error("benchmark key was refused");
      auth_us.push_back(seconds_since(a) * 1e6);
      auto b = Clock::now();
      co_await pool.ping(infra::Millis(2000));
      ping_us.push_back(seconds_since(b) * 1e6);
    }
    co_return std::pair<std::vector<double>, std::vector<double>>{auth_us, ping_us};
  };
  io.restart();
  auto fut2 = asio::co_spawn(io, uncached(), asio::use_future);
  io.run();
  auto [auth_us, ping_us] = fut2.get();
  pool.stop();

  std::printf("auth_bench (one io thread, %.1f s per measurement)\n", budget);
  std::printf("  baseline  bare SHA-256 of the secret      %12.0f ops/s\n", sha_rate);
  std::printf("  cached    authenticate (cache hit)        %12.0f ops/s   %.2fx the SHA-256 time\n",
              cached_rate, sha_rate / cached_rate);
  std::printf("  baseline  SELECT 1 through the pool       p50 %7.1f us   p99 %7.1f us\n",
              percentile(ping_us, 0.5), percentile(ping_us, 0.99));
  std::printf("  uncached  authenticate (Postgres read)    p50 %7.1f us   p99 %7.1f us   "
              "%.2fx SELECT 1 at p50\n",
              percentile(auth_us, 0.5), percentile(auth_us, 0.99),
              percentile(auth_us, 0.5) / percentile(ping_us, 0.5));
  std::printf("  samples: %zu uncached calls\n", auth_us.size());
  return sink == 255 ? 2 : 0;
}
