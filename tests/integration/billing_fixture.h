// A migrated fresh database with helpers to create tenants, prices and usage rows, for the
// billing integration tests.
#pragma once

#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include <functional>
#include <string>

#include "infergate/billing/billing_error.h"
#include "infergate/billing/prices.h"
#include "infergate/gateway/accounts.h"
#include "infergate/infra/migrations.h"
#include "support/services.h"

namespace infergate::test {

class BillingDb : public ::testing::Test {
 protected:
  infra::PostgresConfig db = fresh_database("billing");
  pqxx::connection conn{db.conninfo()};

  void SetUp() override {
    infra::migrate(conn, infra::embedded_migrations());
    pqxx::work tx(conn);
    gateway::accounts::NewPlan plan;
    plan.name = "standard";
    gateway::accounts::create_plan(tx, plan, "test");
    tx.commit();
  }

  template <class Fn>
  auto in_tx(Fn fn) {
    pqxx::work tx(conn);
    if constexpr (std::is_void_v<decltype(fn(tx))>) {
      fn(tx);
      tx.commit();
    } else {
      auto out = fn(tx);
      tx.commit();
      return out;
    }
  }

  std::string tenant(const std::string& name, const std::string& tz = "UTC",
                     const std::string& currency = "USD") {
    return in_tx([&](pqxx::work& tx) {
      gateway::accounts::NewTenant t;
      t.name = name;
      t.plan = "standard";
      t.billing_timezone = tz;
      t.currency = currency;
      return gateway::accounts::create_tenant(tx, t, "test").id;
    });
  }

  billing::PriceVersion price(const std::string& model, const std::string& cls,
                              const std::string& per_million, const std::string& from,
                              const std::string& currency = "USD") {
    return in_tx([&](pqxx::work& tx) {
      return billing::add_price(tx, {model, cls, per_million, currency, from});
    });
  }

  // One ledger row; `at` is an RFC 3339 time (or any timestamptz literal).
  void usage(const std::string& tenant_id, const std::string& request_id,
             const std::string& model, const std::string& at, std::int64_t prompt,
             std::int64_t completion, std::int64_t cached = 0,
             const std::optional<std::string>& key = std::nullopt,
             const std::string& status = "completed") {
    in_tx([&](pqxx::work& tx) {
      tx.exec_params("INSERT INTO usage_events (tenant_id, request_id, api_key_id, model, "
                     "prompt_tokens, completion_tokens, cached_tokens, status, started_at, "
                     "ended_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::timestamptz, "
                     "$9::timestamptz)",
                     tenant_id, request_id, key, model, prompt, completion, cached, status, at);
    });
  }

  std::int64_t count(const std::string& sql) {
    pqxx::nontransaction tx(conn);
    return tx.exec1(sql)[0].as<std::int64_t>();
  }

  // The BillingError `fn` throws (fails the test if none).
  template <class Fn>
  billing::BillingError billing_error(Fn fn) {
    try {
      in_tx(fn);
    } catch (const billing::BillingError& e) {
      return e;
    }
    ADD_FAILURE() << "expected a BillingError";
    return billing::BillingError(billing::BillingError::Kind::invalid, "", "none");
  }
};

}  // namespace infergate::test
