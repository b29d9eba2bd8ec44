// The bodies of /v1/chat/completions and /v1/completions: every field's accepted values, and for
// each wrong one the BadInput's `param` and message (the 400 a client sees).
#include "infergate/gateway/openai_request.h"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace infergate::gateway {
namespace {

namespace json = boost::json;

json::object obj(const std::string& text) { return json::parse(text).as_object(); }

// A chat body: `fields` (a JSON object's members, without braces) after a valid model and messages.
std::string chat(const std::string& fields = "") {
  return R"({"model":"toy","messages":[{"role":"user","content":"hi"}])" +
         (fields.empty() ? "" : "," + fields) + "}";
}
std::string completion(const std::string& fields = "") {
  return R"({"model":"toy","prompt":"once")" + (fields.empty() ? "" : "," + fields) + "}";
}

struct Refusal {
  std::string param;
  std::string message;
};

// Parses `body`, expecting BadInput.
Refusal refusal(const std::string& body, bool is_chat = true) {
  try {
    if (is_chat) {
      parse_chat_request(obj(body));
    } else {
      parse_completion_request(obj(body));
    }
  } catch (const BadInput& e) {
    return {e.param(), e.what()};
  }
  ADD_FAILURE() << "accepted: " << body;
  return {};
}

struct BadCase {
  const char* what;
  std::string body;
  std::string param;
  std::string message;
};

void expect_refusals(const std::vector<BadCase>& cases, bool is_chat) {
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    const Refusal r = refusal(c.body, is_chat);
    EXPECT_EQ(r.param, c.param) << c.body;
    EXPECT_EQ(r.message, c.message) << c.body;
  }
}

TEST(OpenAiChatRequest, MinimalBodyGetsTheDefaults) {
  const auto p = parse_chat_request(obj(chat()));
  EXPECT_TRUE(p.chat);
  EXPECT_EQ(p.model, "toy");
  ASSERT_EQ(p.messages.size(), 1u);
  EXPECT_EQ(p.messages[0].role, "user");
  EXPECT_EQ(p.messages[0].content, "hi");
  EXPECT_FALSE(p.max_tokens);
  EXPECT_EQ(p.temperature, 1.0f);
  EXPECT_EQ(p.top_p, 1.0f);
  EXPECT_EQ(p.top_k, 0);
  EXPECT_FALSE(p.seed);
  EXPECT_TRUE(p.stop.empty());
  EXPECT_FALSE(p.stream);
  EXPECT_FALSE(p.include_usage);
  EXPECT_EQ(p.user, "");
}

TEST(OpenAiChatRequest, EveryFieldAtGoodValues) {
  const auto p = parse_chat_request(obj(chat(
      R"("max_tokens":7,"temperature":0.5,"top_p":0.25,"top_k":40,"seed":42,"stop":["a","bc"],)"
      R"("stream":true,"stream_options":{"include_usage":true},"user":"u-1")")));
  EXPECT_EQ(p.max_tokens, 7);
  EXPECT_FLOAT_EQ(p.temperature, 0.5f);
  EXPECT_FLOAT_EQ(p.top_p, 0.25f);
  EXPECT_EQ(p.top_k, 40);
  EXPECT_EQ(p.seed, 42u);
  EXPECT_EQ(p.stop, (std::vector<std::string>{"a", "bc"}));
  EXPECT_TRUE(p.stream);
  EXPECT_TRUE(p.include_usage);
  EXPECT_EQ(p.user, "u-1");
}

