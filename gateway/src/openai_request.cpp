#include "infergate/gateway/openai_request.h"

#include <boost/json/value.hpp>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <string_view>

namespace infergate::gateway {

namespace json = boost::json;

namespace {

const json::value* field(const json::object& o, const char* name) {
  const auto* v = o.if_contains(name);
  return v == nullptr || v->is_null() ? nullptr : v;
}

double number(const json::object& o, const char* name, double min, double max) {
  const auto* v = field(o, name);
  if (v->is_int64()) {
    const auto d = static_cast<double>(v->as_int64());
    if (d >= min && d <= max) return d;
  } else if (v->is_uint64()) {
    const auto d = static_cast<double>(v->as_uint64());
    if (d >= min && d <= max) return d;
  } else if (v->is_double()) {
    const double d = v->as_double();
    if (std::isfinite(d) && d >= min && d <= max) return d;
  } else {
    throw BadInput(name, std::string("'") + name + "' must be a number.");
  }
  char buf[96];
  std::snprintf(buf, sizeof buf, "'%s' must be between %g and %g.", name, min, max);
  throw BadInput(name, buf);
}

std::int64_t integer(const json::object& o, const char* name, std::int64_t min, std::int64_t max) {
  const auto* v = field(o, name);
  std::int64_t i = 0;
  if (v->is_int64()) {
    i = v->as_int64();
  } else if (v->is_uint64() && v->as_uint64() <= static_cast<std::uint64_t>(max)) {
    i = static_cast<std::int64_t>(v->as_uint64());
  } else if (v->is_uint64()) {  // beyond int64: out of any range we accept
    throw BadInput(name, std::string("'") + name + "' must be between " + std::to_string(min) + " and " + std::to_string(max) + ".");
  } else {
    throw BadInput(name, std::string("'") + name + "' must be an integer.");
  }
  if (i < min || i > max) {
    throw BadInput(name, std::string("'") + name + "' must be between " + std::to_string(min) + " and " + std::to_string(max) + ".");
  }
  return i;
}

bool boolean(const json::object& o, const char* name) {
  const auto* v = field(o, name);
  if (!v->is_bool()) throw BadInput(name, std::string("'") + name + "' must be true or false.");
  return v->as_bool();
}

std::string string(const json::object& o, const char* name) {
  const auto* v = field(o, name);
  if (!v->is_string()) throw BadInput(name, std::string("'") + name + "' must be a string.");
  return std::string(v->as_string());
}

// Parameters of the OpenAI API that infergate does not implement. Sending them with a value
// that would change the output is refused; their neutral values are accepted.
void refuse_unsupported(const json::object& o) {
  if (const auto* v = field(o, "n")) {
    if (!(v->is_int64() && v->as_int64() == 1)) throw BadInput("n", "Only n = 1 is supported: one completion per request.");
  }
  for (const char* p : {"presence_penalty", "frequency_penalty"}) {
    if (field(o, p) != nullptr && number(o, p, -2.0, 2.0) != 0.0) {
      throw BadInput(p, std::string("'") + p + "' is not supported (only 0).");
    }
  }
  if (const auto* v = field(o, "logit_bias"); v != nullptr && !(v->is_object() && v->as_object().empty())) {
    throw BadInput("logit_bias", "'logit_bias' is not supported.");
  }
  if (const auto* v = field(o, "logprobs"); v != nullptr && !(v->is_bool() && !v->as_bool())) {
    throw BadInput("logprobs", "'logprobs' is not supported.");
  }
  for (const char* p : {"tools", "tool_choice", "functions", "function_call", "response_format", "top_logprobs",
                        "audio", "modalities", "prediction", "parallel_tool_calls", "suffix", "echo", "best_of",
                        "web_search_options", "reasoning_effort"}) {
    if (field(o, p) != nullptr) throw BadInput(p, std::string("'") + p + "' is not supported by this server.");
  }
}

// Whether `key` is one of `names`: the request's keys are few and so are the names, so a scan of
// string views (no set built per request) is the cheapest test.
bool among(std::string_view key, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), key) != names.end();
}

