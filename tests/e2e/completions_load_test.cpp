// The serving path under load and when clients go away, through the real binary with the
// "small" preset (slow enough on one engine thread, ~10 ms a token, that a request is still
// running when the test acts): a disconnect cancels the engine work, frees the KV cache and is
// metered as cancelled; an overloaded model's requests fall back to the next tier and are
// reported and metered as the model that ran.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <future>
#include <regex>
#include <thread>

#include "completions_support.h"

namespace infergate {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

// A client socket that sends a request, reads what has arrived, and closes when told.
class RawClient {
 public:
  explicit RawClient(int port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      throw std::runtime_error("connect failed");
  }
  ~RawClient() { close(); }
  void send(const std::string& bytes) {
    if (::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(bytes.size()))
      throw std::runtime_error("send failed");
  }
  // Reads until `received` contains `needle` `times` times; false at the deadline or on close.
  bool read_until(const std::string& needle, int times, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      int n = 0;
      for (auto p = received.find(needle); p != std::string::npos; p = received.find(needle, p + 1)) ++n;
      if (n >= times) return true;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      const ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
      if (got <= 0) return false;
      received.append(buf, static_cast<std::size_t>(got));
    }
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  std::string received;

 private:
  int fd_;
};

std::string request(const std::string& path, const std::string& key, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + key +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string request_id(const std::string& response_head) {
  std::smatch m;
  if (!std::regex_search(response_head, m, std::regex("x-request-id: (req_[0-9a-f]+)", std::regex::icase))) return "";
  return m[1];
}

class Disconnect : public ::testing::Test {
 protected:
  test::Backend backend;
  test::Tenant acme = backend.tenant("acme");
  test::ServerProcess server{backend.config(), {}, test::models_toml({{"slow", test::model_file("small"), "small"}})};

  // Waits until the engine reports one running sequence, then (after the caller closes) none
  // and an empty KV cache.
  void expect_running(int n) {
    std::string metrics;
    const std::string running = "infergate_requests_running{model=\"slow\"} " + std::to_string(n);
    EXPECT_TRUE(test::wait_metrics(server.port(), {running}, 5s, &metrics)) << "no '" << running << "' in\n" << metrics;
  }
  void expect_engine_idle() {
    std::string metrics;
    EXPECT_TRUE(test::wait_metrics(server.port(),
                                   {"infergate_requests_running{model=\"slow\"} 0",
                                    "infergate_kv_cache_usage_ratio{model=\"slow\"} 0",
                                    "infergate_requests_waiting{model=\"slow\"} 0"},
                                   5s, &metrics))
        << "the engine still holds the request:\n"
        << metrics;
  }
};

TEST_F(Disconnect, MidStreamCancelsTheSequenceFreesTheKvCacheAndMetersCancelled) {
  RawClient c(server.port());
  c.send(request("/v1/chat/completions", acme.key,
                 R"({"model":"slow","messages":[{"role":"user","content":"tell me a long story"}],)"
                 R"("max_tokens":400,"temperature":0,"stream":true})"));
  ASSERT_TRUE(c.read_until("data: ", 3, 10s)) << c.received;  // the role chunk and two tokens
  ASSERT_NE(c.received.find("200 OK"), std::string::npos) << c.received;
  const std::string id = request_id(c.received);
  ASSERT_FALSE(id.empty()) << c.received;
  expect_running(1);
  const auto closed_at = std::chrono::steady_clock::now();
  c.close();

  const auto row = backend.wait_ledger_row(id);
  EXPECT_EQ(row.status, "cancelled");
  EXPECT_EQ(row.finish_reason, "cancelled");
  EXPECT_EQ(row.model, "slow");
  EXPECT_GT(row.prompt_tokens, 0);
  EXPECT_GE(row.completion_tokens, 2);
  EXPECT_LT(row.completion_tokens, 400);
  // Cancelled at the next step, not after the remaining ~4 s of generation.
  EXPECT_LT(std::chrono::steady_clock::now() - closed_at, 2s);
  expect_engine_idle();
  auto m = test::http_request(server.port(), "GET", "/metrics").body;
  EXPECT_NE(m.find("infergate_completion_requests_total{model=\"slow\",status=\"cancelled\",finish_reason=\"cancelled\"} 1"),
            std::string::npos)
      << m;
}

TEST_F(Disconnect, NonStreamingClientThatLeavesIsCancelled) {
  RawClient c(server.port());
  // Long enough to be still running when the client leaves on a GPU too (seconds there; on the
  // CPU it is cancelled long before its end).
  c.send(request("/v1/completions", acme.key,
                 R"({"model":"slow","prompt":"Once upon a time","max_tokens":1900,"temperature":0})"));
  expect_running(1);  // generating, with no byte of the response sent yet
  EXPECT_EQ(c.received, "");
  c.close();

  // The client never saw its request id; the request is the only one in this database.
  const auto row = backend.wait_only_ledger_row();
  EXPECT_EQ(row.status, "cancelled");
  EXPECT_LT(row.completion_tokens, 1900);
  expect_engine_idle();
}

// One keep-alive connection: requests one after another and two pipelined in one write are all
// answered in order and metered as completed (each request's disconnect watch ends when its
// response is written, and the client's next bytes are not taken for a departure); a request
// after them whose client leaves is still noticed and cancelled.
TEST_F(Disconnect, KeepAliveAndPipelinedRequestsCompleteAndALaterDepartureIsStillSeen) {
  const std::string body = R"({"model":"slow","prompt":"Once upon a time","max_tokens":2,"temperature":0})";
  RawClient c(server.port());
  c.send(request("/v1/completions", acme.key, body));
  ASSERT_TRUE(c.read_until("\"total_tokens\"", 1, 10s)) << c.received;
  c.send(request("/v1/completions", acme.key, body));
  ASSERT_TRUE(c.read_until("\"total_tokens\"", 2, 10s)) << c.received;
  c.send(request("/v1/completions", acme.key, body) + request("/v1/completions", acme.key, body));
  ASSERT_TRUE(c.read_until("\"total_tokens\"", 4, 10s)) << c.received;
  // The next request's bytes arrive while one is still generating: it is not taken for a
  // departure (the first completes whole), and the second is answered after it.
  c.send(request("/v1/completions", acme.key,
                 R"({"model":"slow","prompt":"Once upon a time","max_tokens":400,"temperature":0})"));
  expect_running(1);
  c.send(request("/v1/completions", acme.key, body));
  ASSERT_TRUE(c.read_until("\"total_tokens\"", 6, 10s)) << c.received;
  std::vector<std::string> ids;
  const std::regex id_header("x-request-id: (req_[0-9a-f]+)", std::regex::icase);
  for (std::sregex_iterator it(c.received.begin(), c.received.end(), id_header), end; it != end; ++it)
    ids.push_back((*it)[1]);
  ASSERT_EQ(ids.size(), 6u) << c.received;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const auto row = backend.wait_ledger_row(ids[i]);
    EXPECT_EQ(row.status, "completed") << ids[i];
    EXPECT_EQ(row.completion_tokens, i == 4 ? 400 : 2) << ids[i];
  }
  c.send(request("/v1/completions", acme.key,
                 R"({"model":"slow","prompt":"Once upon a time","max_tokens":400,"temperature":0})"));
  expect_running(1);
  c.close();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (backend.count("SELECT count(*) FROM usage_events") < 7 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(backend.count("SELECT count(*) FROM usage_events"), 7);
  EXPECT_EQ(backend.count("SELECT count(*) FROM usage_events WHERE status = 'cancelled' AND completion_tokens < 400"), 1);
  expect_engine_idle();
}

// A generation still running when the shutdown grace ends is cancelled with its connection: the
// process exits soon after the deadline, and the request is metered as cancelled with the tokens
// it processed, in the ledger before the process is gone. (A non-streaming one used to run on
// until the server stopped waiting a second later, and then went unmetered: its handler, which
// wrote the record, never ran again. A streaming one notices at its next write.)
// With `second_signal`, the grace is a minute and a second SIGTERM cuts it short.
void expect_cut_at_grace_deadline_and_metered(bool stream, bool second_signal = false) {
  test::Backend backend;
  const auto acme = backend.tenant("acme");
  test::ServerProcess server(backend.config({{"server", {{"shutdown_grace_ms", second_signal ? "60000" : "300"}}}}), {},
                             test::models_toml({{"slow", test::model_file("small"), "small"}}));
  RawClient c(server.port());
  c.send(request("/v1/completions", acme.key,
                 std::string(R"({"model":"slow","prompt":"Once upon a time","max_tokens":1900,"temperature":0,"stream":)") +
                     (stream ? "true}" : "false}")));
  std::string metrics;
  ASSERT_TRUE(test::wait_metrics(server.port(), {"infergate_requests_running{model=\"slow\"} 1"}, 5s, &metrics))
      << metrics;
  const auto t0 = std::chrono::steady_clock::now();
  server.signal(SIGTERM);
  if (second_signal) {
    std::this_thread::sleep_for(300ms);
    server.signal(SIGTERM);
  }
  const auto code = server.wait_exit(30s);
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);  // 1,900 tokens would take far longer
  const auto row = backend.wait_only_ledger_row(2s);    // in Postgres already: drained at exit
  EXPECT_EQ(row.status, "cancelled");
  EXPECT_EQ(row.finish_reason, "cancelled");
  EXPECT_GT(row.prompt_tokens, 0);
  EXPECT_GE(row.completion_tokens, 1);
  EXPECT_LT(row.completion_tokens, 1900);
  // Its handler ran to the end (cancelled through its connection, not dropped with the event
  // loop and left to the engine's exit).
  EXPECT_EQ(server.count_in_log("\"path\":\"/v1/completions\""), 1);
}

TEST(ShutdownMetering, AGenerationCutAtTheGraceDeadlineIsMeteredAsCancelled) {
  expect_cut_at_grace_deadline_and_metered(false);
}

TEST(ShutdownMetering, AStreamCutAtTheGraceDeadlineIsMeteredAsCancelled) {
  expect_cut_at_grace_deadline_and_metered(true);
}

TEST(ShutdownMetering, ASecondSignalCutsTheGraceShortAndTheRequestIsStillMetered) {
  expect_cut_at_grace_deadline_and_metered(false, true);
}

// A stream whose engine is in a long step (a ~1,800-token prefill of the "medium" preset on one
// engine thread: seconds) when the shutdown closes its connection. Whichever way the shutdown
// ends it, its usage is metered, as cancelled with the prompt tokens the engine processed.
namespace shutdown_cut {

std::string long_prompt_body() {
  std::string prompt;
  for (int i = 0; i < 220; ++i) prompt += "the cat sat on a mat " + std::to_string(i % 10) + " ";
  return R"({"model":"big","prompt":)" + json::serialize(json::value(prompt)) +
         R"(,"max_tokens":50,"temperature":0,"stream":true})";
}

test::ConfigValues config(const test::Backend& backend, const std::string& cut_ms) {
  // On the CPU: the test needs one engine step that lasts seconds (on a GPU the whole request
  // takes a fraction of one). Reservations expire 4 s after their last renewal.
  return backend.config({{"server", {{"shutdown_grace_ms", "100"}, {"shutdown_cut_ms", cut_ms}}},
                         {"admission", {{"reservation_ttl_ms", "4000"}}},
                         {"engine", {{"device", "\"cpu\""}, {"threads", "1"}, {"max_batch_tokens", "2048"},
                                     {"prefix_cache", "false"}}}});
}

std::string models() { return test::models_toml({{"big", test::model_file("medium", 1, "q8_0"), "medium"}}); }

// Sends the long stream, waits until its prefill is under way, and stops the server (with a
// second signal 300 ms after the first, still within that prefill, when `second_signal`).
void cut_at_shutdown(test::ServerProcess& server, const std::string& key, bool second_signal = false) {
  RawClient c(server.port());
  c.send(request("/v1/completions", key, long_prompt_body()));
  // The response's head goes out as the sequence is submitted; its prefill takes seconds.
  ASSERT_TRUE(c.read_until("HTTP/1.1 200", 1, 10s)) << c.received.substr(0, 3000);
  std::this_thread::sleep_for(300ms);
  server.signal(SIGTERM);
  if (second_signal) {
    std::this_thread::sleep_for(300ms);
    server.signal(SIGTERM);
  }
  const auto code = server.wait_exit(60s);
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 0);
}

}  // namespace shutdown_cut

