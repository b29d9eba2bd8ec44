// The bodies of POST /v1/chat/completions and /v1/completions, read and checked field by field.
// Every problem is a BadInput naming the parameter: a wrong type or range, a missing field, and
// any parameter infergate does not implement (n > 1, tools, logprobs, penalties, ...), so a
// request never silently gets different output than it asked for. Pure functions.
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "infergate/engine/chat_template.h"
#include "infergate/gateway/json_input.h"

namespace infergate::gateway {

struct CompletionParams {
  bool chat = true;
  std::string model;
  std::vector<engine::ChatMessage> messages;  // chat
  std::string prompt;                         // completions
  std::optional<std::int64_t> max_tokens;     // max_tokens or max_completion_tokens
  float temperature = 1.0f;
  float top_p = 1.0f;
  std::int32_t top_k = 0;
  std::optional<std::uint64_t> seed;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::string user;
};

CompletionParams parse_chat_request(const boost::json::object& body);
CompletionParams parse_completion_request(const boost::json::object& body);

}  // namespace infergate::gateway
