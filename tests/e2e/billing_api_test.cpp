// Prices, usage reports, invoices and exports through the real binary (HTTP API and the
// `infergate invoices` CLI) against a real Postgres: the happy path, the formats, and a clear
// 4xx naming the parameter for every bad input, with nothing changed.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <pqxx/pqxx>

#include <filesystem>
#include <fstream>
#include <regex>

#include "server_harness.h"
#include "support/http_client.h"
#include "support/process.h"
#include "support/services.h"

namespace infergate {
namespace {

namespace json = boost::json;

struct Reply {
  int status;
  json::value body;
  test::HttpResponse raw;
};

class BillingApiTest : public ::testing::Test {
 protected:
  infra::PostgresConfig db = test::fresh_database("billing_api");
  std::map<std::string, std::string> env{{"INFERGATE_POSTGRES__PORT", std::to_string(db.port)},
                                         {"INFERGATE_POSTGRES__DATABASE", db.database}};
  std::string admin_key = setup();
  test::ServerProcess server{config()};
  std::string tenant_id, tenant_key;

  std::string setup() {
    std::string out;
    if (test::run_infergate({"migrate"}, env, &out) != 0) throw std::runtime_error(out);
    return test::issue_key({"keys", "create-admin"}, env);
  }
  test::ConfigValues config() const {
    auto v = test::base_config();
    v["postgres"]["database"] = "\"" + db.database + "\"";
    return v;
  }
  void SetUp() override {
    ASSERT_EQ(call("POST", "/admin/v1/plans", admin_key, R"({"name":"gold"})").status, 201);
    auto t = call("POST", "/admin/v1/tenants", admin_key,
                  R"({"name":"acme","plan":"gold","billing_timezone":"Europe/Berlin","currency":"EUR"})");
    ASSERT_EQ(t.status, 201) << t.raw.body;
    tenant_id = std::string(t.body.at("id").as_string());
    auto k = call("POST", "/admin/v1/tenants/acme/keys", admin_key, "{}");
    tenant_key = std::string(k.body.at("secret_key").as_string());
  }

  Reply call(const std::string& method, const std::string& path, const std::string& key,
             const std::string& body = "", std::map<std::string, std::string> headers = {}) {
    if (!key.empty()) headers["Authorization"] = "Bearer " + key;
    if (!body.empty() && !headers.count("Content-Type")) headers["Content-Type"] = "application/json";
    auto r = test::http_request(server.port(), method, path, body, headers);
    json::value parsed;
    if (r.header("content-type").rfind("application/json", 0) == 0) parsed = json::parse(r.body);
    return Reply{r.status, parsed, r};
  }
  Reply admin(const std::string& method, const std::string& path, const std::string& body = "") {
    return call(method, path, admin_key, body);
  }
  std::int64_t count(const std::string& sql) const {
    pqxx::connection c(db.conninfo());
    pqxx::nontransaction tx(c);
    return tx.exec1(sql)[0].as<std::int64_t>();
  }
  void usage(const std::string& tenant, const std::string& request_id, const std::string& at,
             std::int64_t prompt, std::int64_t completion) {
    pqxx::connection c(db.conninfo());
    pqxx::work tx(c);
    tx.exec_params("INSERT INTO usage_events (tenant_id, request_id, model, prompt_tokens, "
                   "completion_tokens, status, started_at, ended_at) VALUES ($1, $2, 'toy', $3, "
                   "$4, 'completed', $5::timestamptz, $5::timestamptz)",
                   tenant, request_id, prompt, completion, at);
    tx.commit();
  }
  static std::string param(const Reply& r) {
    const auto& p = r.body.at("error").at("param");
    return p.is_null() ? "" : std::string(p.as_string());
  }
};

TEST_F(BillingApiTest, PricesInvoicesAndExports) {
  auto p = admin("POST", "/admin/v1/prices",
                 R"({"model":"toy","token_class":"input","price_per_million":"2.50",
                     "currency":"EUR","effective_from":"2026-01-01T00:00:00+01:00"})");
  ASSERT_EQ(p.status, 201) << p.raw.body;
  EXPECT_EQ(p.body.at("object"), "price");
  EXPECT_EQ(p.body.at("price_per_million"), "2.5");
  EXPECT_EQ(p.body.at("effective_from"), "2025-12-31T23:00:00.000Z");
  ASSERT_EQ(admin("POST", "/admin/v1/prices",
                  R"({"model":"toy","token_class":"output","price_per_million":"10",
                      "currency":"EUR","effective_from":"2026-01-01T00:00:00Z"})").status, 201);
  auto list = admin("GET", "/admin/v1/prices?model=toy&limit=1");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.body.at("data").as_array().size(), 1u);
  EXPECT_EQ(list.body.at("has_more"), true);