// The shutdown waits for the step to end: the handler then meters the request and settles its
// reservation in Redis like any client that left. So after a restart the tenant's one concurrency
// slot is free at once, and its day's quota holds the tokens the request used. (Both used to wait
// for the reservation's expiry, 10 minutes by default, which then refunded every token: the
// tenant could use them again. The quota check below is the one that tells the two apart whatever
// the timing; the slot check does only when the restart is quicker than the reservation's 4 s
// expiry, as it is here.) `cut_ms` "0" (100 ms): the step outlasts shutdown_cut_ms, and is waited
// for all the same (it used to be left to the exit, which metered the request but could not
// settle it).
void expect_cut_request_settled(const std::string& cut_ms) {
  test::Backend backend;
  const auto acme = backend.tenant("acme", {"--max-concurrent-requests", "1", "--tokens-per-day", "3000"});
  {
    test::ServerProcess server(shutdown_cut::config(backend, cut_ms), {}, shutdown_cut::models());
    shutdown_cut::cut_at_shutdown(server, acme.key);
    EXPECT_EQ(server.count_in_log("streamed request cut at shutdown metered as cancelled"), 0) << server.log();
    EXPECT_EQ(server.count_in_log("metered at exit"), 0) << server.log();
  }
  const auto row = backend.wait_only_ledger_row(2s);
  EXPECT_EQ(row.status, "cancelled");
  EXPECT_EQ(row.finish_reason, "cancelled");
  EXPECT_GT(row.prompt_tokens, 1000);  // the prefill it was cut in
  const std::int64_t used = row.prompt_tokens + row.completion_tokens;
  ASSERT_LT(used, 2900);

  test::ServerProcess again(shutdown_cut::config(backend, "30000"), {}, shutdown_cut::models());
  const std::string tiny = R"({"model":"big","prompt":"Hi","max_tokens":1,"temperature":0})";
  const auto first = test::post_json(again.port(), "/v1/completions", acme.key, tiny);
  EXPECT_EQ(first.status, 200) << first.raw.body;  // the slot is free
  // Past any reservation's expiry (4 s): a reservation that was never settled would have been
  // refunded whole by now, and this one would fit in the day's 3,000 tokens.
  std::this_thread::sleep_for(4500ms);
  // Streamed, and only its head read: were it admitted (the bug), its generation is not waited for.
  const std::int64_t max_tokens = 3000 - used + 20;
  RawClient over(again.port());
  over.send(request("/v1/completions", acme.key,
                    R"({"model":"big","prompt":"Hi","temperature":0,"stream":true,"max_tokens":)" +
                        std::to_string(max_tokens) + "}"));
  ASSERT_TRUE(over.read_until("HTTP/1.1 ", 1, 10s)) << over.received;
  ASSERT_TRUE(over.read_until("\r\n", 1, 10s)) << over.received;
  EXPECT_EQ(over.received.substr(0, 12), "HTTP/1.1 429") << over.received.substr(0, 2000);
  if (over.received.substr(0, 12) == "HTTP/1.1 429") {
    ASSERT_TRUE(over.read_until("insufficient_quota", 1, 10s)) << over.received;
  }
}

