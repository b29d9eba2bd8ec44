// Usage metering throughput and cost, measured in one run:
//   ingest     sustained rate journal -> Postgres: a backlog of N journaled records drained by
//              the ledger writer (records/s; goal >= 20,000), next to the writer's own batch
//              write (COPY) of the same rows straight from memory (the ceiling for this Postgres)
//   append     durable journal append per request (append + group-committed fdatasync) with C
//              concurrent appenders: p50/p99 and appends/s, beside a bare write + fdatasync of
//              one record's size on the same disk, and the ratios.
// Postgres: INGEST_BENCH_PG_PORT (user infergate on 127.0.0.1; a scratch database is created
// and dropped), else a private throwaway one is started with tests/support/test-services.sh
// (fsync off, like the tests: say so when quoting figures). The journal lives in
// INGEST_BENCH_DIR (default: a fresh directory under the current one; not tmpfs, or fsync is
// free). Usage:
//   ingest_bench [--records N] [--seconds S] [--appenders C[,C...]]
#include <fcntl.h>
#include <unistd.h>

#include <pqxx/pqxx>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "infergate/billing/ledger_writer.h"
#include "infergate/billing/usage_journal.h"
#include "infergate/infra/ids.h"
#include "infergate/infra/log.h"
#include "infergate/infra/migrations.h"

using namespace infergate;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

billing::UsageRecord record(std::int64_t i) {
  billing::UsageRecord r;
  r.tenant_id = "ten_" + std::to_string(i % 50);
  r.request_id = infra::new_request_id();
  r.api_key_id = "key_" + std::to_string(i % 200);
  r.model = i % 3 ? "small-chat" : "large-chat";
  r.tier = i % 3 ? "small" : "large";
  r.prompt_tokens = 200 + i % 1000;
  r.completion_tokens = 50 + i % 300;
  r.cached_tokens = i % 4 == 0 ? 128 : 0;
  r.status = "completed";
  r.finish_reason = "stop";
  r.started_at_us = 1'790'000'000'000'000 + i * 1000;
  r.ended_at_us = r.started_at_us + 850'000;
  r.time_to_first_token_ms = 42;
  return r;
}

struct Percentiles {
  double p50 = 0, p99 = 0;
};
Percentiles percentiles(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 99 / 100)]};
}

// A Postgres to measure against: the given port, or a private throwaway server.
struct Postgres {
  infra::PostgresConfig cfg;
  std::string private_dir;
  std::string scratch_db;

  Postgres() {
    cfg.host = "127.0.0.1";
    cfg.user = "infergate";
    cfg.database = "postgres";
    if (const char* p = std::getenv("INGEST_BENCH_PG_PORT")) {
      cfg.port = static_cast<std::uint16_t>(std::atoi(p));
    } else {
      private_dir = (fs::temp_directory_path() / ("ingest_bench_pg_" + infra::random_hex(4))).string();
      const std::string cmd = std::string(IG_TEST_SERVICES_SCRIPT) + " postgres " + private_dir + " 0";
      FILE* f = ::popen(cmd.c_str(), "r");
      char buf[64] = {0};
      if (!f || !std::fgets(buf, sizeof buf, f)) throw std::runtime_error("cannot start postgres");
      ::pclose(f);
      cfg.port = static_cast<std::uint16_t>(std::atoi(buf));
      std::printf("postgres: private throwaway server on port %u (fsync off)\n", cfg.port);
    }
    pqxx::connection admin(cfg.conninfo());
    pqxx::nontransaction tx(admin);
    scratch_db = "ingest_bench_" + infra::random_hex(4);
    tx.exec("CREATE DATABASE " + scratch_db);
    std::printf("postgres: fsync=%s synchronous_commit=%s\n",
                tx.exec1("SHOW fsync")[0].c_str(), tx.exec1("SHOW synchronous_commit")[0].c_str());
    cfg.database = scratch_db;
    pqxx::connection c(cfg.conninfo());
    infra::migrate(c, infra::embedded_migrations());
  }
  ~Postgres() {
    try {
      auto admin_cfg = cfg;
      admin_cfg.database = "postgres";
      pqxx::connection admin(admin_cfg.conninfo());
      pqxx::nontransaction tx(admin);
      tx.exec("DROP DATABASE IF EXISTS " + scratch_db);
    } catch (const std::exception&) {
    }
    if (!private_dir.empty()) {
      const std::string cmd =
          std::string(IG_TEST_SERVICES_SCRIPT) + " stop-postgres " + private_dir + " >/dev/null 2>&1";
      if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "could not stop postgres\n");
      fs::remove_all(private_dir);
    }
  }
};

