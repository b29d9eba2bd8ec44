// The operator's account commands against a real Postgres: the demo setup, validation with
// clear messages, conflicts, the audit trail, and that no secret is ever stored.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include <regex>

#include "server_harness.h"
#include "support/services.h"

namespace infergate {
namespace {

class AccountsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    db = test::fresh_database("acct");
    env = {{"INFERGATE_POSTGRES__PORT", std::to_string(db.port)},
           {"INFERGATE_POSTGRES__DATABASE", db.database}};
    std::string out;
    ASSERT_EQ(test::run_infergate({"migrate"}, env, &out), 0) << out;
  }
  int run(const std::vector<std::string>& args, std::string* out) {
    return test::run_infergate(args, env, out);
  }
  std::int64_t count(const std::string& sql) {
    pqxx::connection c(db.conninfo());
    pqxx::nontransaction tx(c);
    return tx.exec1(sql)[0].as<std::int64_t>();
  }
  infra::PostgresConfig db;
  std::map<std::string, std::string> env;
};

TEST_F(AccountsCli, DemoSetupCreatesTenantOnceAndAFreshKeyEachRun) {
  std::string out1, out2;
  ASSERT_EQ(run({"demo-setup"}, &out1), 0) << out1;
  ASSERT_EQ(run({"demo-setup"}, &out2), 0) << out2;
  const std::regex key("ig_live_([0-9a-f]{16})_([0-9a-f]{48})");
  std::smatch m1, m2;
  ASSERT_TRUE(std::regex_search(out1, m1, key)) << out1;
  ASSERT_TRUE(std::regex_search(out2, m2, key)) << out2;
  EXPECT_NE(m1[0], m2[0]);
  EXPECT_EQ(count("SELECT count(*) FROM tenants WHERE name = 'demo'"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM api_keys"), 2);

  // Neither the secret nor the full key appears anywhere in the database.
  pqxx::connection c(db.conninfo());
  pqxx::nontransaction tx(c);
  for (const std::string& secret : {std::string(m1[2]), std::string(m2[2])}) {
    for (const char* table : {"api_keys", "admin_audit", "tenants", "plans"}) {
      auto n = tx.exec1(std::string("SELECT count(*) FROM ") + table + " t WHERE t::text LIKE " +
                        tx.quote("%" + secret + "%"))[0]
                   .as<int>();
      EXPECT_EQ(n, 0) << "secret found in " << table;
    }
  }
  // The stored hash is the SHA-256 of the secret.
  auto stored = tx.exec1("SELECT encode(secret_sha256, 'hex') FROM api_keys WHERE id = " +
                         tx.quote(std::string(m1[1])))[0]
                    .as<std::string>();
  EXPECT_EQ(stored.size(), 64u);
  // Every mutation is audited: plan, tenant, two keys.
  EXPECT_EQ(count("SELECT count(*) FROM admin_audit"), 4);
}

TEST_F(AccountsCli, BadInputsAreRefusedAndChangeNothing) {
  std::string out;
  ASSERT_EQ(run({"plans", "create", "--name", "gold", "--tokens-per-day", "1000"}, &out), 0)
      << out;
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string needle;
  } cases[] = {
      {{"plans", "create", "--name", "neg", "--tokens-per-day", "-5"}, 2, "--tokens-per-day"},
      {{"plans", "create", "--name", "gold"}, 1, "already exists"},
      {{"plans", "create", "--name", std::string(65, 'p')}, 2, "longer than 64"},
      {{"tenants", "create", "--name", "acme", "--plan", "nope"}, 2, "no plan 'nope'"},
      {{"tenants", "create", "--name", "acme", "--plan", "gold", "--timezone", "Mars/Base"},
       2,
       "billing_timezone"},
      {{"tenants", "create", "--name", "acme", "--plan", "gold", "--currency", "usd"},
       2,
       "currency"},
      {{"tenants", "create", "--name", "has space", "--plan", "gold"}, 2, "name may contain"},
      {{"tenants", "create", "--plan", "gold"}, 2, "--name and --plan are required"},
      {{"keys", "create", "--tenant", "ghost"}, 1, "no tenant 'ghost'"},
      {{"keys", "create"}, 2, "--tenant is required"},
      {{"tenants", "create", "--name", "acme", "--plan", "gold", "--bogus", "1"},
       2,
       "unknown option --bogus"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(run(c.args, &out), c.code) << c.args[0] << " " << c.args[1] << ": " << out;
    EXPECT_NE(out.find(c.needle), std::string::npos) << out;
  }
  EXPECT_EQ(count("SELECT count(*) FROM tenants"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM plans"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM admin_audit"), 1);

  ASSERT_EQ(run({"tenants", "create", "--name", "acme", "--plan", "gold", "--timezone",
                 "Europe/Berlin", "--currency", "EUR"},
                &out),
            0)
      << out;
  EXPECT_NE(out.find("\"billing_timezone\":\"Europe/Berlin\""), std::string::npos) << out;
  EXPECT_EQ(run({"tenants", "create", "--name", "acme", "--plan", "gold"}, &out), 1);
  EXPECT_NE(out.find("already exists"), std::string::npos);
  ASSERT_EQ(run({"keys", "create", "--tenant", "acme", "--expires-at", "tomorrow"}, &out), 2);
  EXPECT_NE(out.find("expires_at must be an RFC 3339 time"), std::string::npos) << out;
  ASSERT_EQ(run({"keys", "create", "--tenant", "acme", "--expires-at", "2030-01-01T00:00:00Z"},
                &out),
            0)
      << out;
  EXPECT_EQ(count("SELECT count(*) FROM api_keys WHERE expires_at = '2030-01-01T00:00:00Z'"), 1);
  ASSERT_EQ(run({"keys", "create-admin"}, &out), 0) << out;
  EXPECT_EQ(count("SELECT count(*) FROM api_keys WHERE tenant_id IS NULL AND scopes = "
                  "ARRAY['admin']"),
            1);
}

TEST_F(AccountsCli, ListSuspendRevokeRotate) {
  std::string out;
  ASSERT_EQ(run({"plans", "create", "--name", "gold"}, &out), 0) << out;
  ASSERT_EQ(run({"tenants", "create", "--name", "acme", "--plan", "gold"}, &out), 0) << out;
  ASSERT_EQ(run({"tenants", "create", "--name", "beta", "--plan", "gold"}, &out), 0) << out;
  ASSERT_EQ(run({"keys", "create", "--tenant", "acme"}, &out), 0) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("api key ([0-9a-f]{16}) created")));
  const std::string key_id = m[1];

  ASSERT_EQ(run({"plans", "list"}, &out), 0);
  EXPECT_NE(out.find("\"name\":\"gold\""), std::string::npos) << out;
  ASSERT_EQ(run({"tenants", "suspend", "acme"}, &out), 0) << out;
  EXPECT_NE(out.find("\"status\":\"suspended\""), std::string::npos) << out;
  ASSERT_EQ(run({"tenants", "list", "--status", "suspended"}, &out), 0);
  EXPECT_NE(out.find("acme"), std::string::npos);
  EXPECT_EQ(out.find("beta"), std::string::npos);
  ASSERT_EQ(run({"tenants", "reactivate", "acme"}, &out), 0) << out;
  EXPECT_EQ(run({"tenants", "suspend", "ghost"}, &out), 1);
  EXPECT_NE(out.find("no tenant 'ghost'"), std::string::npos) << out;

  ASSERT_EQ(run({"keys", "rotate", key_id, "--grace-seconds", "60"}, &out), 0) << out;
  EXPECT_NE(out.find("secret key, shown only now: ig_live_"), std::string::npos) << out;
  EXPECT_EQ(count("SELECT count(*) FROM api_keys WHERE id = '" + key_id +
                  "' AND replaced_by IS NOT NULL AND expires_at < now() + interval '61 seconds'"),
            1);
  EXPECT_EQ(run({"keys", "rotate", key_id}, &out), 2);
  EXPECT_NE(out.find("--grace-seconds is required"), std::string::npos) << out;
  ASSERT_EQ(run({"keys", "revoke", key_id}, &out), 0) << out;
  EXPECT_EQ(count("SELECT count(*) FROM api_keys WHERE revoked_at IS NOT NULL"), 1);
  EXPECT_EQ(run({"keys", "rotate", key_id, "--grace-seconds", "0"}, &out), 1);
  EXPECT_NE(out.find("is revoked"), std::string::npos) << out;
  EXPECT_EQ(run({"keys", "revoke", "0000000000000000"}, &out), 1);
  ASSERT_EQ(run({"keys", "list", "--tenant", "acme"}, &out), 0);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2);  // the original and its replacement
  EXPECT_EQ(out.find("secret"), std::string::npos);
}

TEST_F(AccountsCli, WithoutSchemaTheMessageSaysToMigrate) {
  auto empty = test::fresh_database("acct_empty");
  std::string out;
  EXPECT_EQ(test::run_infergate({"demo-setup"},
                                {{"INFERGATE_POSTGRES__PORT", std::to_string(empty.port)},
                                 {"INFERGATE_POSTGRES__DATABASE", empty.database}},
                                &out),
            1);
  EXPECT_NE(out.find("infergate migrate"), std::string::npos) << out;
}

}  // namespace
}  // namespace infergate