TEST(OpenAiChatRequest, BoundaryAndAlternativeGoodValues) {
  EXPECT_EQ(parse_chat_request(obj(chat(R"("max_completion_tokens":3)"))).max_tokens, 3);
  EXPECT_EQ(parse_chat_request(obj(chat(R"("max_tokens":1)"))).max_tokens, 1);
  EXPECT_EQ(parse_chat_request(obj(chat(R"("max_tokens":2147483648)"))).max_tokens,
            std::int64_t{2147483648});
  EXPECT_EQ(parse_chat_request(obj(chat(R"("temperature":0)"))).temperature, 0.0f);
  EXPECT_EQ(parse_chat_request(obj(chat(R"("temperature":2)"))).temperature, 2.0f);
  EXPECT_EQ(parse_chat_request(obj(chat(R"("top_p":1)"))).top_p, 1.0f);
  EXPECT_EQ(parse_chat_request(obj(chat(R"("top_k":0)"))).top_k, 0);
  EXPECT_EQ(parse_chat_request(obj(chat(R"("seed":-1)"))).seed, ~std::uint64_t{0});
  EXPECT_EQ(parse_chat_request(obj(chat(R"("seed":18446744073709551615)"))).seed, ~std::uint64_t{0});
  EXPECT_EQ(parse_chat_request(obj(chat(R"("stop":"END")"))).stop, std::vector<std::string>{"END"});
  EXPECT_TRUE(parse_chat_request(obj(chat(R"("stop":[])"))).stop.empty());
  EXPECT_EQ(parse_chat_request(obj(chat(R"("stop":["a","b","c","d"])"))).stop.size(), 4u);
  // include_usage false, and stream_options as an empty object.
  EXPECT_FALSE(parse_chat_request(obj(chat(R"("stream":true,"stream_options":{"include_usage":false})"))).include_usage);
  EXPECT_FALSE(parse_chat_request(obj(chat(R"("stream":true,"stream_options":{})"))).include_usage);
  EXPECT_FALSE(parse_chat_request(obj(chat(R"("stream":false)"))).stream);
}

TEST(OpenAiChatRequest, NullMeansAbsent) {
  const auto p = parse_chat_request(obj(chat(
      R"("max_tokens":null,"temperature":null,"top_p":null,"seed":null,"stop":null,"stream":null,)"
      R"("stream_options":null,"user":null,"n":null,"tools":null,"logprobs":null)")));
  EXPECT_FALSE(p.max_tokens);
  EXPECT_EQ(p.temperature, 1.0f);
  EXPECT_FALSE(p.stream);
}

TEST(OpenAiChatRequest, NeutralValuesOfUnsupportedParametersAreAccepted) {
  const auto p = parse_chat_request(obj(chat(
      R"("n":1,"presence_penalty":0,"frequency_penalty":0.0,"logit_bias":{},"logprobs":false,)"
      R"("metadata":{"a":"b"},"store":false,"service_tier":"auto")")));
  EXPECT_EQ(p.model, "toy");
}

TEST(OpenAiChatRequest, Messages) {
  const auto p = parse_chat_request(obj(R"({"model":"m","messages":[
      {"role":"system","content":"be brief"},
      {"role":"developer","content":"dev"},
      {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],"name":"bob"},
      {"role":"assistant","content":""}]})"));
  ASSERT_EQ(p.messages.size(), 4u);
  EXPECT_EQ(p.messages[0].role, "system");
  EXPECT_EQ(p.messages[1].role, "system");  // developer is the system role of newer models
  EXPECT_EQ(p.messages[1].content, "dev");
  EXPECT_EQ(p.messages[2].role, "user");
  EXPECT_EQ(p.messages[2].content, "ab");  // text parts joined
  EXPECT_EQ(p.messages[3].role, "assistant");
  EXPECT_EQ(p.messages[3].content, "");
}