void ingest(const Postgres& pg, const std::string& base, std::int64_t n) {
  const std::string dir = base + "/ingest";
  fs::remove_all(dir);
  infra::MetricsRegistry metrics;
  {
    billing::UsageJournal journal({dir, 64ull << 20, /*fsync=*/false});
    for (std::int64_t i = 0; i + 1 < n; ++i) journal.append(record(i), [](std::error_code) {});
    journal.append_sync(record(n - 1));  // in order: everything before it is written too
  }
  // Baseline: the same rows by the writer's batch write (COPY), straight from memory, one batch
  // at a time.
  std::vector<billing::UsageRecord> rows;
  for (std::int64_t i = 0; i < n; ++i) rows.push_back(record(n + i));
  pqxx::connection conn(pg.cfg.conninfo());
  auto t0 = Clock::now();
  for (std::size_t i = 0; i < rows.size(); i += 1000) {
    std::vector<billing::UsageRecord> batch(rows.begin() + static_cast<std::ptrdiff_t>(i),
                                            rows.begin() + static_cast<std::ptrdiff_t>(std::min(rows.size(), i + 1000)));
    billing::LedgerWriter::insert(conn, batch);
  }
  const double bare_s = seconds_since(t0);

  billing::UsageJournal journal({dir, 64ull << 20, false});
  const std::uint64_t backlog = journal.backlog_bytes();
  billing::LedgerWriter writer(journal, pg.cfg, {1000, std::chrono::milliseconds(5),
                                                 std::chrono::milliseconds(100)},
                               metrics);
  t0 = Clock::now();
  writer.start();
  if (!writer.drain(std::chrono::minutes(10))) std::printf("ingest: drain timed out\n");
  const double drain_s = seconds_since(t0);
  writer.stop();
  pqxx::nontransaction tx(conn);
  const auto stored = tx.exec1("SELECT count(*) FROM usage_events")[0].as<std::int64_t>();
  const double rate = static_cast<double>(n) / drain_s, bare = static_cast<double>(n) / bare_s;
  std::printf("ingest: %lld records (%.1f MiB of journal) drained in %.2f s = %.0f "
              "records/s  [goal >= 20000: %s]\n",
              static_cast<long long>(n), static_cast<double>(backlog) / (1 << 20), drain_s, rate,
              rate >= 20000 ? "met" : "NOT met");
  std::printf("ingest baseline: the same batch write (COPY) from memory: %.0f records/s; journal path / "
              "baseline = %.2f\n",
              bare, rate / bare);
  std::printf("ingest check: %lld rows in usage_events (expected %lld)\n",
              static_cast<long long>(stored), static_cast<long long>(2 * n));
  fs::remove_all(dir);
}

void append_latency(const std::string& base, int appenders, double seconds) {
  const std::string dir = base + "/append";
  fs::remove_all(dir);
  billing::UsageJournal journal({dir});
  std::vector<std::vector<double>> lat(static_cast<std::size_t>(appenders));
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(seconds));
  const auto fsyncs0 = journal.fsync_count();
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  std::atomic<std::int64_t> seq{0};
  for (int a = 0; a < appenders; ++a)
    threads.emplace_back([&, a] {
      while (Clock::now() < end) {
        auto r = record(seq++);
        auto s = Clock::now();
        journal.append_sync(r);
        lat[static_cast<std::size_t>(a)].push_back(
            std::chrono::duration<double, std::micro>(Clock::now() - s).count());
      }
    });
  for (auto& t : threads) t.join();
  const double took = seconds_since(t0);
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  const auto p = percentiles(all);
  const auto syncs = journal.fsync_count() - fsyncs0;

  // Baseline: one writer, write + fdatasync of one record's frame, the same disk.
  const std::string frame = std::string(8, '\0') + billing::encode_usage(record(0));
  const std::string bare_path = dir + "/bare.bin";
  int fd = ::open(bare_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  std::vector<double> bare;
  const auto bare_end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(seconds / 2));
  auto b0 = Clock::now();
  while (Clock::now() < bare_end) {
    auto s = Clock::now();
    if (::write(fd, frame.data(), frame.size()) < 0 || ::fdatasync(fd) != 0)
      break;
    bare.push_back(std::chrono::duration<double, std::micro>(Clock::now() - s).count());
  }
  const double bare_took = seconds_since(b0);
  ::close(fd);
  const auto b = percentiles(bare);
  std::printf("append: %2d appenders: %8.0f appends/s, %6.1f records per fdatasync, p50 %7.1f us, "
              "p99 %7.1f us | bare fdatasync of %zu B: %6.0f/s p50 %7.1f us p99 %7.1f us | "
              "ratio p50 %.2f, p99 %.2f, throughput %.1fx\n",
              appenders, static_cast<double>(all.size()) / took,
              syncs ? static_cast<double>(all.size()) / static_cast<double>(syncs) : 0.0, p.p50,
              p.p99, frame.size(), static_cast<double>(bare.size()) / bare_took, b.p50,
              b.p99, b.p50 > 0 ? p.p50 / b.p50 : 0, b.p99 > 0 ? p.p99 / b.p99 : 0,
              (static_cast<double>(all.size()) / took) /
                  std::max(1.0, static_cast<double>(bare.size()) / bare_took));
  fs::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t records = 200'000;
  double seconds = 2;
  std::vector<int> appenders{1, 8, 32};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--records") {
      records = std::atoll(value.c_str());
    } else if (flag == "--seconds") {
      seconds = std::atof(value.c_str());
    } else if (flag == "--appenders") {
      appenders.clear();
      for (std::size_t pos = 0; pos < value.size();) {
        auto comma = value.find(',', pos);
        if (comma == std::string::npos) comma = value.size();
        appenders.push_back(std::atoi(value.substr(pos, comma - pos).c_str()));
        pos = comma + 1;
      }
    } else {
      std::fprintf(stderr, "usage: ingest_bench [--records N] [--seconds S] [--appenders C,...]\n");
      return 2;
    }
  }
  infra::log::set_level(infra::log::Level::warn);
  const char* dir_env = std::getenv("INGEST_BENCH_DIR");
  const std::string base = dir_env ? dir_env : (fs::current_path() / ("ingest_bench_" + infra::random_hex(4))).string();
  fs::create_directories(base);
  std::printf("journal directory: %s\n", base.c_str());
  try {
    for (int c : appenders) append_latency(base, c, seconds);
    Postgres pg;
    ingest(pg, base, records);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ingest_bench: %s\n", e.what());
    if (!dir_env) fs::remove_all(base);
    return 1;
  }
  if (!dir_env) fs::remove_all(base);
  return 0;
}
