// `infergate reconcile [--tenant T]`: recomputes the quota counters of the current day and
// month from the Postgres usage ledger (plus the reservations of requests in flight) and
// writes them to Redis, e.g. after Redis lost its data.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <pqxx/pqxx>

#include <cstdio>
#include <thread>

#include "cli.h"
#include "infergate/gateway/admission.h"
#include "infergate/gateway/reconcile.h"
#include "infergate/infra/log.h"

namespace infergate::app {

namespace asio = boost::asio;

int cmd_reconcile(const std::vector<std::string>& args) {
  Flags f = parse_flags(args, {"config", "tenant"});
  if (!f.positional.empty()) throw UsageError("unexpected argument " + f.positional[0]);
  infra::Config cfg = load_config_for(f);
  infra::log::set_level(infra::log::Level::warn);

  std::vector<gateway::LedgerUsage> usage;
  try {
    pqxx::connection conn(cfg.postgres.conninfo());
    usage = gateway::ledger_usage(conn, f.get("tenant"));
  } catch (const pqxx::undefined_table&) {
    std::fprintf(stderr, "infergate reconcile: the database has no schema yet; run `infergate migrate`\n");
    return kExitFailed;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "infergate reconcile: cannot read the usage ledger from Postgres at %s:%u: %s\n",
                 cfg.postgres.host.c_str(), cfg.postgres.port, e.what());
    return kExitFailed;
  }
  if (f.get("tenant") && usage.empty()) {
    std::fprintf(stderr, "infergate reconcile: no tenant '%s'\n", f.get("tenant")->c_str());
    return kExitFailed;
  }

  asio::io_context io(1);
  auto guard = asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  infra::MetricsRegistry metrics;
  infra::RedisClient redis(io, cfg.redis, metrics);
  redis.start();
  for (int i = 0; i < 100 && !redis.connected(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  int rc = kExitOk;
  if (!redis.connected()) {
    std::fprintf(stderr, "infergate reconcile: cannot reach Redis at %s:%u: %s\n",
                 cfg.redis.host.c_str(), cfg.redis.port, redis.last_error().c_str());
    rc = kExitFailed;
  } else {
    gateway::Admission admission(redis, cfg.admission, metrics);
    for (const auto& u : usage) {
      try {
        auto result = asio::co_spawn(
                          io,
                          [&]() -> asio::awaitable<gateway::Admission::ReconcileResult> {
                            gateway::Admission::ReconcileResult r = co_await admission.reconcile(
                                u.tenant_id, u.periods, u.used_day, u.used_month);
                            co_return r;
                          },
                          asio::use_future)
                          .get();
        std::printf("%s (%s): day %s = %lld (ledger %lld + in flight %lld), month %s = %lld "
                    "(ledger %lld + in flight %lld)\n",
                    u.tenant_name.c_str(), u.tenant_id.c_str(), u.periods.day.c_str(),
                    static_cast<long long>(result.day), static_cast<long long>(u.used_day),
                    static_cast<long long>(result.reserved_day), u.periods.month.c_str(),
                    static_cast<long long>(result.month), static_cast<long long>(u.used_month),
                    static_cast<long long>(result.reserved_month));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "infergate reconcile: tenant %s: %s\n", u.tenant_id.c_str(), e.what());
        rc = kExitFailed;
      }
    }
  }
  redis.stop();
  guard.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  io.stop();
  runner.join();
  return rc;
}

}  // namespace infergate::app
