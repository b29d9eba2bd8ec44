// `infergate serve`: wires config, Postgres, Redis, the router and the HTTP server together,
// runs the io threads, and drains gracefully on SIGTERM/SIGINT.
#include <pthread.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <pqxx/nontransaction>

#include <thread>

#include "cli.h"
#include "infergate/billing/ledger_writer.h"
#include "infergate/billing/usage_journal.h"
#include "infergate/engine/device.h"
#include "infergate/gateway/admin_api.h"
#include "infergate/gateway/auth.h"
#include "infergate/gateway/completions_api.h"
#include "infergate/gateway/models.h"
#include "infergate/gateway/billing_api.h"
#include "infergate/gateway/inference_api.h"
#include "infergate/gateway/health.h"
#include "infergate/gateway/server.h"
#include "infergate/infra/log.h"
#include "infergate/infra/pg_pool.h"
#include "infergate/infra/redis_client.h"

namespace infergate::app {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

std::vector<gateway::ReadinessCheck> readiness_checks(infra::PgPool& pg, infra::RedisClient& redis) {
  std::vector<gateway::ReadinessCheck> checks(2);
  checks[0].name = "postgres";
  checks[0].check = [&pg]() -> asio::awaitable<std::optional<std::string>> {
                      try {
                        co_await pg.ping(1000ms);
                        co_return std::nullopt;
                      } catch (const std::exception& e) {
                        co_return std::string(e.what());
                      }
                    };
  checks[1].name = "redis";
  checks[1].check = [&redis]() -> asio::awaitable<std::optional<std::string>> {
                      try {
                        // (built before co_await: GCC 12 miscompiles braced lists there)
                        std::vector<std::string> ping{"PING"};
                        auto r = co_await redis.command(ping, 1000ms);
                        if (r.is_error()) co_return "PING answered " + r.str;
                        co_return std::nullopt;
                      } catch (const std::exception& e) {
                        co_return std::string(e.what());
                      }
                    };
  return checks;
}

// Waits for a signal, then drains: stop accepting, let requests in progress finish for up to
// shutdown_grace, close what is left, and stop the io threads. A second signal cuts the grace.
asio::awaitable<void> shutdown_on_signal(asio::io_context& io, gateway::HttpServer& server,
                                         gateway::ModelRegistry& models, gateway::Admission& admission,
                                         infra::RedisClient& redis,
                                         infra::RedisClient& subscriber, infra::Millis grace,
                                         infra::Millis cut_wait) {
  asio::signal_set signals(io, SIGINT, SIGTERM);
  auto [ec, sig] = co_await signals.async_wait(asio::as_tuple(asio::use_awaitable));
  if (ec) co_return;
  infra::log::info("shutdown started", {{"signal", sig},
                                        {"connections", server.active_connections()},
                                        {"grace_ms", grace.count()}});
  server.begin_drain();
  bool hurry = false;
  signals.async_wait([&hurry](const boost::system::error_code& e, int) {
    if (!e) hurry = true;
  });
  const auto deadline = std::chrono::steady_clock::now() + grace;
  asio::steady_timer tick(io);
  while (server.active_connections() > 0 && std::chrono::steady_clock::now() < deadline && !hurry) {
    tick.expires_after(10ms);
    co_await tick.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (auto left = server.active_connections(); left > 0) {
    infra::log::warn("closing connections after grace period", {{"connections", left}});
    server.close_all();
    // Each request cut off ends at its engine's next step (every engine cancels what it holds:
    // a streamed request would otherwise notice only at its next write, a step later). Its
    // handler then meters it (cancelled, with the tokens processed) and settles its reservation,
    // as for any client that left. The wait is for the step under way however long it takes (the
    // exit would wait for it anyway, and only a handler still running can settle in Redis), and
    // up to cut_wait for the handlers after it. A second signal cuts it short: then a handler
    // still waiting is metered at exit (meter_abandoned_streams) and its reservation released at
    // its expiry.
    models.cancel_all_generations();
    const auto cut_deadline = std::chrono::steady_clock::now() + std::max(cut_wait, infra::Millis(100));
    while (server.active_connections() > 0 && !hurry &&
           (std::chrono::steady_clock::now() < cut_deadline || models.generating())) {
      tick.expires_after(10ms);
      co_await tick.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    if (const auto still = server.active_connections(); still > 0)
      infra::log::warn(hurry ? "shutdown hurried by a second signal; requests still running are metered at exit and "
                               "their reservations released at expiry"
                             : "requests still running after shutdown_cut_ms; they are metered at exit and their "
                               "reservations released at expiry",
                       {{"connections", still}});
  }
  signals.cancel();  // a second signal cut the grace and the wait above short
  // Settlements the last responses did not wait for are still queued or in flight, and so are
  // the releases of reservations admitted ahead that no request took: let them reach Redis
  // (bounded: Redis may be down; a reservation left open is released at its expiry).
  admission.release_prefetched(io.get_executor());
  const auto settle_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (admission.pending() > 0 && std::chrono::steady_clock::now() < settle_deadline) {
    tick.expires_after(5ms);
    co_await tick.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (const auto left = admission.pending(); left > 0) {
    infra::log::warn("settlements not sent before shutdown; their reservations are released at expiry",
                     {{"pending", left}});
  }
  redis.stop();
  subscriber.stop();
  tick.expires_after(10ms);  // let the Redis close run on its strand
  co_await tick.async_wait(asio::as_tuple(asio::use_awaitable));
  io.stop();
}

// The per-model engine gauges of /metrics (running, waiting, KV use), twice a second.
asio::awaitable<void> refresh_engine_gauges(asio::io_context& io, gateway::CompletionsApi& completions) {
  asio::steady_timer timer(io);
  for (;;) {
    completions.update_gauges();
    timer.expires_after(std::chrono::milliseconds(500));
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
  }
}

// Keeps monthly partitions of the usage ledger created ahead of time: at startup (as soon as
// Postgres answers) and then daily.
asio::awaitable<void> maintain_usage_partitions(infra::PgPool& pg) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex);
  bool warned = false;
  for (;;) {
    std::chrono::milliseconds next = 24h;
    try {
      const auto job = [](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        tx.exec("SELECT infergate_ensure_usage_partitions(now(), 3)");
      };
      co_await pg.run(job);
      warned = false;
    } catch (const std::exception& e) {
      if (!warned)
        infra::log::warn("usage ledger partitions not checked; retrying every minute",
                         {{"error", e.what()}});
      warned = true;
      next = 1min;
    }
    timer.expires_after(next);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
  }
}

}  // namespace

int cmd_serve(const std::vector<std::string>& args) {
  Flags flags = parse_flags(args, {"config"});
  if (!flags.positional.empty()) throw UsageError("unexpected argument " + flags.positional[0]);
  const infra::Config cfg = load_config_for(flags);  // exits 2 on a bad config, before binding
  infra::log::set_level(infra::log::parse_level(cfg.log.level));

  const auto cpu = kernels::detect_cpu();
  const auto gpus = kernels::detect_gpus();
  const auto device = engine::resolve_device(engine::DeviceChoice::automatic, cpu, gpus);
  infra::log::info("starting", {{"version", INFERGATE_VERSION},
                                {"config", cfg.source},
                                {"io_threads", cfg.server.io_threads},
                                {"compute", device.description},
                                {"gpu_note", gpus.note}});

  // Declared before everything that records into it, so it outlives them all.
  infra::MetricsRegistry metrics;
  // The usage journal first: a damaged journal is a startup error (nothing is served that could
  // not be metered).
  std::unique_ptr<billing::UsageJournal> journal;
  try {
    billing::UsageJournal::Options jo{cfg.journal.dir, cfg.journal.segment_bytes, true};
    jo.direct_io = cfg.journal.direct_io;
    jo.commit_seconds = &metrics
                             .histogram("infergate_journal_commit_seconds",
                                        "Usage journal commits: write and fdatasync (a request's record waits for "
                                        "the commit in flight, then its own)",
                                        {}, {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1})
                             .with({});
    jo.commit_records = &metrics
                             .histogram("infergate_journal_commit_records", "Usage records per journal commit", {},
                                        {1, 2, 4, 8, 16, 32, 64, 128, 256})
                             .with({});
    journal = std::make_unique<billing::UsageJournal>(jo);
  } catch (const billing::JournalError& e) {
    infra::log::error("cannot open the usage journal", {{"dir", cfg.journal.dir}, {"error", e.what()}});
    return kExitFailed;
  }
  infra::log::info("usage journal open", {{"dir", cfg.journal.dir}, {"direct_io", journal->writes_direct()}});
  if (journal->torn_bytes_dropped() > 0)
    infra::log::warn("usage journal: dropped a torn last record (never acknowledged)",
                     {{"bytes", journal->torn_bytes_dropped()}});

  // The io threads: the main thread runs `io` (the acceptors, the Redis clients, timers and its
  // share of the connections); each other io thread runs a context of its own with its share of
  // the connections. One thread per context: a connection's handlers need no strand.
  asio::io_context io(1);
  std::vector<std::unique_ptr<asio::io_context>> more_io;
  for (int i = 1; i < cfg.server.io_threads; ++i) more_io.push_back(std::make_unique<asio::io_context>(1));
  std::vector<asio::io_context*> connection_contexts{&io};
  for (auto& c : more_io) connection_contexts.push_back(c.get());
  billing::LedgerWriter ledger(*journal, cfg.postgres,
                               {static_cast<std::size_t>(cfg.journal.batch_records),
                                cfg.journal.ledger_interval, std::chrono::milliseconds(500)},
                               metrics);
  ledger.start();
  infra::PgPool pg(cfg.postgres, metrics);
  infra::RedisClient redis(io, cfg.redis, metrics);
  redis.start();

  // Cached API keys are dropped on every instance when an admin changes them: a second Redis
  // connection listens for invalidations; after a reconnect (messages may have been missed) the
  // whole cache is dropped.
  gateway::Authenticator auth(pg, cfg.auth, metrics);
  // Its own registry: the subscriber's connection counters would collide with the command
  // client's series, and /metrics reports the command client.
  infra::MetricsRegistry subscriber_metrics;
  infra::RedisClient subscriber(io, cfg.redis, subscriber_metrics, "redis subscriber");
  subscriber.subscribe(
      {gateway::kInvalidationChannel},
      [&auth](const std::string&, const std::string& message) { auth.on_invalidation(message); },
      [&auth] { auth.cache().clear(); });
  subscriber.start();

  gateway::Router router;
  gateway::HttpServer server(io, connection_contexts, cfg.server, router, metrics);
  gateway::add_health_routes(router, readiness_checks(pg, redis), metrics,
                             [&server] { return server.draining(); });
  gateway::AdminApi admin(pg, &redis, auth);
  admin.add_routes(router);
  gateway::Admission admission(redis, cfg.admission, metrics);
  gateway::InferenceApi inference(auth, admission);
  inference.add_routes(router);
  // The models, each with its engine; one that cannot load is a startup error.
  std::unique_ptr<gateway::ModelRegistry> models;
  try {
    models = std::make_unique<gateway::ModelRegistry>(cfg);
  } catch (const std::exception& e) {
    infra::log::error("cannot load a model", {{"error", e.what()}});
    return kExitFailed;
  }
  if (models->models().empty())
    infra::log::warn("no models configured: completion requests will get 404 (add [[models]] to the config)");
  gateway::CompletionsApi completions(inference, admission, *models, *journal, cfg.admission, metrics);
  completions.add_routes(router);
  gateway::BillingApi billing_api(pg, auth, inference, admission);
  billing_api.add_routes(router);
  try {
    server.start();
  } catch (const std::exception& e) {  // a port in use, an unreadable TLS certificate or key
    infra::log::error("cannot start", {{"error", e.what()}});
    return kExitFailed;
  }
  if (server.tls_port() != 0) {
    infra::log::info("listening", {{"address", cfg.server.listen_address}, {"port", server.port()},
                                   {"tls_port", server.tls_port()}});
  } else {
    infra::log::info("listening", {{"address", cfg.server.listen_address}, {"port", server.port()}});
  }

  // Probe both dependencies once so the log states up front what is down.
  asio::co_spawn(io, [&pg]() -> asio::awaitable<void> {
    try {
      co_await pg.ping(2000ms);
    } catch (const std::exception&) {
      // PgPool logged the state change.
    }
  }, asio::detached);
  asio::co_spawn(io, maintain_usage_partitions(pg), asio::detached);
  asio::co_spawn(io, refresh_engine_gauges(io, completions), asio::detached);
  asio::co_spawn(io,
                 shutdown_on_signal(io, server, *models, admission, redis, subscriber, cfg.server.shutdown_grace,
                                    cfg.server.shutdown_cut),
                 asio::detached);

  // The other contexts run until the main one is done (shutdown_on_signal stops it once every
  // connection has closed and the last settlements have gone).
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> keep;
  std::vector<std::thread> threads;
  for (auto& c : more_io) {
    keep.push_back(asio::make_work_guard(*c));
    threads.emplace_back([&ctx = *c] {
      pthread_setname_np(pthread_self(), "ig-io");
      ctx.run();
    });
  }
  io.run();
  keep.clear();
  for (auto& c : more_io) c->stop();
  for (auto& t : threads) t.join();
  // A generation still running (cut at the grace deadline) is finished by its engine now, as
  // cancelled; a non-streaming one's record goes to the journal from the engine thread (its
  // request is gone), so its tokens are metered. The records' callbacks post to the event loops above: they have
  // run once flush returns, before those loops go.
  models->stop_engines();
  // A streamed request whose handler stopped with the event loops before its engine's last event
  // (the engine was in a long step when the connections were closed) is metered now.
  completions.meter_abandoned_streams();
  journal->flush();
  // Every usage record the journal holds goes to Postgres before we exit, if it can.
  const auto backlog = journal->backlog_bytes();
  if (backlog > 0 && !ledger.drain(cfg.journal.drain_timeout))
    infra::log::warn("usage ledger not drained; the journal keeps the records for the next start",
                     {{"backlog_bytes", journal->backlog_bytes()}});
  ledger.stop();
  pg.stop();
  infra::log::info("shutdown complete");
  return kExitOk;
}

}  // namespace infergate::app