// `prefix` names the enclosing object ("stream_options.") so that `param` locates the field.
template <typename Known>
void check_known(const json::object& o, Known known, const std::string& prefix = "") {
  for (const auto& kv : o) {
    const std::string_view key = kv.key();
    if (!known(key)) {
      const std::string name = prefix + std::string(key);
      throw BadInput(name, "Unrecognized request argument supplied: " + name + ".");
    }
  }
}

void common(const json::object& o, CompletionParams& p) {
  refuse_unsupported(o);
  if (field(o, "model") == nullptr) throw BadInput("model", "'model' is required: a model name, a tier, or \"auto\".");
  p.model = string(o, "model");
  if (p.model.empty()) throw BadInput("model", "'model' must not be empty.");
  const bool has_mt = field(o, "max_tokens") != nullptr, has_mct = field(o, "max_completion_tokens") != nullptr;
  if (has_mt && has_mct) {
    throw BadInput("max_tokens", "Give either 'max_tokens' or 'max_completion_tokens', not both.");
  }
  if (has_mt) p.max_tokens = integer(o, "max_tokens", 1, std::int64_t{1} << 31);
  if (has_mct) p.max_tokens = integer(o, "max_completion_tokens", 1, std::int64_t{1} << 31);
  if (field(o, "temperature")) p.temperature = static_cast<float>(number(o, "temperature", 0.0, 2.0));
  if (field(o, "top_p")) {
    p.top_p = static_cast<float>(number(o, "top_p", 0.0, 1.0));
    if (p.top_p <= 0.0f) throw BadInput("top_p", "'top_p' must be greater than 0 and at most 1.");
  }
  if (field(o, "top_k")) p.top_k = static_cast<std::int32_t>(integer(o, "top_k", 0, 1 << 20));
  if (const auto* v = field(o, "seed")) {
    if (v->is_int64()) {
      p.seed = static_cast<std::uint64_t>(v->as_int64());
    } else if (v->is_uint64()) {
      p.seed = v->as_uint64();
    } else {
      throw BadInput("seed", "'seed' must be an integer.");
    }
  }
  if (const auto* v = field(o, "stop")) {
    if (v->is_string()) {
      p.stop.emplace_back(v->as_string());
    } else if (v->is_array()) {
      if (v->as_array().size() > 4) throw BadInput("stop", "'stop' takes at most 4 sequences.");
      for (const auto& s : v->as_array()) {
        if (!s.is_string()) throw BadInput("stop", "'stop' must be a string or an array of strings.");
        p.stop.emplace_back(s.as_string());
      }
    } else {
      throw BadInput("stop", "'stop' must be a string or an array of strings.");
    }
    for (const auto& s : p.stop) {
      if (s.empty()) throw BadInput("stop", "Stop sequences must not be empty.");
    }
  }
  if (field(o, "stream")) p.stream = boolean(o, "stream");
  if (const auto* v = field(o, "stream_options")) {
    if (!v->is_object()) throw BadInput("stream_options", "'stream_options' must be an object.");
    if (!p.stream) throw BadInput("stream_options", "'stream_options' is only allowed when 'stream' is true.");
    check_known(v->as_object(), [](std::string_view k) { return k == "include_usage"; }, "stream_options.");
    if (field(v->as_object(), "include_usage")) {
      const auto* iu = field(v->as_object(), "include_usage");
      if (!iu->is_bool()) throw BadInput("stream_options.include_usage", "'stream_options.include_usage' must be true or false.");
      p.include_usage = iu->as_bool();
    }
  }
  if (field(o, "user")) p.user = string(o, "user");
}

