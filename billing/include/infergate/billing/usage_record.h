// One request's usage, as journaled and as stored in the usage_events ledger. Token counts are
// integers; times are UTC (Unix microseconds here, timestamptz in Postgres).
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace infergate::billing {

struct UsageRecord {
  std::string tenant_id, request_id, api_key_id, model, tier;
  std::int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
  std::string status;  // completed | cancelled | failed | refused
  std::string finish_reason;
  std::int64_t started_at_us = 0, ended_at_us = 0;
  std::optional<std::int64_t> time_to_first_token_ms;
  std::string price_version_id;

  bool operator==(const UsageRecord&) const = default;
};

// A stable JSON encoding (the journal's payload). decode_usage throws std::invalid_argument on
// anything that is not a complete, valid record.
std::string encode_usage(const UsageRecord& r);
UsageRecord decode_usage(std::string_view json);

}  // namespace infergate::billing
