#include <algorithm>
#include <cmath>
#include <utility>

#include "infergate/engine/sampler.h"
#include "infergate/kernels/cpu/kernels.h"

namespace infergate::engine {

Sampler::Sampler(const SamplingParams& p, std::uint64_t fallback_seed)
    : p_(p), state_(p.seed.value_or(fallback_seed)) {}

double Sampler::uniform() {  // splitmix64: fixed across platforms and standard libraries
  std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

std::int32_t Sampler::sample(std::span<float> logits) {
  const auto n = static_cast<std::int32_t>(logits.size());
  // Ties go to the lower id, in greedy and in the candidate order alike.
  auto better = [](const std::pair<float, std::int32_t>& a, const std::pair<float, std::int32_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  if (p_.temperature <= 0.0f || p_.top_k == 1) {
    return static_cast<std::int32_t>(kernels::cpu::argmax(logits.data(), n));
  }
  cand_.clear();
  for (std::int32_t i = 0; i < n; ++i) cand_.emplace_back(logits[static_cast<std::size_t>(i)] / p_.temperature, i);
  std::size_t keep = cand_.size();
  if (p_.top_k > 0 && static_cast<std::size_t>(p_.top_k) < keep) {
    keep = static_cast<std::size_t>(p_.top_k);
    std::partial_sort(cand_.begin(), cand_.begin() + static_cast<std::ptrdiff_t>(keep), cand_.end(), better);
  } else {
    std::sort(cand_.begin(), cand_.end(), better);
  }
  cand_.resize(keep);
  const float mx = cand_.front().first;
  double sum = 0;
  for (auto& c : cand_) sum += (c.first = std::exp(c.first - mx));
  if (p_.top_p < 1.0f) {
    double cum = 0;
    std::size_t cut = 0;
    while (cut < cand_.size()) {
      cum += cand_[cut].first / sum;
      ++cut;
      if (cum >= p_.top_p) break;
    }
    cand_.resize(cut);
    sum = 0;
    for (const auto& c : cand_) sum += c.first;
  }
  double r = uniform() * sum;
  for (const auto& c : cand_) {
    r -= c.first;
    if (r < 0) return c.second;
  }
  return cand_.back().second;
}

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
}

std::string StopMatcher::push(std::string_view text) {
  if (stopped_) return {};
  pending_.append(text);
  // The earliest complete stop sequence ends generation; what precedes it is sent.
  std::size_t first = std::string::npos;
  for (const auto& s : stops_) first = std::min(first, pending_.find(s));
  if (first != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, first);
    pending_.clear();
    return out;
  }
  // Hold back the longest tail that could still grow into a stop sequence.
  std::size_t hold = 0;
  for (const auto& s : stops_) {
    for (std::size_t len = std::min(s.size() - 1, pending_.size()); len > hold; --len) {
      if (pending_.compare(pending_.size() - len, len, s, 0, len) == 0) {
        hold = len;
        break;
      }
    }
  }
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StopMatcher::finish() {
  if (stopped_) return {};
  return std::exchange(pending_, {});
}

}  // namespace infergate::engine