  usage(tenant_id, "r1", "2026-02-10T10:00:00Z", 1'000'000, 100'000);  // 2.50 + 1.00
  usage(tenant_id, "r2", "2026-02-28T23:59:59.999+01:00", 3, 0);       // 0.0000075
  auto g = admin("POST", "/admin/v1/invoices", R"({"tenant":"acme","period":"2026-02"})");
  ASSERT_EQ(g.status, 201) << g.raw.body;
  const std::string id(g.body.at("id").as_string());
  EXPECT_EQ(g.body.at("status"), "draft");
  EXPECT_TRUE(g.body.at("number").is_null());
  EXPECT_EQ(g.body.at("period_start"), "2026-01-31T23:00:00.000Z");
  EXPECT_EQ(g.body.at("total"), "3.50");
  EXPECT_EQ(g.body.at("total_minor"), 350);
  ASSERT_EQ(g.body.at("lines").as_array().size(), 2u);
  EXPECT_EQ(g.body.at("lines").at(0).at("exact_amount"), "2.5000075");
  EXPECT_EQ(g.body.at("lines").at(0).at("amount"), "2.50");
  EXPECT_EQ(admin("POST", "/admin/v1/invoices", R"({"tenant":"acme","period":"2026-02"})").status,
            200);  // regenerated draft
  auto listed = admin("GET", "/admin/v1/invoices?tenant=acme&status=draft&period=2026-02");
  ASSERT_EQ(listed.status, 200) << listed.raw.body;
  EXPECT_EQ(listed.body.at("data").as_array().size(), 1u);
  EXPECT_EQ(admin("GET", "/admin/v1/invoices/" + id).body.at("lines").as_array().size(), 2u);

  auto f = admin("POST", "/admin/v1/invoices/" + id + "/finalize");
  ASSERT_EQ(f.status, 200) << f.raw.body;
  EXPECT_EQ(f.body.at("number"), 1);
  EXPECT_EQ(f.body.at("status"), "finalized");
  for (const auto& [method, path, body] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"POST", "/admin/v1/invoices", R"({"tenant":"acme","period":"2026-02"})"},
           {"POST", "/admin/v1/invoices/" + id + "/finalize", ""}}) {
    auto r = admin(method, path, body);
    EXPECT_EQ(r.status, 409) << path << " " << r.raw.body;
    EXPECT_EQ(r.body.at("error").at("code"), "conflict");
  }

  auto csv = admin("GET", "/admin/v1/exports/invoices.csv?period=2026-02");
  ASSERT_EQ(csv.status, 200);
  EXPECT_EQ(csv.raw.header("content-type"), "text/csv; charset=utf-8");
  EXPECT_NE(csv.raw.header("content-disposition").find("invoices-2026-02.csv"), std::string::npos);
  EXPECT_EQ(csv.raw.body.rfind("invoice_id,number,tenant_id,tenant_name,status,period,", 0), 0u);
  EXPECT_NE(csv.raw.body.find(id + ",1," + tenant_id + ",acme,finalized,2026-02,"
                              "2026-01-31T23:00:00.000Z,2026-02-28T23:00:00.000Z,Europe/Berlin,"
                              "EUR,350,3.50,2,"),
            std::string::npos)
      << csv.raw.body;
  auto lines = admin("GET", "/admin/v1/exports/invoice_lines.csv?period=2026-02&tenant=acme");
  EXPECT_NE(lines.raw.body.find(",1,toy,input,1000003,2.5,2.5000075,250,2.50,EUR,false,\r\n"),
            std::string::npos)
      << lines.raw.body;
  auto js = admin("GET", "/admin/v1/exports/invoices.json?period=2026-02&status=finalized");
  ASSERT_EQ(js.status, 200);
  EXPECT_EQ(js.body.at("data").at(0).at("lines").as_array().size(), 2u);

  auto v = admin("POST", "/admin/v1/invoices/" + id + "/void", R"({"reason":"duplicate"})");
  ASSERT_EQ(v.status, 200) << v.raw.body;
  EXPECT_EQ(v.body.at("status"), "void");
  EXPECT_EQ(v.body.at("number"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM admin_audit WHERE actor LIKE 'key:%' AND action IN "
                  "('price.create', 'invoice.generate', 'invoice.finalize', 'invoice.void')"),
            6);
}