TEST(OpenAiChatRequest, ModelAndMessagesRefused) {
  expect_refusals(
      {
          {"missing model", R"({"messages":[{"role":"user","content":"hi"}]})", "model",
           "'model' is required: a model name, a tier, or \"auto\"."},
          {"null model", R"({"model":null,"messages":[{"role":"user","content":"hi"}]})", "model",
           "'model' is required: a model name, a tier, or \"auto\"."},
          {"empty model", R"({"model":"","messages":[{"role":"user","content":"hi"}]})", "model",
           "'model' must not be empty."},
          {"model not a string", R"({"model":7,"messages":[{"role":"user","content":"hi"}]})", "model",
           "'model' must be a string."},
          {"missing messages", R"({"model":"toy"})", "messages",
           "'messages' is required: a non-empty array of {role, content}."},
          {"empty messages", R"({"model":"toy","messages":[]})", "messages",
           "'messages' must be a non-empty array of {role, content}."},
          {"messages an object", R"({"model":"toy","messages":{"role":"user","content":"hi"}})", "messages",
           "'messages' must be a non-empty array of {role, content}."},
          {"message not an object", R"({"model":"toy","messages":["hi"]})", "messages[0]",
           "messages[0] must be an object with 'role' and 'content'."},
          {"missing role", R"({"model":"toy","messages":[{"content":"hi"}]})", "messages[0].role",
           "messages[0].role must be a string."},
          {"role not a string", R"({"model":"toy","messages":[{"role":1,"content":"hi"}]})", "messages[0].role",
           "messages[0].role must be a string."},
          {"tool role", R"({"model":"toy","messages":[{"role":"user","content":"a"},{"role":"tool","content":"x"}]})",
           "messages[1].role", "messages[1].role 'tool' is not supported (system, developer, user, assistant)."},
          {"unknown role", R"({"model":"toy","messages":[{"role":"robot","content":"hi"}]})", "messages[0].role",
           "messages[0].role 'robot' is not supported (system, developer, user, assistant)."},
          {"missing content", R"({"model":"toy","messages":[{"role":"user"}]})", "messages[0].content",
           "messages[0].content is required."},
          {"null content", R"({"model":"toy","messages":[{"role":"user","content":null}]})", "messages[0].content",
           "messages[0].content is required."},
          {"content a number", R"({"model":"toy","messages":[{"role":"user","content":5}]})", "messages[0].content",
           "messages[0].content must be a string or an array of text parts."},
          {"image part", R"({"model":"toy","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]})",
           "messages[0].content",
           "messages[0].content parts must be {\"type\": \"text\", \"text\": ...} (only text is supported)."},
          {"part without text", R"({"model":"toy","messages":[{"role":"user","content":[{"type":"text"}]}]})",
           "messages[0].content",
           "messages[0].content parts must be {\"type\": \"text\", \"text\": ...} (only text is supported)."},
          {"part text a number", R"({"model":"toy","messages":[{"role":"user","content":[{"type":"text","text":1}]}]})",
           "messages[0].content",
           "messages[0].content parts must be {\"type\": \"text\", \"text\": ...} (only text is supported)."},
          {"part a string", R"({"model":"toy","messages":[{"role":"user","content":["hi"]}]})", "messages[0].content",
           "messages[0].content parts must be {\"type\": \"text\", \"text\": ...} (only text is supported)."},
          {"tool_calls in a message",
           R"({"model":"toy","messages":[{"role":"assistant","content":"x","tool_calls":[]}]})",
           "messages[0].tool_calls",
           "messages[0].tool_calls is not supported (text messages only: role, content, name)."},
      },
      true);
}

