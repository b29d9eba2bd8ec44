// The real binary over real sockets: operational endpoints, the error shape of every failure,
// keep-alive, deadlines and size limits.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <regex>
#include <thread>

#include "server_harness.h"
#include "support/http_client.h"

namespace infergate {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

void expect_openai_error(const test::HttpResponse& r, int status, const std::string& code) {
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_TRUE(std::regex_match(r.header("x-request-id"), std::regex("req_[0-9a-f]{24}")))
      << r.header("x-request-id");
  json::value v = json::parse(r.body);
  const auto& err = v.at("error").as_object();
  EXPECT_EQ(err.at("code").as_string(), code);
  EXPECT_FALSE(err.at("message").as_string().empty());
  EXPECT_TRUE(err.at("type").is_string());
  EXPECT_TRUE(err.contains("param"));
}

class HttpTest : public ::testing::Test {
 protected:
  test::ServerProcess server{test::base_config({{"server",
                                                 {{"max_body_bytes", "2048"},
                                                  {"max_header_bytes", "2048"},
                                                  {"read_timeout_ms", "400"},
                                                  {"idle_timeout_ms", "600"}}}})};
};

TEST_F(HttpTest, HealthzReadyzAndMetrics) {
  auto h = test::http_request(server.port(), "GET", "/healthz");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(json::parse(h.body).at("status").as_string(), "ok");
  EXPECT_TRUE(std::regex_match(h.header("x-request-id"), std::regex("req_[0-9a-f]{24}")));

  // readyz: both dependencies are the shared test services; allow the first connect.
  test::HttpResponse r;
  for (int i = 0; i < 50; ++i) {
    r = test::http_request(server.port(), "GET", "/readyz");
    if (r.status == 200) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(r.status, 200) << r.body;
  auto ready = json::parse(r.body);
  EXPECT_EQ(ready.at("status").as_string(), "ready");
  EXPECT_TRUE(ready.at("checks").at("postgres").at("ok").as_bool());
  EXPECT_TRUE(ready.at("checks").at("redis").at("ok").as_bool());

  test::http_request(server.port(), "GET", "/nope");
  // A request is counted once its response is written, which can be a moment after the
  // client has read it: poll briefly.
  test::HttpResponse m;
  for (int i = 0; i < 50; ++i) {
    m = test::http_request(server.port(), "GET", "/metrics");
    if (m.body.find("route=\"unmatched\",status=\"404\"} 1") != std::string::npos) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.header("content-type").find("text/plain"), std::string::npos);
  EXPECT_NE(m.body.find("infergate_http_requests_total{route=\"/healthz\",status=\"200\"} 1\n"),
            std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("infergate_http_requests_total{route=\"unmatched\",status=\"404\"} 1\n"),
            std::string::npos);
  EXPECT_NE(m.body.find("infergate_http_request_duration_seconds_count{route=\"/healthz\","
                        "status=\"200\"} 1\n"),
            std::string::npos);
  EXPECT_NE(m.body.find("infergate_redis_up 1"), std::string::npos);
  EXPECT_NE(m.body.find("infergate_postgres_up 1"), std::string::npos);

  // One JSON log line per request, with its id.
  EXPECT_TRUE(server.wait_for_log(h.header("x-request-id"), 2s));
  EXPECT_NE(server.log().find("\"route\":\"/healthz\",\"status\":200"), std::string::npos);
}

TEST_F(HttpTest, NotFoundAndMethodNotAllowed) {
  expect_openai_error(test::http_request(server.port(), "GET", "/v1/nothing-here"), 404,
                      "not_found");
  auto r = test::http_request(server.port(), "DELETE", "/healthz");
  expect_openai_error(r, 405, "method_not_allowed");
  EXPECT_EQ(r.header("allow"), "GET");
  auto head = test::http_request(server.port(), "HEAD", "/healthz");
  EXPECT_EQ(head.status, 200);
}

// The bytes on the wire: a HEAD response carries the GET's Content-Length and no body, so the
// next response on the connection starts right after its blank line; an HTTP/1.0 request gets an
// HTTP/1.0 status line.
TEST_F(HttpTest, ResponsesOnTheWire) {
  const auto get = test::http_request(server.port(), "GET", "/healthz");
  ASSERT_EQ(get.status, 200);
  ASSERT_FALSE(get.body.empty());
  test::Connection c(server.port());
  c.send("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string wire;
  auto both_in = [&] {
    return wire.find("HTTP/1.1 200 OK\r\n", 1) != std::string::npos && wire.size() >= get.body.size() &&
           wire.compare(wire.size() - get.body.size(), get.body.size(), get.body) == 0;
  };
  for (int i = 0; i < 20 && !both_in(); ++i) wire += c.read_raw(100ms);
  const std::size_t second = wire.find("HTTP/1.1 200 OK\r\n", 1);
  ASSERT_EQ(wire.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << wire;
  ASSERT_NE(second, std::string::npos) << wire;
  const std::string head = wire.substr(0, second);
  EXPECT_EQ(head.find("\r\n\r\n"), head.size() - 4) << "nothing after the HEAD response's blank line: " << wire;
  const std::string length = "Content-Length: " + std::to_string(get.body.size()) + "\r\n";
  EXPECT_NE(head.find(length), std::string::npos) << head;
  EXPECT_EQ(wire.substr(wire.size() - get.body.size()), get.body);

  test::Connection old(server.port());
  old.send("GET /healthz HTTP/1.0\r\n\r\n");
  const std::string raw = old.read_raw(300ms);
  EXPECT_EQ(raw.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << raw;
  EXPECT_EQ(raw.substr(raw.size() - get.body.size()), get.body);
  EXPECT_TRUE(old.wait_closed(2s));
}

TEST_F(HttpTest, BodyOverTheLimitIs413) {
  test::Connection c(server.port());
  c.send("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" +
         std::string(4096, 'a'));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  expect_openai_error(*r, 413, "request_too_large");
  EXPECT_TRUE(c.wait_closed(2s));
}

TEST_F(HttpTest, HeadersOverTheLimitAre431) {
  test::Connection c(server.port());
  c.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'b') + "\r\n\r\n");
  auto r = c.read_response();
  ASSERT_TRUE(r);
  expect_openai_error(*r, 431, "request_header_fields_too_large");
}

TEST_F(HttpTest, MalformedRequestIs400) {
  test::Connection c(server.port());
  c.send("THIS IS NOT HTTP\r\n\r\n");
  auto r = c.read_response();
  ASSERT_TRUE(r);
  expect_openai_error(*r, 400, "bad_request");
}

TEST_F(HttpTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  test::Connection c(server.port());
  for (int i = 0; i < 3; ++i) {
    c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    auto r = c.read_response();
    ASSERT_TRUE(r) << "request " << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_NE(r->header("connection"), "close");
  }
  // Pipelined: two requests in one write, two responses in order.
  c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
  auto a = c.read_response();
  auto b = c.read_response();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(b->status, 404);
}

// A request that arrives in pieces (the header cut mid-line, a body after a pause) is read on
// to its end, and the connection goes on with the next request where that one ended.
TEST_F(HttpTest, RequestsArrivingInPiecesAreReadWhole) {
  test::Connection c(server.port());
  c.send("GET /healthz HTTP/1.1\r\nHo");
  std::this_thread::sleep_for(100ms);
  c.send("st: x\r\n\r\n");
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);

  c.send("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234");
  std::this_thread::sleep_for(100ms);
  c.send("56789GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");  // the body's end and the next request
  auto post = c.read_response();
  auto next = c.read_response();
  ASSERT_TRUE(post && next);
  EXPECT_EQ(post->status, 405) << post->body;
  EXPECT_EQ(next->status, 200) << next->body;

  // Pipelined with bodies: two POSTs and a GET in one write.
  const std::string post_one = "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";
  c.send(post_one + post_one + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  for (int i = 0; i < 2; ++i) {
    auto a = c.read_response();
    ASSERT_TRUE(a) << i;
    EXPECT_EQ(a->status, 405) << i;
  }
  auto last = c.read_response();
  ASSERT_TRUE(last);
  EXPECT_EQ(last->status, 200);
}

TEST_F(HttpTest, IncompleteRequestGets408AtTheReadDeadline) {
  test::Connection c(server.port());
  auto t0 = std::chrono::steady_clock::now();
  c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n");  // headers never finished
  auto r = c.read_response(3s);
  ASSERT_TRUE(r);
  expect_openai_error(*r, 408, "request_timeout");
  auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 350ms);
  EXPECT_LT(waited, 2500ms);
  EXPECT_TRUE(c.wait_closed(2s));
}

TEST_F(HttpTest, IdleKeepAliveConnectionIsClosedAfterIdleTimeout) {
  test::Connection c(server.port());
  c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(c.read_response());
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.wait_closed(3s));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 500ms);
}

}  // namespace
}  // namespace infergate