TEST_F(BillingApiTest, UsageReportsForAdminsAndForTheCallingTenant) {
  auto other = call("POST", "/admin/v1/tenants", admin_key, R"({"name":"other","plan":"gold"})");
  const std::string other_id(other.body.at("id").as_string());
  usage(tenant_id, "a1", "2026-03-01T10:00:00Z", 100, 10);
  usage(tenant_id, "a2", "2026-03-02T10:00:00Z", 200, 20);
  usage(other_id, "o1", "2026-03-01T10:00:00Z", 999, 99);
  const std::string range = "start=2026-03-01T00:00:00Z&end=2026-03-03T00:00:00Z";
  auto all = admin("GET", "/admin/v1/usage?" + range + "&group_by=tenant");
  ASSERT_EQ(all.status, 200) << all.raw.body;
  EXPECT_EQ(all.body.at("timezone"), "UTC");
  EXPECT_EQ(all.body.at("data").as_array().size(), 2u);
  auto daily = admin("GET", "/admin/v1/usage?" + range + "&tenant=acme&bucket=1d");
  ASSERT_EQ(daily.status, 200);
  EXPECT_EQ(daily.body.at("timezone"), "Europe/Berlin");  // the tenant's by default
  ASSERT_EQ(daily.body.at("data").as_array().size(), 2u);
  EXPECT_EQ(daily.body.at("data").at(0).at("bucket_start"), "2026-02-28T23:00:00.000Z");
  EXPECT_EQ(daily.body.at("data").at(0).at("cost"), "0");
  auto csv = admin("GET", "/admin/v1/usage?" + range + "&format=csv");
  ASSERT_EQ(csv.status, 200);
  EXPECT_EQ(csv.raw.header("content-type"), "text/csv; charset=utf-8");
  EXPECT_EQ(csv.raw.header("x-has-more"), "false");
  // One row per currency (acme pays in EUR, other in USD); no prices yet, so all unpriced.
  EXPECT_NE(csv.raw.body.find(",,,2,2,0,0,0,300,30,0,330,EUR,0,330\r\n"), std::string::npos)
      << csv.raw.body;
  EXPECT_NE(csv.raw.body.find(",,,1,1,0,0,0,999,99,0,1098,USD,0,1098\r\n"), std::string::npos);
  auto accept = call("GET", "/admin/v1/usage?" + range, admin_key, "", {{"Accept", "text/csv"}});
  EXPECT_EQ(accept.raw.header("content-type"), "text/csv; charset=utf-8");

  // The tenant sees only itself, with its key, and may not ask for another tenant.
  auto mine = call("GET", "/v1/usage?" + range + "&group_by=tenant", tenant_key);
  ASSERT_EQ(mine.status, 200) << mine.raw.body;
  ASSERT_EQ(mine.body.at("data").as_array().size(), 1u);
  EXPECT_EQ(mine.body.at("data").at(0).at("tenant_id"), json::value(tenant_id));
  EXPECT_EQ(mine.body.at("data").at(0).at("prompt_tokens"), 300);
  EXPECT_FALSE(mine.raw.header("x-ratelimit-reset-requests").empty());
  auto theirs = call("GET", "/v1/usage?" + range + "&tenant=other", tenant_key);
  EXPECT_EQ(theirs.status, 400);
  EXPECT_EQ(param(theirs), "tenant");
  EXPECT_EQ(call("GET", "/v1/usage?" + range, admin_key).status, 403);
  EXPECT_EQ(call("GET", "/v1/usage?" + range, "").status, 401);
  EXPECT_EQ(call("GET", "/admin/v1/usage?" + range, tenant_key).status, 403);
}

