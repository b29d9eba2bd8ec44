// What a request to the engine is and what comes back from it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "infergate/engine/sampler.h"

namespace infergate::engine {

enum class FinishReason { none, stop, length, cancelled, error };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled", "error"

struct GenerationEvent {
  // A new token (text may be empty while held back for UTF-8 or a possible stop sequence), or
  // the end of the sequence (finished == true; text holds any last held-back text).
  bool finished = false;
  std::int32_t token = -1;
  std::string text;
  std::int64_t prompt_tokens = 0;      // the prompt's length
  std::int64_t completion_tokens = 0;  // generated so far
  // Prompt tokens the engine computed (less than prompt_tokens when cancelled before its
  // prefill finished; 0 when cancelled while waiting). Recomputation is not counted twice.
  std::int64_t prompt_tokens_processed = 0;
  // Prompt tokens whose keys and values came from the prefix cache when the sequence was first
  // scheduled (0 when it never was, or with the cache off); always less than prompt_tokens. A
  // preempted sequence recomputes what it lost, but that is the engine's cost, not the request's.
  std::int64_t cached_prompt_tokens = 0;
  FinishReason reason = FinishReason::none;
  std::string error;  // when reason == error
  std::chrono::steady_clock::duration queue_time{};  // submit -> first scheduled
  std::chrono::steady_clock::duration time_to_first_token{};  // submit -> first token (0 if none)
  std::chrono::steady_clock::time_point at{};  // when the engine produced it
};

// Called on the engine thread; must be quick and must not block (post the event to the
// consumer's executor and return). Called exactly once with finished == true, last.
using EventCallback = std::function<void(const GenerationEvent&)>;

struct GenerationRequest {
  std::string tenant;         // opaque id, for fair scheduling
  std::uint32_t weight = 1;   // the tenant's share (from its plan); >= 1
  std::vector<std::int32_t> prompt;
  SamplingParams sampling;
  EventCallback on_event;
};

}  // namespace infergate::engine