TEST(ShutdownMetering, ARequestCutAtShutdownIsSettledAndItsTokensCountInTheQuota) {
  expect_cut_request_settled("30000");
}

TEST(ShutdownMetering, ARequestWhoseStepOutlastsShutdownCutMsIsStillSettled) { expect_cut_request_settled("0"); }

// A second signal while the shutdown waits for the step: the handler stops with the event loops
// before the engine's last event. The shutdown then meters the stream itself, once the engines
// have stopped. (Its usage used to go unmetered: the handler that writes a streamed request's
// record never ran again.)
TEST(ShutdownMetering, AStreamWhoseEngineOutlastsTheEventLoopsIsMeteredAsCancelled) {
  test::Backend backend;
  const auto acme = backend.tenant("acme");
  test::ServerProcess server(shutdown_cut::config(backend, "0"), {}, shutdown_cut::models());
  shutdown_cut::cut_at_shutdown(server, acme.key, /*second_signal=*/true);
  EXPECT_EQ(server.count_in_log("streamed request cut at shutdown metered as cancelled"), 1) << server.log();
  const auto row = backend.wait_only_ledger_row(2s);  // in Postgres already: drained at exit
  EXPECT_EQ(row.status, "cancelled");
  EXPECT_EQ(row.finish_reason, "cancelled");
  EXPECT_GT(row.prompt_tokens, 1000);  // the prefill it was cut in
  EXPECT_LT(row.completion_tokens, 50);
}