TEST(OpenAiChatRequest, SamplingParametersRefused) {
  expect_refusals(
      {
          {"max_tokens 0", chat(R"("max_tokens":0)"), "max_tokens", "'max_tokens' must be between 1 and 2147483648."},
          {"max_tokens negative", chat(R"("max_tokens":-5)"), "max_tokens",
           "'max_tokens' must be between 1 and 2147483648."},
          {"max_tokens huge", chat(R"("max_tokens":1000000000000)"), "max_tokens",
           "'max_tokens' must be between 1 and 2147483648."},
          {"max_tokens beyond int64", chat(R"("max_tokens":18446744073709551615)"), "max_tokens",
           "'max_tokens' must be between 1 and 2147483648."},
          {"max_tokens a string", chat(R"("max_tokens":"10")"), "max_tokens", "'max_tokens' must be an integer."},
          {"max_tokens fractional", chat(R"("max_tokens":1.5)"), "max_tokens", "'max_tokens' must be an integer."},
          {"max_completion_tokens 0", chat(R"("max_completion_tokens":0)"), "max_completion_tokens",
           "'max_completion_tokens' must be between 1 and 2147483648."},
          {"both token limits", chat(R"("max_tokens":5,"max_completion_tokens":5)"), "max_tokens",
           "Give either 'max_tokens' or 'max_completion_tokens', not both."},
          {"temperature a string", chat(R"("temperature":"hot")"), "temperature", "'temperature' must be a number."},
          {"temperature bool", chat(R"("temperature":true)"), "temperature", "'temperature' must be a number."},
          {"temperature above 2", chat(R"("temperature":2.5)"), "temperature", "'temperature' must be between 0 and 2."},
          {"temperature negative", chat(R"("temperature":-0.1)"), "temperature", "'temperature' must be between 0 and 2."},
          {"top_p 0", chat(R"("top_p":0)"), "top_p", "'top_p' must be greater than 0 and at most 1."},
          {"top_p above 1", chat(R"("top_p":1.01)"), "top_p", "'top_p' must be between 0 and 1."},
          {"top_p a string", chat(R"("top_p":"all")"), "top_p", "'top_p' must be a number."},
          {"top_k negative", chat(R"("top_k":-1)"), "top_k", "'top_k' must be between 0 and 1048576."},
          {"top_k fractional", chat(R"("top_k":2.5)"), "top_k", "'top_k' must be an integer."},
          {"seed fractional", chat(R"("seed":1.5)"), "seed", "'seed' must be an integer."},
          {"seed a string", chat(R"("seed":"42")"), "seed", "'seed' must be an integer."},
          {"stop a number", chat(R"("stop":5)"), "stop", "'stop' must be a string or an array of strings."},
          {"stop with a number", chat(R"("stop":["a",5])"), "stop", "'stop' must be a string or an array of strings."},
          {"stop five", chat(R"("stop":["a","b","c","d","e"])"), "stop", "'stop' takes at most 4 sequences."},
          {"stop empty string", chat(R"("stop":"")"), "stop", "Stop sequences must not be empty."},
          {"stop with an empty one", chat(R"("stop":["a",""])"), "stop", "Stop sequences must not be empty."},
          {"stream a string", chat(R"("stream":"yes")"), "stream", "'stream' must be true or false."},
          {"stream_options without stream", chat(R"("stream_options":{"include_usage":true})"), "stream_options",
           "'stream_options' is only allowed when 'stream' is true."},
          {"stream_options with stream false", chat(R"("stream":false,"stream_options":{"include_usage":true})"),
           "stream_options", "'stream_options' is only allowed when 'stream' is true."},
          {"stream_options not an object", chat(R"("stream":true,"stream_options":true)"), "stream_options",
           "'stream_options' must be an object."},
          {"include_usage a string", chat(R"("stream":true,"stream_options":{"include_usage":"yes"})"),
           "stream_options.include_usage", "'stream_options.include_usage' must be true or false."},
          {"unknown stream option", chat(R"("stream":true,"stream_options":{"chunk_size":3})"),
           "stream_options.chunk_size", "Unrecognized request argument supplied: stream_options.chunk_size."},
          {"user a number", chat(R"("user":5)"), "user", "'user' must be a string."},
      },
      true);
}

