#include "infergate/billing/usage_record.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace infergate::billing {

namespace json = boost::json;

std::string encode_usage(const UsageRecord& r) {
  json::object o{{"tenant_id", r.tenant_id},
                 {"request_id", r.request_id},
                 {"api_key_id", r.api_key_id},
                 {"model", r.model},
                 {"tier", r.tier},
                 {"prompt_tokens", r.prompt_tokens},
                 {"completion_tokens", r.completion_tokens},
                 {"cached_tokens", r.cached_tokens},
                 {"status", r.status},
                 {"finish_reason", r.finish_reason},
                 {"started_at_us", r.started_at_us},
                 {"ended_at_us", r.ended_at_us},
                 {"price_version_id", r.price_version_id}};
  if (r.time_to_first_token_ms) o["ttft_ms"] = *r.time_to_first_token_ms;
  return json::serialize(o);
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
