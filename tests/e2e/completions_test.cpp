// POST /v1/chat/completions and /v1/completions through the real binary with a toy model: the
// OpenAI response and SSE shapes, usage, finish reasons, seeds, headers, bad inputs, 429s, the
// usage ledger row of every request, and GET /v1/models.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <regex>
#include <thread>

#include "completions_support.h"

namespace infergate {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

std::string str(const json::value& v) { return std::string(v.as_string()); }

std::string chat_body(const std::string& fields, const std::string& content = "hello there",
                      const std::string& model = "toy") {
  return R"({"model":")" + model + R"(","messages":[{"role":"user","content":)" +
         json::serialize(json::value(content)) + "}]" + (fields.empty() ? "" : "," + fields) + "}";
}
std::string completion_body(const std::string& fields, const std::string& prompt = "Once upon a time") {
  return R"({"model":"toy","prompt":)" + json::serialize(json::value(prompt)) +
         (fields.empty() ? "" : "," + fields) + "}";
}

// One server with the toy model ("toy", tier small, alias "tiny") and a tenant whose plan has
// generous limits (so every x-ratelimit-* header has a value).
class Completions : public ::testing::Test {
 protected:
  test::Backend backend;
  test::Tenant acme = backend.tenant("acme", {"--requests-per-minute", "1000", "--tokens-per-minute", "10000000"});
  test::ServerProcess server{backend.config(), {},
                             test::models_toml({{"toy", test::model_file("toy"), "small", {"tiny"}}})};

