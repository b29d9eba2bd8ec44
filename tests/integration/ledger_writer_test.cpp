// The ledger writer against a real Postgres: records land once, replays never double-count,
// and a Postgres outage only grows the journal until it drains.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include <filesystem>

#include "infergate/billing/ledger_writer.h"
#include "infergate/infra/migrations.h"
#include "support/process.h"
#include "support/services.h"

namespace infergate::billing {
namespace {

using namespace std::chrono_literals;

UsageRecord record(int i) {
  UsageRecord r;
  r.tenant_id = "ten_a";
  r.request_id = "req_" + std::to_string(i);
  r.model = "toy";
  r.prompt_tokens = 100;
  r.completion_tokens = i;
  r.status = "completed";
  r.started_at_us = 1'790'000'000'000'000 + 1000LL * i;  // Sep 2026
  r.ended_at_us = r.started_at_us + 5;
  return r;
}

std::pair<std::int64_t, std::int64_t> totals(const infra::PostgresConfig& db) {
  pqxx::connection c(db.conninfo());
  pqxx::nontransaction tx(c);
  auto row = tx.exec1("SELECT count(*), coalesce(sum(prompt_tokens + completion_tokens), 0) "
                      "FROM usage_events");
  return {row[0].as<std::int64_t>(), row[1].as<std::int64_t>()};
}

infra::PostgresConfig migrated_db() {
  auto db = test::fresh_database("ledger");
  pqxx::connection c(db.conninfo());
  infra::migrate(c, infra::embedded_migrations());
  return db;
}

TEST(LedgerWriter, MovesRecordsOnceAndReplaysNeverDoubleCount) {
  auto db = migrated_db();
  const std::string dir = test::make_temp_dir("ledger");
  infra::MetricsRegistry metrics;
  const std::string pristine = test::make_temp_dir("ledger-copy");
  {
    UsageJournal journal({dir, 4096});
    for (int i = 0; i < 500; ++i) journal.append_sync(record(i));
    std::filesystem::copy(dir, pristine, std::filesystem::copy_options::overwrite_existing | std::filesystem::copy_options::recursive);
    LedgerWriter writer(journal, db, {}, metrics);
    writer.start();
    ASSERT_TRUE(writer.drain(20s));
    EXPECT_EQ(journal.backlog_bytes(), 0u);
  }
  const auto expected = std::pair<std::int64_t, std::int64_t>{500, 500 * 100 + 499 * 500 / 2};
  EXPECT_EQ(totals(db), expected);
  // The exact start time survived the trip (microseconds, UTC).
  {
    pqxx::connection c(db.conninfo());
    pqxx::nontransaction tx(c);
    EXPECT_EQ(tx.exec1("SELECT (extract(epoch FROM started_at) * 1000000)::bigint FROM "
                       "usage_events WHERE request_id = 'req_7'")[0]
                  .as<std::int64_t>(),
              record(7).started_at_us);
  }
  // Replay the same journal (as it was before the writer ran) three times: identical totals.
  for (int round = 0; round < 3; ++round) {
    const std::string replay = test::make_temp_dir("ledger-replay");
    std::filesystem::copy(pristine, replay, std::filesystem::copy_options::overwrite_existing | std::filesystem::copy_options::recursive);
    UsageJournal journal({replay, 4096});
    ASSERT_EQ(journal.read(journal.checkpoint(), 1000).records.size(), 500u);
    LedgerWriter writer(journal, db, {}, metrics);
    writer.start();
    ASSERT_TRUE(writer.drain(20s));
    writer.stop();
    EXPECT_EQ(totals(db), expected) << "round " << round;
    std::filesystem::remove_all(replay);
  }
  std::filesystem::remove_all(pristine);
  EXPECT_NE(metrics.render().find("infergate_ledger_records_total{result=\"duplicate\"}"),
            std::string::npos);
  std::filesystem::remove_all(dir);
}

// A batch of which the ledger already has some rows (a crash between the ledger's commit and its
// checkpoint, replayed): the new rows land, the others are counted as duplicates, each once.
TEST(LedgerWriter, ABatchPartlyInTheLedgerAddsOnlyItsNewRows) {
  auto db = migrated_db();
  infra::MetricsRegistry metrics;
  const std::string first = test::make_temp_dir("ledger");
  {
    UsageJournal journal({first});
    for (int i = 0; i < 300; i += 2) journal.append_sync(record(i));  // the even ones
    LedgerWriter writer(journal, db, {}, metrics);
    writer.start();
    ASSERT_TRUE(writer.drain(20s));
  }
  EXPECT_EQ(totals(db).first, 150);
  const std::string second = test::make_temp_dir("ledger");
  {
    UsageJournal journal({second});
    for (int i = 0; i < 300; ++i) journal.append_sync(record(i));  // all, in one batch
    LedgerWriter writer(journal, db, {}, metrics);
    writer.start();
    ASSERT_TRUE(writer.drain(20s));
  }
  EXPECT_EQ(totals(db), (std::pair<std::int64_t, std::int64_t>{300, 300 * 100 + 299 * 300 / 2}));
  const std::string text = metrics.render();
  EXPECT_NE(text.find("infergate_ledger_records_total{result=\"duplicate\"} 150"), std::string::npos) << text;
  EXPECT_NE(text.find("infergate_ledger_records_total{result=\"inserted\"} 300"), std::string::npos) << text;
  std::filesystem::remove_all(first);
  std::filesystem::remove_all(second);
}

// Every field lands as the record had it: text with the characters COPY's format escapes, empty
// texts as NULL, the optional time to first token, exact microseconds at both ends of the day;
// and a record dated outside the years COPY's timestamps are written for (before 1970) lands by
// the statement instead, in the same batch.
TEST(LedgerWriter, FieldsLandAsRecorded) {
  auto db = migrated_db();
  std::vector<UsageRecord> recs;
  UsageRecord a = record(1);
  a.tenant_id = "ten_\t\\N|tab";
  a.request_id = "req_line\nbreak\r\\";
  a.api_key_id = "key_1";
  a.model = "m\u00e9\\x";
  a.tier = "large";
  a.cached_tokens = 7;
  a.finish_reason = "stop";
  a.time_to_first_token_ms = 42;
  a.price_version_id = "pv_1";
  a.started_at_us = 1'790'000'000'000'000;        // 2026-09-21 14:13:20.000000
  a.ended_at_us = 1'790'000'000'999'999;          // ... .999999
  UsageRecord b = record(2);                        // empty texts, no time to first token
  b.status = "cancelled";
  b.started_at_us = 1'790'006'399'999'999;
  b.ended_at_us = b.started_at_us;
  recs = {a, b};
  pqxx::connection c(db.conninfo());
  EXPECT_EQ(LedgerWriter::insert(c, recs), 2u);
  auto row = [&](const std::string& request_id) {
    pqxx::nontransaction tx(c);
    return tx.exec_params1(
        "SELECT tenant_id, api_key_id, model, tier, prompt_tokens, completion_tokens, cached_tokens, status, "
        "finish_reason, (extract(epoch FROM started_at) * 1000000)::bigint, "
        "(extract(epoch FROM ended_at) * 1000000)::bigint, time_to_first_token_ms, price_version_id "
        "FROM usage_events WHERE request_id = $1",
        request_id);
  };
  {
    const auto r = row(a.request_id);
    EXPECT_EQ(r[0].as<std::string>(), a.tenant_id);
    EXPECT_EQ(r[1].as<std::string>(), "key_1");
    EXPECT_EQ(r[2].as<std::string>(), a.model);
    EXPECT_EQ(r[3].as<std::string>(), "large");
    EXPECT_EQ(r[4].as<std::int64_t>(), a.prompt_tokens);
    EXPECT_EQ(r[5].as<std::int64_t>(), a.completion_tokens);
    EXPECT_EQ(r[6].as<std::int64_t>(), 7);
    EXPECT_EQ(r[7].as<std::string>(), "completed");
    EXPECT_EQ(r[8].as<std::string>(), "stop");
    EXPECT_EQ(r[9].as<std::int64_t>(), a.started_at_us);
    EXPECT_EQ(r[10].as<std::int64_t>(), a.ended_at_us);
    EXPECT_EQ(r[11].as<std::int64_t>(), 42);
    EXPECT_EQ(r[12].as<std::string>(), "pv_1");
  }
  {
    const auto r = row(b.request_id);
    EXPECT_TRUE(r[1].is_null());
    EXPECT_EQ(r[7].as<std::string>(), "cancelled");
    EXPECT_TRUE(r[8].is_null());
    EXPECT_EQ(r[9].as<std::int64_t>(), b.started_at_us);
    EXPECT_TRUE(r[11].is_null());
    EXPECT_TRUE(r[12].is_null());
  }
  // Before 1970 (a clock gone wrong): the batch goes by the statement, and lands all the same.
  UsageRecord early = record(3), late = record(4);
  early.started_at_us = -1'000'000;
  early.ended_at_us = -1;
  EXPECT_EQ(LedgerWriter::insert(c, {early, late}), 2u);
  EXPECT_EQ(row(early.request_id)[9].as<std::int64_t>(), early.started_at_us);
  EXPECT_EQ(row(late.request_id)[9].as<std::int64_t>(), late.started_at_us);
  // Sent again, every one of them: nothing new.
  EXPECT_EQ(LedgerWriter::insert(c, {a, b, early, late}), 0u);
  EXPECT_EQ(totals(db).first, 4);
}

// A record that Postgres refuses for its content (here an end before its start, which the
// ledger's CHECK rules out) used to stop the ledger for good: its batch was retried forever, and
// every later record with it. Now the batch's other records land, the refused one is kept whole
// in usage_rejected with Postgres' error (once, however often it is replayed), and the writer
// goes on with what follows.
TEST(LedgerWriter, ARecordPostgresRefusesIsSetAsideAndTheRestLand) {
  auto db = migrated_db();
  infra::MetricsRegistry metrics;
  const std::string dir = test::make_temp_dir("ledger");
  const std::string pristine = test::make_temp_dir("ledger-copy");
  UsageRecord bad = record(50);
  bad.ended_at_us = bad.started_at_us - 1;
  {
    UsageJournal journal({dir});
    for (int i = 0; i < 100; ++i) journal.append_sync(i == 50 ? bad : record(i));
    std::filesystem::copy(dir, pristine, std::filesystem::copy_options::overwrite_existing | std::filesystem::copy_options::recursive);
    LedgerWriter writer(journal, db, {1000, 20ms, 50ms}, metrics);
    writer.start();
    ASSERT_TRUE(writer.drain(20s)) << "the writer is stuck on the refused record";
    for (int i = 100; i < 120; ++i) journal.append_sync(record(i));  // and later records still land
    ASSERT_TRUE(writer.drain(20s));
  }
  EXPECT_EQ(totals(db), (std::pair<std::int64_t, std::int64_t>{119, 119 * 100 + 119 * 120 / 2 - 50}));
  const auto rejected = [&] {
    pqxx::connection c(db.conninfo());
    pqxx::nontransaction tx(c);
    return tx.exec("SELECT record, error FROM usage_rejected");
  };
  {
    const auto rows = rejected();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(decode_usage(rows[0][0].as<std::string>()), bad);  // whole, as written
    EXPECT_NE(rows[0][1].as<std::string>().find("check"), std::string::npos) << rows[0][1].as<std::string>();
  }
  EXPECT_NE(metrics.render().find("infergate_ledger_records_total{result=\"rejected\"} 1"), std::string::npos)
      << metrics.render();
  // Replayed from before the writer ran: nothing doubles, in either table.
  {
    UsageJournal journal({pristine});
    LedgerWriter writer(journal, db, {1000, 20ms, 50ms}, metrics);
    writer.start();
    ASSERT_TRUE(writer.drain(20s));
  }
  EXPECT_EQ(totals(db).first, 119);
  EXPECT_EQ(rejected().size(), 1u);
  std::filesystem::remove_all(dir);
  std::filesystem::remove_all(pristine);
}

TEST(LedgerWriter, PostgresDownGrowsTheJournalThenItDrains) {
  test::PrivatePostgres pg(/*start_now=*/false);
  auto cfg = test::postgres_config(pg.port());
  cfg.connect_timeout = 1000ms;
  const std::string dir = test::make_temp_dir("ledger");
  infra::MetricsRegistry metrics;
  UsageJournal journal({dir});
  LedgerWriter writer(journal, cfg, {1000, 20ms, 100ms}, metrics);
  writer.start();
  for (int i = 0; i < 200; ++i) journal.append_sync(record(i));
  EXPECT_FALSE(writer.drain(500ms));
  const auto backlog = journal.backlog_bytes();
  EXPECT_GT(backlog, 0u);
  EXPECT_NE(metrics.render().find("infergate_journal_backlog_bytes " + std::to_string(backlog)),
            std::string::npos);
  for (int i = 200; i < 300; ++i) journal.append_sync(record(i));
  EXPECT_GT(journal.backlog_bytes(), backlog);  // it grows while Postgres is away

  pg.start();
  {
    pqxx::connection c(cfg.conninfo());
    infra::migrate(c, infra::embedded_migrations());
  }
  ASSERT_TRUE(writer.drain(20s));
  writer.stop();
  EXPECT_EQ(totals(cfg).first, 300);
  EXPECT_EQ(journal.backlog_bytes(), 0u);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace infergate::billing
