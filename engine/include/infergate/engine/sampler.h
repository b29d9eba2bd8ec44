// Next-token choice from logits: greedy (temperature 0), or temperature, top-k and top-p
// sampling with a per-request seeded generator, so the same seed and input give the same
// output. Also the stop-sequence matcher, which works on text across token boundaries. One
// instance per sequence; not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace infergate::engine {

struct SamplingParams {
  float temperature = 1.0f;            // 0 = greedy
  std::int32_t top_k = 0;              // 0 = all
  float top_p = 1.0f;                  // 1 = all
  std::optional<std::uint64_t> seed;   // none: a fresh seed per request
  std::int64_t max_tokens = 16;
  std::vector<std::string> stop;       // stop sequences, matched on the generated text
  std::vector<std::int32_t> stop_tokens;  // besides the model's EOS (e.g. <|im_end|>)
  bool ignore_eos = false;
};

class Sampler {
 public:
  Sampler(const SamplingParams& p, std::uint64_t fallback_seed);
  // Chooses a token; may modify logits (scaling, masking).
  std::int32_t sample(std::span<float> logits);

 private:
  double uniform();  // [0, 1)
  SamplingParams p_;
  std::uint64_t state_;
  std::vector<std::pair<float, std::int32_t>> cand_;
};

// Finds stop sequences in streamed text. push() returns the text that can be sent now: text
// that might be the start of a stop sequence is held back until the next piece decides it.
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);
  std::string push(std::string_view text);
  std::string finish();  // the held-back text, when generation ends for another reason
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace infergate::engine