  test::ApiReply post(const std::string& path, const std::string& body) {
    return test::post_json(server.port(), path, acme.key, body);
  }
  // A non-streaming chat completion that must succeed; returns its reply.
  test::ApiReply chat_ok(const std::string& fields) {
    auto r = post("/v1/chat/completions", chat_body(fields));
    EXPECT_EQ(r.status, 200) << r.raw.body;
    return r;
  }
  static std::string content(const test::ApiReply& r) {
    return str(r.body.at("choices").at(0).at("message").at("content"));
  }
  void expect_ledger(const test::ApiReply& r, const std::string& status, const std::string& finish) {
    const auto row = backend.wait_ledger_row(r.header("x-request-id"));
    EXPECT_EQ(row.status, status);
    EXPECT_EQ(row.finish_reason, finish);
    EXPECT_EQ(row.model, "toy");
    EXPECT_EQ(row.tier, "small");
    if (r.body.is_object() && r.body.as_object().contains("usage")) {
      EXPECT_EQ(row.prompt_tokens, r.body.at("usage").at("prompt_tokens").as_int64());
      EXPECT_EQ(row.completion_tokens, r.body.at("usage").at("completion_tokens").as_int64());
      EXPECT_EQ(row.cached_tokens, r.body.at("usage").at("prompt_tokens_details").at("cached_tokens").as_int64());
    }
  }
};

TEST_F(Completions, ChatAnswersInTheOpenAiShapeWithUsageHeadersAndOneLedgerRow) {
  test::wait_clear_of_minute_boundary();  // both requests below count in one minute's window
  auto r = chat_ok(R"("max_tokens":8,"temperature":0)");
  const auto& b = r.body.as_object();
  EXPECT_EQ(b.at("object"), "chat.completion");
  EXPECT_EQ(b.at("model"), "toy");
  EXPECT_EQ(str(b.at("id")), "chatcmpl-" + r.header("x-request-id"));
  EXPECT_TRUE(b.at("created").is_int64());
  ASSERT_EQ(b.at("choices").as_array().size(), 1u);
  const auto& choice = b.at("choices").at(0);
  EXPECT_EQ(choice.at("index"), 0);
  EXPECT_EQ(choice.at("message").at("role"), "assistant");
  EXPECT_TRUE(choice.at("message").at("content").is_string());
  EXPECT_EQ(choice.at("finish_reason"), "length");
  const auto& u = b.at("usage");
  EXPECT_GT(u.at("prompt_tokens").as_int64(), 0);
  EXPECT_EQ(u.at("completion_tokens"), 8);
  EXPECT_EQ(u.at("total_tokens").as_int64(), u.at("prompt_tokens").as_int64() + 8);
  EXPECT_EQ(u.at("prompt_tokens_details").at("cached_tokens"), 0);  // the server's first request

  EXPECT_EQ(r.header("x-infergate-model"), "toy");
  EXPECT_EQ(r.header("x-infergate-tier"), "small");
  EXPECT_EQ(r.header("x-infergate-fallback"), "");
  EXPECT_EQ(r.header("x-ratelimit-limit-requests"), "1000");
  EXPECT_EQ(r.header("x-ratelimit-remaining-requests"), "999");
  EXPECT_EQ(r.header("x-ratelimit-limit-tokens"), "10000000");
  EXPECT_FALSE(r.header("x-ratelimit-remaining-tokens").empty());
  EXPECT_TRUE(std::regex_match(r.header("x-ratelimit-reset-requests"), std::regex("[0-9]+(\\.[0-9]+)?m?s")))
      << r.header("x-ratelimit-reset-requests");
  expect_ledger(r, "completed", "length");

  // By alias, the response names the model itself.
  auto a = post("/v1/chat/completions", chat_body(R"("max_tokens":2)", "hi", "tiny"));
  ASSERT_EQ(a.status, 200) << a.raw.body;
  EXPECT_EQ(a.body.at("model"), "toy");
  EXPECT_EQ(a.header("x-infergate-model"), "toy");
  EXPECT_EQ(a.header("x-ratelimit-remaining-requests"), "998");
  expect_ledger(a, "completed", "length");
}

TEST_F(Completions, CompletionsAnswerInTheOpenAiShape) {
  auto r = post("/v1/completions", completion_body(R"("max_tokens":6,"temperature":0)"));
  ASSERT_EQ(r.status, 200) << r.raw.body;
  const auto& b = r.body.as_object();
  EXPECT_EQ(b.at("object"), "text_completion");
  EXPECT_EQ(b.at("model"), "toy");
  EXPECT_EQ(str(b.at("id")), "cmpl-" + r.header("x-request-id"));
  const auto& choice = b.at("choices").at(0);
  EXPECT_TRUE(choice.at("text").is_string());
  EXPECT_EQ(choice.at("finish_reason"), "length");
  EXPECT_EQ(b.at("usage").at("completion_tokens"), 6);
  EXPECT_EQ(r.header("x-infergate-tier"), "small");
  expect_ledger(r, "completed", "length");
  // A non-streaming request reads its tokens at the end, but its inter-token latencies are
  // still measured (by the engine's clock): 6 tokens, 5 gaps.
  const auto m = test::http_request(server.port(), "GET", "/metrics").body;
  EXPECT_NE(m.find("\ninfergate_inter_token_latency_seconds_count{model=\"toy\"} 5\n"), std::string::npos) << m;
  // Its record went to disk in one journal commit (the server's first and only request).
  EXPECT_NE(m.find("\ninfergate_journal_commit_seconds_count 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("\ninfergate_journal_commit_records_sum 1\n"), std::string::npos) << m;
}

// The chunks of a streamed response, checked for the SSE framing; `text` gets the streamed text.
std::vector<json::object> stream_chunks(const test::ApiReply& r, std::string* text, bool chat) {
  EXPECT_EQ(r.status, 200) << r.raw.body;
  EXPECT_EQ(r.header("content-type"), "text/event-stream");
  EXPECT_EQ(r.header("transfer-encoding"), "chunked");
  const auto data = test::sse_data(test::dechunk(r.raw.body));
  EXPECT_GE(data.size(), 3u);
  if (data.empty()) return {};
  EXPECT_EQ(data.back(), "[DONE]");
  std::vector<json::object> chunks;
  for (std::size_t i = 0; i + 1 < data.size(); ++i) chunks.push_back(json::parse(data[i]).as_object());
  for (const auto& c : chunks) {
    EXPECT_EQ(c.at("object"), chat ? "chat.completion.chunk" : "text_completion");
    EXPECT_EQ(c.at("id"), chunks.front().at("id"));
    EXPECT_EQ(c.at("model"), "toy");
    if (c.at("choices").as_array().empty()) continue;
    const auto& ch = c.at("choices").at(0);
    if (chat && ch.at("delta").as_object().contains("content")) *text += str(ch.at("delta").at("content"));
    if (!chat) *text += str(ch.at("text"));
  }
  return chunks;
}

TEST_F(Completions, ChatStreamSendsTheRoleFirstTheFinishLastThenUsageAndDone) {
  const std::string params = R"("max_tokens":12,"temperature":0)";
  const std::string whole = content(chat_ok(params));

  auto r = post("/v1/chat/completions", chat_body(params + R"(,"stream":true,"stream_options":{"include_usage":true})"));
  EXPECT_EQ(r.header("x-infergate-model"), "toy");
  EXPECT_EQ(r.header("x-infergate-tier"), "small");
  EXPECT_FALSE(r.header("x-ratelimit-remaining-requests").empty());
  std::string text;
  const auto chunks = stream_chunks(r, &text, true);
  ASSERT_GE(chunks.size(), 3u);
  EXPECT_EQ(chunks.front().at("choices").at(0).at("delta").at("role"), "assistant");
  EXPECT_TRUE(chunks.front().at("choices").at(0).at("finish_reason").is_null());
  // Every chunk but the last carries "usage": null; the last has no choices and the usage.
  for (std::size_t i = 0; i + 1 < chunks.size(); ++i) {
    EXPECT_TRUE(chunks[i].at("usage").is_null()) << json::serialize(chunks[i]);
    const bool finishing = i + 2 == chunks.size();
    EXPECT_EQ(chunks[i].at("choices").at(0).at("finish_reason").is_null(), !finishing) << json::serialize(chunks[i]);
  }
  EXPECT_EQ(chunks[chunks.size() - 2].at("choices").at(0).at("finish_reason"), "length");
  const auto& last = chunks.back();
  EXPECT_TRUE(last.at("choices").as_array().empty());
  const auto& u = last.at("usage");
  EXPECT_EQ(u.at("completion_tokens"), 12);
  EXPECT_EQ(u.at("total_tokens").as_int64(), u.at("prompt_tokens").as_int64() + 12);
  EXPECT_EQ(text, whole);  // the same greedy text as without streaming

  const auto row = backend.wait_ledger_row(r.header("x-request-id"));
  EXPECT_EQ(row.status, "completed");
  EXPECT_EQ(row.finish_reason, "length");
  EXPECT_EQ(row.prompt_tokens, u.at("prompt_tokens").as_int64());
  EXPECT_EQ(row.completion_tokens, 12);
}

// The same prompt again takes its leading blocks of keys and values from the prefix cache: the
// response says how many prompt tokens were served from it (OpenAI's
// usage.prompt_tokens_details.cached_tokens), the ledger meters the same number (billed at the
// cached_input price where one is set), and the output does not change.
TEST_F(Completions, ARepeatedPromptIsServedFromTheCacheReportedAndMetered) {
  const std::string params = R"("max_tokens":4,"temperature":0)";
  const std::string prompt = "Tell me a story about a lighthouse keeper who finds a message in a bottle.";
  auto first = post("/v1/chat/completions", chat_body(params, prompt));
  ASSERT_EQ(first.status, 200) << first.raw.body;
  const auto& u1 = first.body.at("usage");
  EXPECT_EQ(u1.at("prompt_tokens_details").at("cached_tokens"), 0);
  const std::int64_t prompt_tokens = u1.at("prompt_tokens").as_int64();
  ASSERT_GT(prompt_tokens, 16) << "the prompt must fill a KV block (16 positions) before its last";
  expect_ledger(first, "completed", "length");

  auto again = post("/v1/chat/completions", chat_body(params, prompt));
  ASSERT_EQ(again.status, 200) << again.raw.body;
  const auto& u2 = again.body.at("usage");
  EXPECT_EQ(u2.at("prompt_tokens").as_int64(), prompt_tokens);
  const std::int64_t cached = u2.at("prompt_tokens_details").at("cached_tokens").as_int64();
  // Whole blocks, never the block of the prompt's last token; none where the model runs on a GPU
  // (the prefix cache is the CPU backend's: the CUDA one computes every prompt in full).
  const bool on_gpu = server.count_in_log(R"("device":"cuda)") > 0;
  EXPECT_EQ(cached, on_gpu ? 0 : (prompt_tokens - 1) / 16 * 16);
  EXPECT_EQ(content(again), content(first));
  expect_ledger(again, "completed", "length");

  auto streamed = post("/v1/chat/completions",
                       chat_body(params + R"(,"stream":true,"stream_options":{"include_usage":true})", prompt));
  ASSERT_EQ(streamed.status, 200) << streamed.raw.body;
  std::string streamed_text;
  const auto chunks = stream_chunks(streamed, &streamed_text, true);
  EXPECT_EQ(streamed_text, content(first));
  ASSERT_FALSE(chunks.empty());
  EXPECT_EQ(chunks.back().at("usage").at("prompt_tokens_details").at("cached_tokens").as_int64(), cached);
  EXPECT_EQ(backend.wait_ledger_row(streamed.header("x-request-id")).cached_tokens, cached);
}

TEST_F(Completions, CompletionsStreamWithoutUsageUnlessAsked) {
  const std::string params = R"("max_tokens":10,"temperature":0)";
  auto whole = post("/v1/completions", completion_body(params));
  ASSERT_EQ(whole.status, 200) << whole.raw.body;

  auto r = post("/v1/completions", completion_body(params + R"(,"stream":true)"));
  std::string text;
  const auto chunks = stream_chunks(r, &text, false);
  ASSERT_GE(chunks.size(), 2u);
  for (const auto& c : chunks) EXPECT_FALSE(c.contains("usage")) << json::serialize(c);
  EXPECT_EQ(chunks.back().at("choices").at(0).at("finish_reason"), "length");
  EXPECT_EQ(text, str(whole.body.at("choices").at(0).at("text")));
  const auto row = backend.wait_ledger_row(r.header("x-request-id"));
  EXPECT_EQ(row.status, "completed");
  EXPECT_EQ(row.completion_tokens, 10);
}

// The longest printable-ASCII run of `s` (the toy model also emits raw bytes).
std::string longest_ascii_run(const std::string& s) {
  std::string best, cur;
  for (char c : s) {
    if (c >= 'a' && c <= 'z') {
      cur += c;
      if (cur.size() > best.size()) best = cur;
    } else {
      cur.clear();
    }
  }
  return best;
}

TEST_F(Completions, StopSequenceEndsWithStopAndCutsTheText) {
  const std::string params = R"("max_tokens":60,"temperature":0)";
  const std::string whole = content(chat_ok(params));
  const std::string word = longest_ascii_run(whole);
  ASSERT_GE(word.size(), 2u) << "no letters in: " << whole;
  const std::string stop = word.substr(0, 2);
  const std::size_t at = whole.find(stop);
  ASSERT_NE(at, std::string::npos);

  auto r = chat_ok(params + R"(,"stop":["\u0001\u0002\u0003",)" + json::serialize(json::value(stop)) + "]");
  EXPECT_EQ(r.body.at("choices").at(0).at("finish_reason"), "stop");
  EXPECT_EQ(content(r), whole.substr(0, at));
  EXPECT_LT(r.body.at("usage").at("completion_tokens").as_int64(), 60);
  expect_ledger(r, "completed", "stop");
}

// Text held back because it could begin a stop sequence is sent when generation ends for another
// reason; it must be sent once, streaming or not.
TEST_F(Completions, HeldBackStopPrefixIsSentOnce) {
  int checked = 0;
  for (const int max_tokens : {5, 9, 14, 20}) {
    SCOPED_TRACE("max_tokens " + std::to_string(max_tokens));
    const std::string params = R"("max_tokens":)" + std::to_string(max_tokens) + R"(,"temperature":0)";
    auto plain = post("/v1/completions", completion_body(params));
    ASSERT_EQ(plain.status, 200) << plain.raw.body;
    const std::string whole = str(plain.body.at("choices").at(0).at("text"));
    ASSERT_FALSE(whole.empty());
    // A stop sequence that begins with the text's last byte and never completes: the last byte
    // is held back to the end.
    const unsigned char lastc = static_cast<unsigned char>(whole.back());
    if (lastc >= 0x80) continue;  // part of a multi-byte character: not a valid stop string
    const std::string stop = std::string(1, static_cast<char>(lastc)) + "\x01\x02\x03";
    const std::string stop_json = json::serialize(json::value(stop));

    ++checked;
    auto held = post("/v1/completions", completion_body(params + R"(,"stop":)" + stop_json));
    ASSERT_EQ(held.status, 200) << held.raw.body;
    EXPECT_EQ(str(held.body.at("choices").at(0).at("text")), whole);

    auto streamed = post("/v1/completions", completion_body(params + R"(,"stream":true,"stop":)" + stop_json));
    std::string text;
    stream_chunks(streamed, &text, false);
    EXPECT_EQ(text, whole);

    auto chat_plain = post("/v1/chat/completions", chat_body(params));
    const std::string chat_whole = content(chat_plain);
    if (chat_whole.empty() || static_cast<unsigned char>(chat_whole.back()) >= 0x80) continue;
    const std::string chat_stop = json::serialize(json::value(std::string(1, chat_whole.back()) + "\x01\x02\x03"));
    EXPECT_EQ(content(chat_ok(params + R"(,"stop":)" + chat_stop)), chat_whole);
    auto chat_streamed = post("/v1/chat/completions", chat_body(params + R"(,"stream":true,"stop":)" + chat_stop));
    text.clear();
    stream_chunks(chat_streamed, &text, true);
    EXPECT_EQ(text, chat_whole);
  }
  EXPECT_GE(checked, 1) << "every text ended inside a multi-byte character; pick other lengths";
}

TEST_F(Completions, SameSeedSameTextDifferentSeedsDiffer) {
  auto text = [&](int seed) {
    return content(chat_ok(R"("max_tokens":16,"temperature":0.9,"seed":)" + std::to_string(seed)));
  };
  const std::string a = text(7);
  EXPECT_EQ(text(7), a);
  EXPECT_EQ(text(7), a);
  const std::string b = text(8), c = text(9);
  EXPECT_FALSE(a == b && b == c) << "three seeds gave the same text: " << a;
}

TEST_F(Completions, BadInputsAreClear4xxAndNothingIsMeteredAsCompleted) {
  test::Tenant medium_only = backend.tenant("medium-only", {"--tiers", "medium"});
  std::string long_prompt;
  for (int i = 0; i < 700; ++i) long_prompt += "word ";

  struct Case {
    const char* what;
    std::string path, key, body;
    int status;
    std::string code, param, message_part;
  };
  const std::string chat = "/v1/chat/completions", cmpl = "/v1/completions";
  const std::vector<Case> cases = {
      {"malformed JSON", chat, acme.key, R"({"model":"toy","messages":[)", 400, "invalid_value", "",
       "The body is not valid JSON"},
      {"not an object", chat, acme.key, R"(["toy"])", 400, "invalid_value", "", "must be a JSON object"},
      {"max_tokens a string", chat, acme.key, chat_body(R"("max_tokens":"8")"), 400, "invalid_value", "max_tokens",
       "'max_tokens' must be an integer."},
      {"temperature a string", cmpl, acme.key, completion_body(R"("temperature":"hot")"), 400, "invalid_value",
       "temperature", "'temperature' must be a number."},
      {"messages a string", chat, acme.key, R"({"model":"toy","messages":"hi"})", 400, "invalid_value", "messages",
       "non-empty array"},
      {"empty messages", chat, acme.key, R"({"model":"toy","messages":[]})", 400, "invalid_value", "messages",
       "non-empty array"},
      {"n = 2", chat, acme.key, chat_body(R"("n":2)"), 400, "invalid_value", "n", "Only n = 1"},
      {"max_tokens beyond any context", chat, acme.key, chat_body(R"("max_tokens":100000)"), 400,
       "context_length_exceeded", "max_tokens", "has a context of 512 tokens"},
      {"max_tokens beyond the API's range", chat, acme.key, chat_body(R"("max_tokens":1000000000000)"), 400,
       "invalid_value", "max_tokens", "must be between 1 and"},
      {"prompt over the context", cmpl, acme.key, completion_body("", long_prompt), 400, "context_length_exceeded",
       "prompt", "has a context of 512 tokens, but the request needs"},
      {"chat over the context", chat, acme.key, chat_body("", long_prompt), 400, "context_length_exceeded",
       "messages", " in the prompt, 1 to generate"},
      {"unknown model", chat, acme.key, chat_body("", "hi", "gpt-4o"), 404, "model_not_found", "model",
       "The model 'gpt-4o' does not exist"},
      {"tier not in the plan", chat, medium_only.key, chat_body(R"("max_tokens":2)"), 403, "model_not_allowed",
       "model", "in tier 'small', which your plan does not include"},
      {"no key", chat, "", chat_body(R"("max_tokens":2)"), 401, "invalid_api_key", "", ""},
      {"bad key", chat, "ig_live_0123456789abcdef_" + std::string(48, '0'), chat_body(R"("max_tokens":2)"), 401,
       "invalid_api_key", "", ""},
      {"not an API key", cmpl, "sk-not-ours", completion_body(R"("max_tokens":2)"), 401, "invalid_api_key", "", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto r = test::post_json(server.port(), c.path, c.key, c.body);
    EXPECT_EQ(r.status, c.status) << r.raw.body;
    EXPECT_EQ(r.error_code(), c.code) << r.raw.body;
    EXPECT_EQ(r.error_param(), c.param) << r.raw.body;
    if (c.param.empty() && r.body.is_object()) {  // about the body as a whole: null, as OpenAI sends
      EXPECT_TRUE(r.body.at("error").at("param").is_null()) << r.raw.body;
    }
    if (!c.message_part.empty()) {
      ASSERT_TRUE(r.body.is_object()) << r.raw.body;
      EXPECT_NE(str(r.body.at("error").at("message")).find(c.message_part), std::string::npos) << r.raw.body;
    }
    EXPECT_EQ(backend.ledger_rows(r.header("x-request-id")).size(), 0u);
  }
  // The ledger writer moves records in order: once a later request is there, so is every earlier one.
  auto sentinel = chat_ok(R"("max_tokens":1)");
  backend.wait_ledger_row(sentinel.header("x-request-id"));
  EXPECT_EQ(backend.count("SELECT count(*) FROM usage_events"), 1);
  EXPECT_EQ(backend.count("SELECT count(*) FROM usage_events WHERE status = 'completed'"), 1);
}

TEST_F(Completions, RateLimitedRequestGets429WithRetryAfterAndHeaders) {
  // Clear of a minute boundary, where the per-minute window starts anew.
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count() % 60000;
  if (ms > 57000) std::this_thread::sleep_for(std::chrono::milliseconds(60200 - ms));
  test::Tenant slowpoke = backend.tenant("slowpoke", {"--requests-per-minute", "1"});
  auto first = test::post_json(server.port(), "/v1/chat/completions", slowpoke.key, chat_body(R"("max_tokens":2)"));
  ASSERT_EQ(first.status, 200) << first.raw.body;
  EXPECT_EQ(first.header("x-ratelimit-limit-requests"), "1");
  EXPECT_EQ(first.header("x-ratelimit-remaining-requests"), "0");

  auto r = test::post_json(server.port(), "/v1/chat/completions", slowpoke.key, chat_body(R"("max_tokens":2)"));
  ASSERT_EQ(r.status, 429) << r.raw.body;
  EXPECT_EQ(r.error_code(), "rate_limit_exceeded");
  EXPECT_EQ(r.body.at("error").at("type"), "requests");
  const int retry = std::stoi(r.header("retry-after"));
  EXPECT_GE(retry, 1);
  EXPECT_LE(retry, 60);
  EXPECT_EQ(r.header("x-ratelimit-limit-requests"), "1");
  EXPECT_EQ(r.header("x-ratelimit-remaining-requests"), "0");
  EXPECT_FALSE(r.header("x-ratelimit-reset-requests").empty());

  // The refusal is metered as refused, with no tokens; the first request as completed.
  const auto row = backend.wait_ledger_row(r.header("x-request-id"));
  EXPECT_EQ(row.status, "refused");
  EXPECT_EQ(row.prompt_tokens + row.completion_tokens, 0);
  EXPECT_EQ(backend.wait_ledger_row(first.header("x-request-id")).status, "completed");
}

// A request without max_tokens reserves prompt + the default (admission.default_max_tokens,
// 1024) only where that fits the tenant's tokens-per-minute limit; below it, the default is cut
// to what the limit leaves (docs: config admission.default_max_tokens). It used to be reserved in
// full, so every such request of a tenant with a small limit was refused with 429.
TEST_F(Completions, WithoutMaxTokensTheReservationFitsASmallTokensPerMinuteLimit) {
  test::wait_clear_of_minute_boundary();
  test::Tenant small = backend.tenant("small-tpm", {"--tokens-per-minute", "300"});
  auto r = test::post_json(server.port(), "/v1/chat/completions", small.key, chat_body(R"("temperature":0)"));
  ASSERT_EQ(r.status, 200) << r.raw.body;
  const std::int64_t prompt = r.body.at("usage").at("prompt_tokens").as_int64();
  EXPECT_LE(prompt + r.body.at("usage").at("completion_tokens").as_int64(), 300);
  EXPECT_EQ(r.header("x-ratelimit-limit-tokens"), "300");
  // An explicit max_tokens is the caller's: over the limit, it is refused.
  r = test::post_json(server.port(), "/v1/chat/completions", small.key, chat_body(R"("max_tokens":400)"));
  EXPECT_EQ(r.status, 429) << r.raw.body;
}

// Two models, small and medium; tenants see only their plan's tiers.
TEST(CompletionsModels, ListIsTheTenantsAllowedTiersWithTheirTier) {
  test::Backend backend;
  const auto small_only = backend.tenant("small-only", {"--tiers", "small"});
  const auto everything = backend.tenant("everything");
  test::ServerProcess server(backend.config(), {},
                             test::models_toml({{"toy-m", test::model_file("toy", 2), "medium"},
                                                {"toy-s", test::model_file("toy", 1), "small"}}));
  auto ids = [&](const test::Tenant& t) {
    auto r = test::get_json(server.port(), "/v1/models", t.key);
    EXPECT_EQ(r.status, 200) << r.raw.body;
    EXPECT_EQ(r.body.at("object"), "list");
    std::vector<std::string> out;
    for (const auto& m : r.body.at("data").as_array()) {
      EXPECT_EQ(m.at("object"), "model");
      out.push_back(str(m.at("id")) + ":" + str(m.at("tier")));
    }
    return out;
  };
  EXPECT_EQ(ids(small_only), std::vector<std::string>{"toy-s:small"});
  EXPECT_EQ(ids(everything), (std::vector<std::string>{"toy-s:small", "toy-m:medium"}));
  // And what is listed is what may be used.
  auto r = test::post_json(server.port(), "/v1/chat/completions", small_only.key,
                           chat_body(R"("max_tokens":1)", "hi", "toy-m"));
  EXPECT_EQ(r.status, 403) << r.raw.body;
  r = test::post_json(server.port(), "/v1/chat/completions", small_only.key,
                      chat_body(R"("max_tokens":1)", "hi", "auto"));
  EXPECT_EQ(r.status, 200) << r.raw.body;
  EXPECT_EQ(r.header("x-infergate-model"), "toy-s");
}

}  // namespace
}  // namespace infergate