TEST_F(BillingApiTest, BadInputsToEveryEndpointAreClearAndChangeNothing) {
  usage(tenant_id, "r1", "2026-02-10T10:00:00Z", 10, 1);
  const std::string price =
      R"("model":"toy","token_class":"input","currency":"EUR","effective_from":"2026-01-01T00:00:00Z")";
  const std::string range = "start=2026-03-01T00:00:00Z&end=2026-03-02T00:00:00Z";
  struct Case {
    std::string method, path, body;
    int status;
    std::string param;
  } cases[] = {
      {"POST", "/admin/v1/prices", "{" + price + R"(,"price_per_million":2.5})", 400, "price_per_million"},
      {"POST", "/admin/v1/prices", "{" + price + R"(,"price_per_million":"2,5"})", 400, "price_per_million"},
      {"POST", "/admin/v1/prices", "{" + price + R"(,"price_per_million":"-1"})", 400, "price_per_million"},
      {"POST", "/admin/v1/prices", R"({"model":"toy","token_class":"input","price_per_million":"1","currency":"EURO","effective_from":"2026-01-01T00:00:00Z"})", 400, "currency"},
      {"POST", "/admin/v1/prices", R"({"model":"toy","token_class":"input","price_per_million":"1","currency":"EUR","effective_from":"yesterday"})", 400, "effective_from"},
      {"POST", "/admin/v1/prices", R"({"model":"toy","token_class":"inputs","price_per_million":"1","currency":"EUR","effective_from":"2026-01-01T00:00:00Z"})", 400, "token_class"},
      {"POST", "/admin/v1/prices", "{" + price + R"(,"price_per_million":"1","extra":1})", 400, "extra"},
      {"GET", "/admin/v1/prices?currency=eur", "", 400, "currency"},
      {"GET", "/admin/v1/prices?limit=0", "", 400, "limit"},
      {"GET", "/admin/v1/prices?cursor=nope", "", 400, "cursor"},
      {"GET", "/admin/v1/usage?end=2026-03-02T00:00:00Z", "", 400, "start"},
      {"GET", "/admin/v1/usage?start=2026-03-02T00:00:00Z&end=2026-03-01T00:00:00Z", "", 400, "end"},
      {"GET", "/admin/v1/usage?start=2026-03-01&end=2026-03-02T00:00:00Z", "", 400, "start"},
      {"GET", "/admin/v1/usage?start=2026-03-01T00:00:00+01:00&end=2026-03-02T00:00:00Z", "", 400, "start"},
      {"GET", "/admin/v1/usage?" + range + "&bucket=1m", "", 400, "bucket"},
      {"GET", "/admin/v1/usage?" + range + "&tz=Nowhere/Land", "", 400, "tz"},
      {"GET", "/admin/v1/usage?" + range + "&group_by=team", "", 400, "group_by"},
      {"GET", "/admin/v1/usage?" + range + "&format=xml", "", 400, "format"},
      {"GET", "/admin/v1/usage?" + range + "&tenant=nobody", "", 404, "tenant"},
      {"GET", "/admin/v1/usage?" + range + "&key=nokey", "", 404, "key"},
      {"GET", "/admin/v1/usage?" + range + "&cursor=abc", "", 400, "cursor"},
      {"GET", "/admin/v1/usage?" + range + "&limit=x", "", 400, "limit"},
      {"GET", "/admin/v1/usage?" + range + "&colour=red", "", 400, "colour"},
      {"POST", "/admin/v1/invoices", R"({"tenant":"acme","period":"2026-2"})", 400, "period"},
      {"POST", "/admin/v1/invoices", R"({"tenant":"acme","period":"2026-13"})", 400, "period"},
      {"POST", "/admin/v1/invoices", R"({"tenant":"acme"})", 400, "period"},
      {"POST", "/admin/v1/invoices", R"({"tenant":"nobody","period":"2026-02"})", 404, "tenant"},
      {"POST", "/admin/v1/invoices", R"({"tenant":"acme","period":"2026-02"})", 409, ""},  // no price
      {"GET", "/admin/v1/invoices?status=paid", "", 400, "status"},
      {"GET", "/admin/v1/invoices?period=March", "", 400, "period"},
      {"GET", "/admin/v1/invoices?tenant=nobody", "", 404, "tenant"},
      {"GET", "/admin/v1/invoices/inv_nope", "", 404, "id"},
      {"POST", "/admin/v1/invoices/inv_nope/finalize", "", 404, "id"},
      {"POST", "/admin/v1/invoices/inv_nope/finalize", R"({"force":true})", 400, "force"},
      {"POST", "/admin/v1/invoices/inv_nope/void", R"({})", 400, "reason"},
      {"POST", "/admin/v1/invoices/inv_nope/void", R"({"reason":"x"})", 404, "id"},
      {"GET", "/admin/v1/exports/invoices.csv", "", 400, "period"},
      {"GET", "/admin/v1/exports/invoice_lines.csv?period=2026-02&status=open", "", 400, "status"},
      {"GET", "/admin/v1/exports/invoices.json?period=2026-02&tenant=nobody", "", 404, "tenant"},
  };
  for (const auto& c : cases) {
    auto r = admin(c.method, c.path, c.body);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.path << " " << c.body << " -> " << r.raw.body;
    ASSERT_TRUE(r.body.is_object()) << r.raw.body;
    EXPECT_EQ(param(r), c.param) << c.path << " " << c.body << " -> " << r.raw.body;
    EXPECT_FALSE(r.body.at("error").at("message").as_string().empty());
    EXPECT_TRUE(r.body.at("error").at("type").is_string());
  }
  auto tenant_case = call("GET", "/v1/usage?start=x&end=2026-03-02T00:00:00Z", tenant_key);
  EXPECT_EQ(tenant_case.status, 400);
  EXPECT_EQ(param(tenant_case), "start");
  EXPECT_EQ(count("SELECT count(*) FROM price_versions"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM invoices"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM admin_audit WHERE action LIKE 'price.%' OR action LIKE "
                  "'invoice.%'"),
            0);
}

