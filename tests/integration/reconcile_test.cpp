// Reconcile: quota counters rebuilt from the Postgres usage ledger, e.g. after Redis restarted
// empty, in the tenant's billing time zone, counting requests still in flight.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "infergate/gateway/accounts.h"
#include "infergate/gateway/admission.h"
#include "infergate/gateway/reconcile.h"
#include "infergate/infra/migrations.h"
#include "support/io_thread.h"
#include "support/services.h"

namespace infergate {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;

TEST(Reconcile, RestoresQuotaCountersFromTheLedgerAfterRedisLostThem) {
  auto db = test::fresh_database("recon");
  pqxx::connection conn(db.conninfo());
  infra::migrate(conn, infra::embedded_migrations());
  std::string tenant_id;
  {
    pqxx::work tx(conn);
    gateway::accounts::NewPlan plan;
    plan.name = "quota";
    plan.limits.tokens_per_day = 1000;
    gateway::accounts::create_plan(tx, plan, "test");
    gateway::accounts::NewTenant t;
    t.name = "tokyo";
    t.plan = "quota";
    t.billing_timezone = "Asia/Tokyo";
    tenant_id = gateway::accounts::create_tenant(tx, t, "test").id;
    // Today: 300 + 200. Forty days ago: 999 (neither this day nor this month).
    for (auto [when, prompt, completion] :
         std::vector<std::tuple<std::string, int, int>>{{"now()", 250, 50},
                                                        {"now() - interval '1 second'", 150, 50},
                                                        {"now() - interval '40 days'", 900, 99}}) {
      tx.exec("INSERT INTO usage_events (tenant_id, request_id, model, prompt_tokens, "
              "completion_tokens, status, started_at, ended_at) VALUES (" +
              tx.quote(tenant_id) + ", " + tx.quote("req_" + std::to_string(prompt)) +
              ", 'toy', " + std::to_string(prompt) + ", " + std::to_string(completion) +
              ", 'completed', " + when + ", " + when + ")");
    }
    tx.commit();
  }
  auto usage = gateway::ledger_usage(conn, std::string("tokyo"));
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].used_day, 500);
  EXPECT_EQ(usage[0].used_month, 500);
  // The day is Tokyo's, not UTC's.
  pqxx::nontransaction q(conn);
  EXPECT_EQ(usage[0].periods.day,
            q.exec1("SELECT to_char(now() AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD')")[0]
                .as<std::string>());
  EXPECT_GT(usage[0].periods.day_end_ms, 0);

  test::PrivateRedis server;
  test::IoThread io{2};
  infra::MetricsRegistry metrics;
  infra::RedisClient redis(io.io(), test::redis_config(server.port()), metrics);
  redis.start();
  ASSERT_TRUE(test::wait_connected(redis));
  gateway::Admission admission(redis, infra::AdmissionConfig{}, metrics);

  gateway::AdmissionRequest req;
  req.tenant_id = tenant_id;
  req.key_id = "k";
  req.tenant.tokens_per_day = 1000;
  req.periods = usage[0].periods;
  auto admit = [&](std::int64_t tokens) {
    req.tokens = tokens;
    return io.run([&]() -> asio::awaitable<gateway::AdmissionDecision> {
      gateway::AdmissionDecision d = co_await admission.admit(req);
      co_return d;
    }());
  };
  auto reconcile = [&] {
    return io.run([&]() -> asio::awaitable<gateway::Admission::ReconcileResult> {
      gateway::Admission::ReconcileResult r =
          co_await admission.reconcile(tenant_id, usage[0].periods, usage[0].used_day,
                                       usage[0].used_month);
      co_return r;
    }());
  };

  // A request in flight holds 100 tokens: reconcile keeps them reserved.
  ASSERT_TRUE(admit(100).admitted());
  auto r1 = reconcile();
  EXPECT_EQ(r1.reserved_day, 100);
  EXPECT_EQ(r1.day, 600);
  EXPECT_EQ(r1.month, 600);
  // A group admitted ahead holds `amount` for each unit still open: two of 30 here.
  const std::string t = gateway::Admission::tenant_prefix(tenant_id);
  auto redis_do = [&](const std::vector<std::string>& cmd) {
    return io.run([&]() -> asio::awaitable<infra::RedisReply> {
      infra::RedisReply reply = co_await redis.command(cmd);
      co_return reply;
    }());
  };
  redis_do({"HSET", t + "res", "grp",
            "G|30|" + t + "tpm:1|" + t + "k:k:tpm:1|" + t + "qd:" + usage[0].periods.day + "|" + t + "qm:" +
                usage[0].periods.month + "|" + t + "inflight|" + t + "k:k:inflight|5|2"});
  auto rg = reconcile();
  EXPECT_EQ(rg.reserved_day, 160);
  EXPECT_EQ(rg.day, 660);
  EXPECT_EQ(rg.month, 660);
  redis_do({"HDEL", t + "res", "grp"});

  // Redis restarts empty: without reconcile the tenant would get its whole quota again.
  io.run([&]() -> asio::awaitable<int> {
    const std::vector<std::string> flush{"FLUSHALL"};
    co_await redis.command(flush);
    co_return 0;
  }());
  auto r2 = reconcile();
  EXPECT_EQ(r2.reserved_day, 0);
  EXPECT_EQ(r2.day, 500);
  EXPECT_TRUE(admit(400).admitted());   // 500 + 400 <= 1000
  auto refused = admit(200);            // 900 + 200 > 1000
  EXPECT_EQ(refused.outcome, gateway::AdmissionOutcome::quota_exceeded);
  EXPECT_EQ(refused.limit, "tokens_per_day");
  redis.stop();
}

// A tenant named like another tenant's id (the API refuses such a name; direct SQL can make
// one): naming that id reconciles that tenant alone, as every id-or-name lookup prefers the id.
TEST(Reconcile, AnIdIsTakenBeforeAnotherTenantsNameThatEqualsIt) {
  auto db = test::fresh_database("recon");
  pqxx::connection conn(db.conninfo());
  infra::migrate(conn, infra::embedded_migrations());
  std::string first_id;
  {
    pqxx::work tx(conn);
    gateway::accounts::NewPlan plan;
    plan.name = "basic";
    gateway::accounts::create_plan(tx, plan, "test");
    gateway::accounts::NewTenant t;
    t.name = "first";
    t.plan = "basic";
    first_id = gateway::accounts::create_tenant(tx, t, "test").id;
    tx.exec_params("INSERT INTO tenants (id, name, plan_id) SELECT 'ten_impostor', $1, plan_id FROM tenants "
                   "WHERE id = $1",
                   first_id);
    tx.commit();
  }
  const auto usage = gateway::ledger_usage(conn, first_id);
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].tenant_id, first_id);
  EXPECT_EQ(usage[0].tenant_name, "first");
  const auto by_name = gateway::ledger_usage(conn, std::string("first"));
  ASSERT_EQ(by_name.size(), 1u);
  EXPECT_EQ(by_name[0].tenant_id, first_id);
}

}  // namespace
}  // namespace infergate
