// Process lifecycle of the real binary: graceful shutdown, bad configs, and Postgres or Redis
// going away and coming back.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <signal.h>

#include <memory>
#include <thread>
#include <vector>

#include "server_harness.h"
#include "support/http_client.h"
#include "support/services.h"

namespace infergate {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

bool wait_status(int port, const std::string& path, int status, std::chrono::milliseconds limit,
                 test::HttpResponse* last = nullptr) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  test::HttpResponse r;
  while (std::chrono::steady_clock::now() < deadline) {
    r = test::http_request(port, "GET", path);
    if (r.status == status) break;
    std::this_thread::sleep_for(50ms);
  }
  if (last) *last = r;
  return r.status == status;
}

TEST(Shutdown, InFlightRequestFinishesIdleConnectionsCloseNewOnesAreRefused) {
  test::ServerProcess server(test::base_config({{"server", {{"shutdown_grace_ms", "8000"}}}}));
  const int port = server.port();

  test::Connection idle(port);  // keep-alive connection between requests
  idle.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(idle.read_response());

  test::Connection inflight(port);  // a request whose body is still arriving
  inflight.send("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345");
  std::this_thread::sleep_for(200ms);

  auto t0 = std::chrono::steady_clock::now();
  server.signal(SIGTERM);
  ASSERT_TRUE(server.wait_for_log("shutdown started", 2s));
  EXPECT_TRUE(idle.wait_closed(2s));  // idle connections do not hold up the drain

  bool refused = false;
  for (int i = 0; i < 100 && !refused; ++i) {
    refused = !test::can_connect(port);
    if (!refused) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(refused) << "still accepting connections after SIGTERM";

  inflight.send("67890");
  auto r = inflight.read_response(3s);
  ASSERT_TRUE(r) << "the in-flight request got no response";
  EXPECT_EQ(r->status, 405);  // the complete, normal answer to POST /healthz
  EXPECT_EQ(r->header("connection"), "close");

  auto code = server.wait_exit(5s);
  ASSERT_TRUE(code) << "did not exit";
  EXPECT_EQ(*code, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 6s);  // did not sit out the grace period
  EXPECT_EQ(server.count_in_log("\"msg\":\"shutdown complete\""), 1);
}

// Each io thread runs its own event loop with its share of the connections (in turn): with three
// of them, six connections land two on each. Every one serves requests, and a drain reaches all
// of them: the idle ones close, the ones mid-request get their whole answer, the process exits.
TEST(Shutdown, ConnectionsOnEveryIoThreadServeAndDrain) {
  test::ServerProcess server(test::base_config({{"server", {{"shutdown_grace_ms", "8000"}, {"io_threads", "3"}}}}));
  const int port = server.port();
  std::vector<std::unique_ptr<test::Connection>> idle, inflight;
  for (int i = 0; i < 6; ++i) {
    auto c = std::make_unique<test::Connection>(port);
    for (int j = 0; j < 3; ++j) {  // keep-alive: several requests each
      c->send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
      auto r = c->read_response();
      ASSERT_TRUE(r) << "connection " << i << " request " << j;
      EXPECT_EQ(r->status, 200);
    }
    (i % 2 == 0 ? idle : inflight).push_back(std::move(c));
  }
  for (auto& c : inflight) c->send("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345");
  std::this_thread::sleep_for(200ms);

  server.signal(SIGTERM);
  ASSERT_TRUE(server.wait_for_log("shutdown started", 2s));
  for (auto& c : idle) EXPECT_TRUE(c->wait_closed(2s));
  for (auto& c : inflight) {
    c->send("67890");
    auto r = c->read_response(3s);
    ASSERT_TRUE(r) << "an in-flight request got no response";
    EXPECT_EQ(r->status, 405);
    EXPECT_EQ(r->header("connection"), "close");
  }
  auto code = server.wait_exit(5s);
  ASSERT_TRUE(code) << "did not exit";
  EXPECT_EQ(*code, 0);
  EXPECT_EQ(server.count_in_log("\"msg\":\"shutdown complete\""), 1);
  EXPECT_EQ(server.count_in_log("connection failed"), 0);
}

TEST(Shutdown, StuckRequestIsCutAtTheGraceDeadline) {
  test::ServerProcess server(test::base_config({{"server", {{"shutdown_grace_ms", "300"}}}}));
  test::Connection stuck(server.port());
  stuck.send("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n123");
  std::this_thread::sleep_for(200ms);
  auto t0 = std::chrono::steady_clock::now();
  server.signal(SIGTERM);
  auto code = server.wait_exit(5s);
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 0);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 3s);
  EXPECT_EQ(server.count_in_log("closing connections after grace period"), 1);
  EXPECT_TRUE(stuck.wait_closed(1s));
}

TEST(Config, UnknownKeyExitsNonZeroNamingKeyAndFile) {
  std::string dir = test::make_temp_dir("cfg");
  std::string path = dir + "/bad.toml";
  test::write_file(path, "[server]\nport = 0\nbogus_key = 1\n");
  std::string out;
  int code = test::run_infergate({"serve", "--config", path}, {}, &out);
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("server.bogus_key"), std::string::npos) << out;
  EXPECT_NE(out.find(path), std::string::npos) << out;
  EXPECT_EQ(out.find("listening"), std::string::npos) << "bound a port before failing";
}

