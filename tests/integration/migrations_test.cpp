// Migrations against a real Postgres: applied once, in order, each atomically; changed or
// unknown history refused; concurrent runners serialized by the advisory lock.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include <thread>

#include "infergate/infra/migrations.h"
#include "support/services.h"

namespace infergate {
namespace {

using infra::Migration;
using infra::MigrationError;

std::vector<std::string> applied_names(pqxx::connection& c) {
  pqxx::nontransaction tx(c);
  std::vector<std::string> out;
  for (const auto& row : tx.exec("SELECT name FROM schema_migrations ORDER BY name"))
    out.push_back(row[0].as<std::string>());
  return out;
}

bool table_exists(pqxx::connection& c, const std::string& name) {
  pqxx::nontransaction tx(c);
  return tx.exec1("SELECT to_regclass(" + tx.quote(name) + ") IS NOT NULL")[0].as<bool>();
}

const std::vector<Migration> kTwo = {
    {"0001_widgets.sql", "CREATE TABLE widgets (id bigint PRIMARY KEY);"},
    {"0002_gadgets.sql", "CREATE TABLE gadgets (id bigint PRIMARY KEY);\n"
                         "INSERT INTO widgets VALUES (1);"},
};

TEST(Migrations, AppliesInOrderAndRecordsChecksums) {
  pqxx::connection c(test::fresh_database("mig").conninfo());
  auto r = infra::migrate(c, kTwo);
  EXPECT_EQ(r.applied, (std::vector<std::string>{"0001_widgets.sql", "0002_gadgets.sql"}));
  EXPECT_EQ(r.already_applied, 0u);
  EXPECT_TRUE(table_exists(c, "gadgets"));
  pqxx::nontransaction tx(c);
  EXPECT_EQ(tx.exec1("SELECT checksum FROM schema_migrations WHERE name = '0001_widgets.sql'")[0]
                .as<std::string>(),
            kTwo[0].checksum());
}

TEST(Migrations, SecondRunIsANoOp) {
  pqxx::connection c(test::fresh_database("mig").conninfo());
  infra::migrate(c, kTwo);
  auto r = infra::migrate(c, kTwo);
  EXPECT_TRUE(r.applied.empty());
  EXPECT_EQ(r.already_applied, 2u);
  pqxx::nontransaction tx(c);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM widgets")[0].as<int>(), 1);  // not inserted twice
}

TEST(Migrations, OnlyPendingOnesRunLater) {
  pqxx::connection c(test::fresh_database("mig").conninfo());
  infra::migrate(c, {kTwo[0]});
  auto r = infra::migrate(c, kTwo);
  EXPECT_EQ(r.applied, (std::vector<std::string>{"0002_gadgets.sql"}));
  EXPECT_EQ(r.already_applied, 1u);
}

TEST(Migrations, RefusesWhenAnAppliedFileChanged) {
  pqxx::connection c(test::fresh_database("mig").conninfo());
  infra::migrate(c, {kTwo[0]});
  auto changed = kTwo;
  changed[0].sql += "\n-- edited";
  try {
    infra::migrate(c, changed);
    FAIL() << "expected MigrationError";
  } catch (const MigrationError& e) {
    EXPECT_NE(std::string(e.what()).find("0001_widgets.sql has changed"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(table_exists(c, "gadgets"));  // refused before applying anything
}

TEST(Migrations, RefusesUnknownAppliedMigration) {
  pqxx::connection c(test::fresh_database("mig").conninfo());
  infra::migrate(c, kTwo);
  EXPECT_THROW(infra::migrate(c, {kTwo[0]}), MigrationError);  // DB knows 0002, list does not
}

TEST(Migrations, RefusesAPendingFileNumberedBeforeAnAppliedOne) {
  pqxx::connection c(test::fresh_database("mig").conninfo());
  infra::migrate(c, {kTwo[1].name == "0002_gadgets.sql"
                         ? Migration{"0002_gadgets.sql", "CREATE TABLE gadgets (id int);"}
                         : kTwo[1]});
  try {
    infra::migrate(c, {{"0001_early.sql", "CREATE TABLE early (id int);"},
                       {"0002_gadgets.sql", "CREATE TABLE gadgets (id int);"}});
    FAIL() << "expected MigrationError";
  } catch (const MigrationError& e) {
    EXPECT_NE(std::string(e.what()).find("0001_early.sql is pending"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(table_exists(c, "early"));
}

TEST(Migrations, AFailingMigrationIsRolledBackWhole) {
  pqxx::connection c(test::fresh_database("mig").conninfo());
  std::vector<Migration> bad = {
      kTwo[0],
      {"0002_half.sql", "CREATE TABLE half (id int);\nSELECT no_such_function();"},
  };
  EXPECT_THROW(infra::migrate(c, bad), MigrationError);
  EXPECT_TRUE(table_exists(c, "widgets"));  // 0001 committed on its own
  EXPECT_FALSE(table_exists(c, "half"));    // 0002 left nothing behind
  EXPECT_EQ(applied_names(c), (std::vector<std::string>{"0001_widgets.sql"}));
}

TEST(Migrations, ConcurrentRunnersApplyEachFileOnce) {
  auto cfg = test::fresh_database("mig");
  std::vector<Migration> list = {
      {"0001_counter.sql", "CREATE TABLE runs (n int);"},
      // Slow enough that the runners overlap; a second application would fail (duplicate
      // table) or double the row count.
      {"0002_slow.sql", "SELECT pg_sleep(0.3); INSERT INTO runs VALUES (1);"},
  };
  constexpr int kRunners = 4;
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  std::atomic<std::size_t> total_applied{0};
  for (int i = 0; i < kRunners; ++i) {
    threads.emplace_back([&] {
      try {
        pqxx::connection c(cfg.conninfo());
        total_applied += infra::migrate(c, list).applied.size();
      } catch (const std::exception&) {
        ++errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(total_applied.load(), 2u);
  pqxx::connection c(cfg.conninfo());
  pqxx::nontransaction tx(c);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM runs")[0].as<int>(), 1);
}

TEST(Migrations, EmbeddedSchemaAppliesCleanly) {
  pqxx::connection c(test::fresh_database("mig").conninfo());
  auto r = infra::migrate(c, infra::embedded_migrations());
  EXPECT_EQ(r.applied.size(), infra::embedded_migrations().size());
  EXPECT_EQ(infra::migrate(c, infra::embedded_migrations()).applied.size(), 0u);
}

// 0005 reorders the ledger's key on a ledger that already holds rows (a monthly partition and
// the default one): every row stays, the key has the new order on every partition, a second
// row for a request still conflicts, and the index the key now covers is gone.
TEST(Migrations, LedgerKeyReorderKeepsRowsAndUniqueness) {
  pqxx::connection c(test::fresh_database("mig").conninfo());
  std::vector<Migration> before, all = infra::embedded_migrations();
  for (const auto& m : all)
    if (m.name < "0005") before.push_back(m);
  ASSERT_LT(before.size(), all.size());
  infra::migrate(c, before);
  const std::string insert =
      "INSERT INTO usage_events (tenant_id, request_id, model, prompt_tokens, completion_tokens, status, "
      "started_at, ended_at) VALUES ";
  {
    pqxx::work tx(c);
    tx.exec(insert +
            "('t1', 'r1', 'm', 3, 4, 'completed', now(), now()),"
            "('t1', 'r2', 'm', 5, 6, 'cancelled', now() - interval '1 minute', now()),"
            "('t2', 'r1', 'm', 7, 8, 'completed', now(), now()),"
            "('t1', 'r3', 'm', 1, 0, 'refused', '1990-01-01T00:00:00Z', '1990-01-01T00:00:01Z')");
    // Enough rows that rebuilding the key takes far longer than the statement timeout below.
    tx.exec("INSERT INTO usage_events (tenant_id, request_id, model, prompt_tokens, completion_tokens, status, "
            "started_at, ended_at) SELECT 'bulk', 'req-' || md5(i::text), 'm', i, 0, 'completed', "
            "now() - i * interval '1 millisecond', now() FROM generate_series(1, 100000) AS i");
    tx.commit();
  }
  auto rows = [&] {
    pqxx::nontransaction tx(c);
    std::vector<std::string> out;
    for (const auto& r : tx.exec("SELECT tenant_id || '/' || request_id || '/' || prompt_tokens || '/' || "
                                 "completion_tokens || '/' || status || '/' || tableoid::regclass::text "
                                 "FROM usage_events WHERE tenant_id <> 'bulk' ORDER BY 1"))
      out.push_back(r[0].as<std::string>());
    out.push_back(tx.exec1("SELECT count(*) || '/' || sum(prompt_tokens) FROM usage_events WHERE tenant_id = 'bulk'")[0]
                      .as<std::string>());
    return out;
  };
  const auto before_rows = rows();
  ASSERT_EQ(before_rows.size(), 5u);
  ASSERT_EQ(before_rows.back(), "100000/5000050000");

  // Run with a statement timeout far shorter than this key rebuild, as `migrate` has one.
  {
    pqxx::nontransaction tx(c);
    tx.exec("SET statement_timeout = '100ms'");
  }
  const auto r = infra::migrate(c, all);
  {
    pqxx::nontransaction tx(c);
    tx.exec("RESET statement_timeout");
  }
  EXPECT_EQ(r.applied.front(), all[before.size()].name);
  EXPECT_EQ(rows(), before_rows);

  pqxx::nontransaction tx(c);
  // The key's columns in order, on the table and on every partition.
  const auto keys = tx.exec(
      "SELECT i.indrelid::regclass::text, string_agg(a.attname, ',' ORDER BY k.n) "
      "FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) "
      "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
      "WHERE i.indisprimary AND (i.indrelid = 'usage_events'::regclass OR i.indrelid IN "
      "(SELECT inhrelid FROM pg_inherits WHERE inhparent = 'usage_events'::regclass)) GROUP BY 1");
  EXPECT_GE(keys.size(), 3u);  // the table, the default partition, monthly partitions
  for (const auto& k : keys) EXPECT_EQ(k[1].as<std::string>(), "tenant_id,started_at,request_id") << k[0].c_str();
  EXPECT_FALSE(tx.exec1("SELECT to_regclass('usage_events_tenant_time_idx') IS NOT NULL")[0].as<bool>());
  // The same request again conflicts; ON CONFLICT DO NOTHING (the ledger's replay) adds nothing.
  EXPECT_THROW(tx.exec(insert + "('t1', 'r3', 'm', 9, 9, 'completed', '1990-01-01T00:00:00Z', "
                                "'1990-01-01T00:00:02Z')"),
               pqxx::unique_violation);
  tx.exec(insert + "('t1', 'r1', 'm', 9, 9, 'completed', (SELECT started_at FROM usage_events WHERE "
                   "tenant_id = 't1' AND request_id = 'r1'), now()) ON CONFLICT DO NOTHING");
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM usage_events")[0].as<int>(), 100004);
}

}  // namespace
}  // namespace infergate