// The parameters both APIs know (those infergate does not implement are refused by common()).
bool common_param(std::string_view k) {
  return among(k, {"model", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "seed", "stop",
                   "stream", "stream_options", "user", "n", "presence_penalty", "frequency_penalty", "logit_bias",
                   "logprobs", "tools", "tool_choice", "functions", "function_call", "response_format", "top_logprobs",
                   "audio", "modalities", "prediction", "parallel_tool_calls", "metadata", "store", "service_tier",
                   "web_search_options", "reasoning_effort"});
}

}  // namespace

CompletionParams parse_chat_request(const json::object& body) {
  check_known(body, [](std::string_view k) { return k == "messages" || common_param(k); });
  CompletionParams p;
  p.chat = true;
  common(body, p);
  const auto* msgs = field(body, "messages");
  if (msgs == nullptr) throw BadInput("messages", "'messages' is required: a non-empty array of {role, content}.");
  if (!msgs->is_array() || msgs->as_array().empty()) {
    throw BadInput("messages", "'messages' must be a non-empty array of {role, content}.");
  }
  std::size_t i = 0;
  for (const auto& m : msgs->as_array()) {
    // The message's place, for an error message (built only then).
    const std::size_t index = i++;
    auto where = [index] { return "messages[" + std::to_string(index) + "]"; };
    if (!m.is_object()) throw BadInput(where(), where() + " must be an object with 'role' and 'content'.");
    const auto& mo = m.as_object();
    for (const auto& kv : mo) {
      const std::string_view k = kv.key();
      if (k != "role" && k != "content" && k != "name") {
        const std::string at = where() + "." + std::string(k);
        throw BadInput(at, at + " is not supported (text messages only: role, content, name).");
      }
    }
    const auto* role = field(mo, "role");
    if (role == nullptr || !role->is_string()) throw BadInput(where() + ".role", where() + ".role must be a string.");
    std::string r(role->as_string());
    if (r == "developer") r = "system";
    if (r != "system" && r != "user" && r != "assistant") {
      throw BadInput(where() + ".role", where() + ".role '" + r + "' is not supported (system, developer, user, assistant).");
    }
    const auto* content = field(mo, "content");
    std::string text;
    if (content == nullptr) throw BadInput(where() + ".content", where() + ".content is required.");
    if (content->is_string()) {
      text = std::string(content->as_string());
    } else if (content->is_array()) {
      for (const auto& part : content->as_array()) {
        const auto* po = part.if_object();
        const auto* type = po ? field(*po, "type") : nullptr;
        const auto* t = po ? field(*po, "text") : nullptr;
        if (type == nullptr || !type->is_string() || type->as_string() != "text" || t == nullptr || !t->is_string()) {
          throw BadInput(where() + ".content", where() + ".content parts must be {\"type\": \"text\", \"text\": ...} (only text is supported).");
        }
        text += std::string(t->as_string());
      }
    } else {
      throw BadInput(where() + ".content", where() + ".content must be a string or an array of text parts.");
    }
    p.messages.push_back({r, std::move(text)});
  }
  return p;
}

CompletionParams parse_completion_request(const json::object& body) {
  // "suffix", "echo" and "best_of": known to the completions API, refused as unsupported (not as
  // unknown) by common().
  check_known(body, [](std::string_view k) { return among(k, {"prompt", "suffix", "echo", "best_of"}) || common_param(k); });
  CompletionParams p;
  p.chat = false;
  common(body, p);
  const auto* prompt = field(body, "prompt");
  if (prompt == nullptr) throw BadInput("prompt", "'prompt' is required: a string.");
  if (prompt->is_string()) {
    p.prompt = std::string(prompt->as_string());
  } else if (prompt->is_array() && prompt->as_array().size() == 1 && prompt->as_array()[0].is_string()) {
    p.prompt = std::string(prompt->as_array()[0].as_string());
  } else {
    throw BadInput("prompt", "'prompt' must be a string (or an array holding exactly one string).");
  }
  if (p.prompt.empty()) throw BadInput("prompt", "'prompt' must not be empty.");
  return p;
}

}  // namespace infergate::gateway
