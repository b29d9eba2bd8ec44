// `infergate migrate` as an operator runs it: applies, is idempotent, serializes concurrent
// runs, and fails clearly.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "infergate/infra/migrations.h"
#include "server_harness.h"
#include "support/services.h"

namespace infergate {
namespace {

using namespace std::chrono_literals;

std::map<std::string, std::string> env_for(const infra::PostgresConfig& c) {
  return {{"INFERGATE_POSTGRES__PORT", std::to_string(c.port)},
          {"INFERGATE_POSTGRES__DATABASE", c.database}};
}

int count_applied(const infra::PostgresConfig& cfg) {
  pqxx::connection c(cfg.conninfo());
  pqxx::nontransaction tx(c);
  return tx.exec1("SELECT count(*) FROM schema_migrations")[0].as<int>();
}

TEST(MigrateCli, AppliesThenIsANoOp) {
  auto db = test::fresh_database("cli");
  std::string out;
  ASSERT_EQ(test::run_infergate({"migrate"}, env_for(db), &out), 0) << out;
  const auto n = infra::embedded_migrations().size();
  EXPECT_NE(out.find(std::to_string(n) + " applied now"), std::string::npos) << out;
  ASSERT_EQ(test::run_infergate({"migrate"}, env_for(db), &out), 0) << out;
  EXPECT_NE(out.find("0 applied now, " + std::to_string(n) + " already applied"),
            std::string::npos)
      << out;
  EXPECT_EQ(count_applied(db), static_cast<int>(n));
}

TEST(MigrateCli, TwoProcessesAtOnceApplyEachFileOnce) {
  auto db = test::fresh_database("cli");
  std::string dir = test::make_temp_dir("migs");
  test::write_file(dir + "/0001_slow.sql",
                   "CREATE TABLE once (n int); SELECT pg_sleep(0.5); INSERT INTO once VALUES (1);");
  test::write_file(dir + "/0002_more.sql", "INSERT INTO once VALUES (2);");
  std::vector<test::Child> procs;
  for (int i = 0; i < 2; ++i)
    procs.push_back(test::Child::spawn({test::infergate_binary(), "migrate", "--dir", dir},
                                       env_for(db), dir + "/out" + std::to_string(i)));
  for (auto& p : procs) {
    auto code = p.wait(30s);
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, 0);
  }
  pqxx::connection c(db.conninfo());
  pqxx::nontransaction tx(c);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM once")[0].as<int>(), 2);
  EXPECT_EQ(count_applied(db), 2);
}

TEST(MigrateCli, ChangedFileIsRefused) {
  auto db = test::fresh_database("cli");
  std::string dir = test::make_temp_dir("migs");
  test::write_file(dir + "/0001_a.sql", "CREATE TABLE a (n int);");
  std::string out;
  ASSERT_EQ(test::run_infergate({"migrate", "--dir", dir}, env_for(db), &out), 0) << out;
  test::write_file(dir + "/0001_a.sql", "CREATE TABLE a (n bigint);");
  EXPECT_EQ(test::run_infergate({"migrate", "--dir", dir}, env_for(db), &out), 1);
  EXPECT_NE(out.find("0001_a.sql has changed"), std::string::npos) << out;
}

TEST(MigrateCli, BadInputsFailClearly) {
  std::string out;
  // Nothing listens on this port.
  EXPECT_EQ(test::run_infergate({"migrate"},
                                {{"INFERGATE_POSTGRES__PORT", std::to_string(test::free_port())}},
                                &out),
            1);
  EXPECT_NE(out.find("cannot connect to Postgres"), std::string::npos) << out;

  std::string dir = test::make_temp_dir("migs");
  test::write_file(dir + "/1_bad_name.sql", "SELECT 1;");
  auto db = test::fresh_database("cli");
  EXPECT_EQ(test::run_infergate({"migrate", "--dir", dir}, env_for(db), &out), 1);
  EXPECT_NE(out.find("NNNN_lowercase_name.sql"), std::string::npos) << out;

  EXPECT_EQ(test::run_infergate({"migrate", "--bogus"}, {}, &out), 2);
  EXPECT_NE(out.find("unknown option --bogus"), std::string::npos) << out;
}

}  // namespace
}  // namespace infergate

namespace infergate {
namespace {

TEST(ReconcileCli, WritesTheLedgerFiguresAndFailsClearly) {
  auto db = test::fresh_database("rcli");
  std::map<std::string, std::string> env{{"INFERGATE_POSTGRES__PORT", std::to_string(db.port)},
                                         {"INFERGATE_POSTGRES__DATABASE", db.database},
                                         {"INFERGATE_REDIS__PORT",
                                          std::to_string(test::shared_services().redis_port)}};
  std::string out;
  ASSERT_EQ(test::run_infergate({"migrate"}, env, &out), 0) << out;
  ASSERT_EQ(test::run_infergate({"demo-setup"}, env, &out), 0) << out;
  {
    pqxx::connection c(db.conninfo());
    pqxx::work tx(c);
    tx.exec("INSERT INTO usage_events (tenant_id, request_id, model, prompt_tokens, "
            "completion_tokens, status, started_at, ended_at) SELECT id, 'req_1', 'toy', 70, 7, "
            "'completed', now(), now() FROM tenants WHERE name = 'demo'");
    tx.commit();
  }
  ASSERT_EQ(test::run_infergate({"reconcile"}, env, &out), 0) << out;
  EXPECT_NE(out.find("= 77 (ledger 77 + in flight 0)"), std::string::npos) << out;
  EXPECT_EQ(test::run_infergate({"reconcile", "--tenant", "ghost"}, env, &out), 1);
  EXPECT_NE(out.find("no tenant 'ghost'"), std::string::npos) << out;
  auto no_redis = env;
  no_redis["INFERGATE_REDIS__PORT"] = std::to_string(test::free_port());
  no_redis["INFERGATE_REDIS__CONNECT_TIMEOUT_MS"] = "200";
  EXPECT_EQ(test::run_infergate({"reconcile"}, no_redis, &out), 1);
  EXPECT_NE(out.find("cannot reach Redis"), std::string::npos) << out;
}

}  // namespace
}  // namespace infergate
