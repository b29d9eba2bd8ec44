// The usage ledger under failure, with the real binary and a real Postgres: a gateway killed with
// SIGKILL under load and restarted on the same journal, and Postgres stopped under load and
// started again. Every request whose response arrived complete has exactly one ledger row, and no
// request has two.
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "completions_support.h"

namespace infergate::test {
namespace {

using namespace std::chrono_literals;

const std::string kBody =
    R"({"model":"toy","messages":[{"role":"user","content":"count the ledger"}],"max_tokens":6,"temperature":0})";

// Clients sending requests back to back until stopped; keeps the ids of complete 200 responses.
class Load {
 public:
  Load(int port, std::string key, int clients) {
    for (int i = 0; i < clients; ++i) {
      threads_.emplace_back([this, port, key] {
        while (!stop_) {
          try {
            const ApiReply r = post_json(port, "/v1/chat/completions", key, kBody);
            const bool complete = r.status == 200 && r.body.is_object() && r.body.as_object().contains("usage");
            std::lock_guard lock(mu_);
            if (complete) acked_.insert(r.header("x-request-id"));
            ++attempts_;
          } catch (const std::exception&) {
            std::this_thread::sleep_for(5ms);  // the server is down: keep trying
          }
        }
      });
    }
  }
  ~Load() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  std::set<std::string> acked() {
    std::lock_guard lock(mu_);
    return acked_;
  }
  std::size_t acked_count() {
    std::lock_guard lock(mu_);
    return acked_.size();
  }

 private:
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::set<std::string> acked_;
  int attempts_ = 0;
  std::vector<std::thread> threads_;
};

void wait_for_acks(Load& load, std::size_t n, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (load.acked_count() < n && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(10ms);
  ASSERT_GE(load.acked_count(), n) << "the load never got " << n << " responses";
}

// Polls until every acknowledged request has its row; then checks none is there twice.
void expect_ledger_holds_each_once(const Backend& b, const std::set<std::string>& acked) {
  std::size_t missing = acked.size();
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < until) {
    missing = 0;
    pqxx::connection c(b.db().conninfo());
    pqxx::nontransaction tx(c);
    std::set<std::string> present;
    for (const auto& row : tx.exec("SELECT request_id FROM usage_events")) present.insert(row[0].as<std::string>());
    for (const auto& id : acked) missing += present.count(id) ? 0 : 1;
    if (missing == 0) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged requests, " << missing << " have no ledger row";
  EXPECT_EQ(b.count("SELECT count(*) - count(DISTINCT (tenant_id, request_id)) FROM usage_events"), 0)
      << "a request is in the ledger twice";
  EXPECT_EQ(b.count("SELECT count(*) FROM usage_events WHERE status = 'completed' AND completion_tokens <> 6"), 0);
}

TEST(MeteringDurability, SigkillUnderLoadThenRestartLosesNothingAndDoublesNothing) {
  Backend b;
  const Tenant t = b.tenant("kill");
  const std::string journal = make_temp_dir("journal");
  const ConfigValues cfg = b.config({{"journal", {{"dir", "\"" + journal + "\""}}}});
  const std::string models = models_toml({{"toy", model_file("toy"), "small"}});
  std::set<std::string> acked;
  {
    ServerProcess first(cfg, {}, models);
    Load load(first.port(), t.key, 4);
    wait_for_acks(load, 150, 20s);
    first.signal(SIGKILL);  // mid-stream: records in the journal, some not yet in Postgres
    ASSERT_TRUE(first.wait_exit(5s).has_value());
    load.stop();
    acked = load.acked();
  }
  ServerProcess second(cfg, {}, models);  // replays the journal from its checkpoint
  expect_ledger_holds_each_once(b, acked);
  // The rows beyond the acknowledged ones are requests whose record was durable but whose
  // response the kill cut off; they were processed, so they are metered (never more than the
  // number of requests in flight at the kill).
  const auto rows = b.count("SELECT count(*) FROM usage_events");
  EXPECT_GE(rows, static_cast<std::int64_t>(acked.size()));
  EXPECT_LE(rows, static_cast<std::int64_t>(acked.size()) + 4);
}

TEST(MeteringDurability, PostgresOutageUnderLoadEveryRecordLandsOnce) {
  PrivatePostgres pg;
  infra::PostgresConfig db;
  db.port = static_cast<std::uint16_t>(pg.port());
  Backend b(db);
  const Tenant t = b.tenant("outage");
  // Keys stay cached through the outage, so requests keep being served and metered.
  ServerProcess server(b.config({{"auth", {{"cache_ttl_ms", "600000"}}}}), {}, models_toml({{"toy", model_file("toy"), "small"}}));
  Load load(server.port(), t.key, 3);
  wait_for_acks(load, 50, 20s);
  pg.stop();
  const std::size_t before_outage = load.acked_count();
  wait_for_acks(load, before_outage + 100, 20s);  // served while Postgres is down
  // The backlog waits in the journal meanwhile.
  const HttpResponse m = http_request(server.port(), "GET", "/metrics");
  EXPECT_NE(m.body.find("infergate_journal_backlog_bytes "), std::string::npos);
  EXPECT_EQ(m.body.find("infergate_journal_backlog_bytes 0\n"), std::string::npos) << "no backlog during the outage?";
  pg.start();
  wait_for_acks(load, load.acked_count() + 50, 20s);
  load.stop();
  expect_ledger_holds_each_once(b, load.acked());
  // Without a crash every row is an acknowledged request (a client may at most have given up on
  // a response that was still being written when it stopped).
  const auto rows = b.count("SELECT count(*) FROM usage_events");
  EXPECT_GE(rows, static_cast<std::int64_t>(load.acked().size()));
  EXPECT_LE(rows, static_cast<std::int64_t>(load.acked().size()) + 3);
}

}  // namespace
}  // namespace infergate::test