TEST_F(BillingApiTest, InvoicesFromTheCommandLine) {
  ASSERT_EQ(admin("POST", "/admin/v1/prices",
                  R"({"model":"toy","token_class":"input","price_per_million":"1",
                      "currency":"EUR","effective_from":"2020-01-01T00:00:00Z"})").status, 201);
  usage(tenant_id, "r1", "2026-01-10T00:00:00Z", 2'000'000, 0);
  std::string out;
  ASSERT_EQ(test::run_infergate({"invoices", "generate", "--period", "2026-01"}, env, &out), 0) << out;
  EXPECT_NE(out.find("\"status\":\"draft\""), std::string::npos) << out;
  ASSERT_EQ(test::run_infergate({"invoices", "finalize", "--period", "2026-01", "--tenant", "acme"},
                                env, &out), 0) << out;
  EXPECT_NE(out.find("\"number\":1"), std::string::npos) << out;
  ASSERT_EQ(test::run_infergate({"invoices", "export", "--period", "2026-01", "--format", "csv"},
                                env, &out), 0);
  EXPECT_NE(out.find(",acme,finalized,2026-01,"), std::string::npos) << out;
  const std::string dir = test::make_temp_dir("export");
  ASSERT_EQ(test::run_infergate({"invoices", "export", "--period", "2026-01", "--format", "csv",
                                 "--out", dir}, env, &out), 0) << out;
  std::ifstream lines(dir + "/invoice_lines.csv");
  std::string header;
  std::getline(lines, header);
  EXPECT_EQ(header, "invoice_id,number,tenant_id,line_no,model,token_class,quantity,"
                    "unit_price_per_million,exact_amount,amount_minor,amount,currency,"
                    "is_adjustment,adjustment_period\r");
  EXPECT_TRUE(std::filesystem::exists(dir + "/invoices.csv"));
  ASSERT_EQ(test::run_infergate({"invoices", "export", "--period", "2026-01", "--format", "json"},
                                env, &out), 0);
  EXPECT_EQ(json::parse(out).at("data").at(0).at("total"), "2.00");
  EXPECT_EQ(test::run_infergate({"invoices", "export", "--period", "2026-1", "--format", "csv"},
                                env, &out), 2);
  EXPECT_EQ(test::run_infergate({"invoices", "export", "--period", "2026-01"}, env, &out), 2);
  EXPECT_EQ(test::run_infergate({"invoices", "generate", "--period", "2026-01", "--tenant", "acme"},
                                env, &out), 1);  // finalized: refused
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace infergate