TEST(OpenAiChatRequest, UnknownAndUnsupportedParametersRefused) {
  expect_refusals(
      {
          {"unknown", chat(R"("temprature":0.5)"), "temprature", "Unrecognized request argument supplied: temprature."},
          {"prompt in a chat request", chat(R"("prompt":"x")"), "prompt",
           "Unrecognized request argument supplied: prompt."},
          {"n 2", chat(R"("n":2)"), "n", "Only n = 1 is supported: one completion per request."},
          {"n 0", chat(R"("n":0)"), "n", "Only n = 1 is supported: one completion per request."},
          {"tools", chat(R"("tools":[{"type":"function","function":{"name":"f"}}])"), "tools",
           "'tools' is not supported by this server."},
          {"empty tools", chat(R"("tools":[])"), "tools", "'tools' is not supported by this server."},
          {"tool_choice", chat(R"("tool_choice":"auto")"), "tool_choice", "'tool_choice' is not supported by this server."},
          {"functions", chat(R"("functions":[])"), "functions", "'functions' is not supported by this server."},
          {"response_format", chat(R"("response_format":{"type":"json_object"})"), "response_format",
           "'response_format' is not supported by this server."},
          {"logprobs true", chat(R"("logprobs":true)"), "logprobs", "'logprobs' is not supported."},
          {"top_logprobs", chat(R"("top_logprobs":2)"), "top_logprobs", "'top_logprobs' is not supported by this server."},
          {"presence_penalty", chat(R"("presence_penalty":0.5)"), "presence_penalty",
           "'presence_penalty' is not supported (only 0)."},
          {"frequency_penalty", chat(R"("frequency_penalty":-1)"), "frequency_penalty",
           "'frequency_penalty' is not supported (only 0)."},
          {"penalty out of range", chat(R"("presence_penalty":3)"), "presence_penalty",
           "'presence_penalty' must be between -2 and 2."},
          {"logit_bias", chat(R"("logit_bias":{"50":10})"), "logit_bias", "'logit_bias' is not supported."},
          {"parallel_tool_calls", chat(R"("parallel_tool_calls":false)"), "parallel_tool_calls",
           "'parallel_tool_calls' is not supported by this server."},
      },
      true);
}

TEST(OpenAiCompletionRequest, Prompt) {
  auto p = parse_completion_request(obj(completion(R"("max_tokens":4,"stop":"\n")")));
  EXPECT_FALSE(p.chat);
  EXPECT_EQ(p.prompt, "once");
  EXPECT_TRUE(p.messages.empty());
  EXPECT_EQ(p.max_tokens, 4);
  EXPECT_EQ(p.stop, std::vector<std::string>{"\n"});
  p = parse_completion_request(obj(R"({"model":"toy","prompt":["upon"]})"));
  EXPECT_EQ(p.prompt, "upon");
}

TEST(OpenAiCompletionRequest, Refused) {
  expect_refusals(
      {
          {"missing prompt", R"({"model":"toy"})", "prompt", "'prompt' is required: a string."},
          {"empty prompt", R"({"model":"toy","prompt":""})", "prompt", "'prompt' must not be empty."},
          {"prompt a number", R"({"model":"toy","prompt":3})", "prompt",
           "'prompt' must be a string (or an array holding exactly one string)."},
          {"prompt token ids", R"({"model":"toy","prompt":[1,2,3]})", "prompt",
           "'prompt' must be a string (or an array holding exactly one string)."},
          {"two prompts", R"({"model":"toy","prompt":["a","b"]})", "prompt",
           "'prompt' must be a string (or an array holding exactly one string)."},
          {"messages in a completion request", completion(R"("messages":[])"), "messages",
           "Unrecognized request argument supplied: messages."},
          {"missing model", R"({"prompt":"x"})", "model", "'model' is required: a model name, a tier, or \"auto\"."},
          {"n 3", completion(R"("n":3)"), "n", "Only n = 1 is supported: one completion per request."},
          {"logprobs as a count", completion(R"("logprobs":2)"), "logprobs", "'logprobs' is not supported."},
          {"echo", completion(R"("echo":true)"), "echo", "'echo' is not supported by this server."},
          {"best_of", completion(R"("best_of":2)"), "best_of", "'best_of' is not supported by this server."},
          {"suffix", completion(R"("suffix":"end")"), "suffix", "'suffix' is not supported by this server."},
          {"stream_options without stream", completion(R"("stream_options":{"include_usage":true})"),
           "stream_options", "'stream_options' is only allowed when 'stream' is true."},
          {"max_tokens a string", completion(R"("max_tokens":"5")"), "max_tokens", "'max_tokens' must be an integer."},
      },
      false);
}

}  // namespace
}  // namespace infergate::gateway
