#include "infergate/billing/usage_record.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace infergate::billing {

namespace json = boost::json;

namespace {

// JSON written directly (one per request on the hot path: building a json::object first cost
// more than the rest of the record's journey to disk).
void put_string(std::string& out, std::string_view key, std::string_view v) {
  out += '"';
  out += key;
  out += "\":\"";
  for (const char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\b') {
      out += "\\b";
    } else if (c == '\f') {
      out += "\\f";
    } else if (u < 0x20) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  out += "\",";
}

void put_int(std::string& out, std::string_view key, std::int64_t v) {
  out += '"';
  out += key;
  out += "\":";
  out += std::to_string(v);
  out += ',';
}

}  // namespace

std::string encode_usage(const UsageRecord& r) {
  std::string out;
  out.reserve(320 + r.tenant_id.size() + r.model.size() + r.tier.size());
  out += '{';
  put_string(out, "tenant_id", r.tenant_id);
  put_string(out, "request_id", r.request_id);
  put_string(out, "api_key_id", r.api_key_id);
  put_string(out, "model", r.model);
  put_string(out, "tier", r.tier);
  put_int(out, "prompt_tokens", r.prompt_tokens);
  put_int(out, "completion_tokens", r.completion_tokens);
  put_int(out, "cached_tokens", r.cached_tokens);
  put_string(out, "status", r.status);
  put_string(out, "finish_reason", r.finish_reason);
  put_int(out, "started_at_us", r.started_at_us);
  put_int(out, "ended_at_us", r.ended_at_us);
  put_string(out, "price_version_id", r.price_version_id);
  if (r.time_to_first_token_ms) put_int(out, "ttft_ms", *r.time_to_first_token_ms);
  out.back() = '}';
  return out;
}

UsageRecord decode_usage(std::string_view text) {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) throw std::invalid_argument("usage record is not a JSON object");
  const auto& o = v.as_object();
  auto str = [&](const char* k) {
    auto it = o.find(k);
    if (it == o.end() || !it->value().is_string())
      throw std::invalid_argument(std::string("usage record lacks string ") + k);
    return std::string(it->value().as_string());
  };
  auto num = [&](const char* k) {
    auto it = o.find(k);
    if (it == o.end() || !it->value().is_int64())
      throw std::invalid_argument(std::string("usage record lacks integer ") + k);
    return it->value().as_int64();
  };
  UsageRecord r;
  r.tenant_id = str("tenant_id");
  r.request_id = str("request_id");
  r.api_key_id = str("api_key_id");
  r.model = str("model");
  r.tier = str("tier");
  r.prompt_tokens = num("prompt_tokens");
  r.completion_tokens = num("completion_tokens");
  r.cached_tokens = num("cached_tokens");
  r.status = str("status");
  r.finish_reason = str("finish_reason");
  r.started_at_us = num("started_at_us");
  r.ended_at_us = num("ended_at_us");
  r.price_version_id = str("price_version_id");
  if (o.contains("ttft_ms")) r.time_to_first_token_ms = num("ttft_ms");
  return r;
}

}  // namespace infergate::billing