// Model alpha (tier small) and beta (tier medium), each running one sequence at a time, and a
// model with anything waiting counts as overloaded: concurrent requests for alpha spill to beta.
TEST(CompletionsRouting, OverloadedModelFallsBackToTheNextTierReportedAndMetered) {
  test::Backend backend;
  const auto acme = backend.tenant("acme");
  // On the CPU: requests must overlap in the engine for one to wait, and on a GPU each of these
  // is over in milliseconds (the routing decision itself does not depend on the device).
  test::ServerProcess server(backend.config({{"engine", {{"device", "\"cpu\""}, {"max_seqs", "1"}}},
                                             {"routing", {{"max_queue_depth", "0"}}}}),
                             {},
                             test::models_toml({{"alpha", test::model_file("small", 1), "small"},
                                                {"beta", test::model_file("small", 2), "medium"}}));
  const std::string body = R"({"model":"alpha","messages":[{"role":"user","content":"hi"}],"max_tokens":30})";
  // Warm the key cache, so that the concurrent requests reach the router together.
  ASSERT_EQ(test::post_json(server.port(), "/v1/chat/completions", acme.key, body).status, 200);

  // Requests 40 ms apart, each running ~150 ms: the router sees the queue that the earlier ones
  // made (it reads the engine's load before admission, so requests of one burst within a Redis
  // round trip all see the same idle model).
  std::vector<std::future<test::ApiReply>> calls;
  for (int i = 0; i < 4; ++i) {
    if (i > 0) std::this_thread::sleep_for(40ms);
    calls.push_back(std::async(std::launch::async, [&] {
      return test::post_json(server.port(), "/v1/chat/completions", acme.key, body);
    }));
  }
  int on_alpha = 0, on_beta = 0;
  for (auto& f : calls) {
    const test::ApiReply r = f.get();
    if (r.status == 503) {  // both busy: an honest overload answer
      EXPECT_EQ(r.error_code(), "model_overloaded");
      EXPECT_FALSE(r.header("retry-after").empty());
      continue;
    }
    ASSERT_EQ(r.status, 200) << r.raw.body;
    const std::string model = r.header("x-infergate-model");
    EXPECT_EQ(r.body.at("model"), json::value(model));
    if (model == "alpha") {
      ++on_alpha;
      EXPECT_EQ(r.header("x-infergate-tier"), "small");
      EXPECT_EQ(r.header("x-infergate-fallback"), "");
    } else {
      ++on_beta;
      EXPECT_EQ(model, "beta");
      EXPECT_EQ(r.header("x-infergate-tier"), "medium");
      EXPECT_EQ(r.header("x-infergate-fallback"), "alpha");
    }
    const auto row = backend.wait_ledger_row(r.header("x-request-id"));
    EXPECT_EQ(row.model, model);
    EXPECT_EQ(row.tier, r.header("x-infergate-tier"));
    EXPECT_EQ(row.status, "completed");
    EXPECT_EQ(row.completion_tokens, r.body.at("usage").at("completion_tokens").as_int64());
  }
  EXPECT_GE(on_alpha, 1);
  EXPECT_GE(on_beta, 1) << "no request fell back to beta";
  auto m = test::http_request(server.port(), "GET", "/metrics").body;
  EXPECT_NE(m.find("infergate_routing_fallbacks_total{from=\"alpha\",to=\"beta\"} " + std::to_string(on_beta)),
            std::string::npos)
      << m;
}

}  // namespace
}  // namespace infergate