TEST(Config, WrongTypeAndBadValues) {
  std::string dir = test::make_temp_dir("cfg");
  struct Case {
    std::string toml, needle;
  } cases[] = {
      {"[server]\nport = \"eighty\"\n", "server.port"},
      {"[server]\nio_threads = 0\n", "server.io_threads"},
      {"[redis]\ncommand_timeout_ms = -5\n", "redis.command_timeout_ms"},
      {"[log]\nlevel = \"loud\"\n", "log.level"},
      {"[nonsense]\nx = 1\n", "nonsense"},
      {"[server\nport = 1\n", "not valid TOML"},
  };
  for (const auto& c : cases) {
    std::string path = dir + "/c.toml";
    test::write_file(path, c.toml);
    std::string out;
    EXPECT_EQ(test::run_infergate({"serve", "--config", path}, {}, &out), 2) << c.toml;
    EXPECT_NE(out.find(c.needle), std::string::npos) << c.toml << "\n" << out;
  }
  std::string out;
  EXPECT_EQ(test::run_infergate({"serve", "--config", dir + "/missing.toml"}, {}, &out), 2);
  EXPECT_NE(out.find("cannot open config file"), std::string::npos) << out;
}

TEST(Config, EnvironmentOverridesAreCheckedToo) {
  std::string dir = test::make_temp_dir("cfg");
  std::string path = dir + "/ok.toml";
  test::write_file(path, test::render_toml(test::base_config()));
  std::string out;
  EXPECT_EQ(test::run_infergate({"serve", "--config", path}, {{"INFERGATE_SERVER__PORT", "abc"}},
                                &out),
            2);
  EXPECT_NE(out.find("INFERGATE_SERVER__PORT"), std::string::npos) << out;
  EXPECT_EQ(test::run_infergate({"serve", "--config", path}, {{"INFERGATE_SERVER__NOPE", "1"}},
                                &out),
            2);
  EXPECT_NE(out.find("INFERGATE_SERVER__NOPE"), std::string::npos) << out;
}

TEST(Config, PortInUseExitsWithAClearMessage) {
  test::ServerProcess first(test::base_config());
  std::string dir = test::make_temp_dir("cfg");
  std::string path = dir + "/dup.toml";
  test::write_file(path, test::render_toml(test::base_config(
                             {{"server", {{"port", std::to_string(first.port())}}}})));
  std::string out;
  EXPECT_EQ(test::run_infergate({"serve", "--config", path}, {}, &out), 1);
  EXPECT_NE(out.find("cannot listen on 127.0.0.1:" + std::to_string(first.port())),
            std::string::npos)
      << out;
}

TEST(Dependencies, RedisStoppedAndRestarted) {
  test::PrivateRedis redis;
  test::ServerProcess server(
      test::base_config({{"redis", {{"port", std::to_string(redis.port())}}}}));
  ASSERT_TRUE(wait_status(server.port(), "/readyz", 200, 5s));

  redis.stop();
  test::HttpResponse r;
  ASSERT_TRUE(wait_status(server.port(), "/readyz", 503, 5s, &r));
  auto body = json::parse(r.body);
  EXPECT_FALSE(body.at("checks").at("redis").at("ok").as_bool());
  EXPECT_TRUE(body.at("checks").at("postgres").at("ok").as_bool());
  EXPECT_EQ(body.at("error").at("code").as_string(), "not_ready");
  EXPECT_NE(std::string(body.at("error").at("message").as_string()).find("redis"),
            std::string::npos);
  for (int i = 0; i < 5; ++i) test::http_request(server.port(), "GET", "/readyz");
  EXPECT_EQ(server.count_in_log("\"msg\":\"redis down\""), 1) << "logged once, not per request";

  redis.start();
  EXPECT_TRUE(wait_status(server.port(), "/readyz", 200, 10s, &r)) << r.body;
  EXPECT_EQ(server.count_in_log("\"msg\":\"redis up\""), 2);  // at start and after recovery
}

TEST(Dependencies, PostgresDownAtStartupThenUp) {
  test::PrivatePostgres pg(/*start_now=*/false);
  test::ServerProcess server(
      test::base_config({{"postgres", {{"port", std::to_string(pg.port())}}}}));
  test::HttpResponse r;
  ASSERT_TRUE(wait_status(server.port(), "/readyz", 503, 3s, &r));
  auto body = json::parse(r.body);
  EXPECT_FALSE(body.at("checks").at("postgres").at("ok").as_bool());
  EXPECT_NE(std::string(body.at("checks").at("postgres").at("error").as_string())
                .find("Connection refused"),
            std::string::npos)
      << r.body;
  EXPECT_EQ(test::http_request(server.port(), "GET", "/healthz").status, 200);  // alive
  for (int i = 0; i < 5; ++i) test::http_request(server.port(), "GET", "/readyz");
  EXPECT_EQ(server.count_in_log("\"msg\":\"postgres down\""), 1);

  pg.start();
  EXPECT_TRUE(wait_status(server.port(), "/readyz", 200, 15s, &r)) << r.body;
  EXPECT_EQ(server.count_in_log("\"msg\":\"postgres up\""), 1);
}

}  // namespace
}  // namespace infergate

namespace infergate {
namespace {

TEST(Journal, TwoInstancesCannotShareAJournal) {
  std::string dir = test::make_temp_dir("shared-journal");
  const test::ConfigValues journal{{"journal", {{"dir", "\"" + dir + "/j\""}}}};
  test::ServerProcess first(test::base_config(journal));
  std::string path = dir + "/second.toml";
  test::write_file(path, test::render_toml(test::base_config(journal)));
  std::string out;
  EXPECT_EQ(test::run_infergate({"serve", "--config", path}, {}, &out), 1);
  EXPECT_NE(out.find("in use by another process"), std::string::npos) << out;
  EXPECT_EQ(out.find("\"msg\":\"listening\""), std::string::npos);
}

}  // namespace
}  // namespace infergate
