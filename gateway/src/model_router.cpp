#include "infergate/gateway/model_router.h"

#include <algorithm>
#include <map>

namespace infergate::gateway {

bool ModelRouter::tier_allowed(const std::vector<std::string>& allowed, const std::string& tier) const {
  return allowed.empty() || std::find(allowed.begin(), allowed.end(), tier) != allowed.end();
}

bool ModelRouter::overloaded(const ModelLoad& l) const {
  const auto& r = registry_.routing();
  return l.waiting > r.max_queue_depth || l.kv_use > r.max_kv_use;
}

std::vector<const ServedModel*> ModelRouter::allowed_models(const std::vector<std::string>& allowed) const {
  std::vector<const ServedModel*> out;
  for (const auto& m : registry_.models()) {
    if (tier_allowed(allowed, m->tier)) out.push_back(m.get());
  }
  std::stable_sort(out.begin(), out.end(), [](const ServedModel* a, const ServedModel* b) { return a->tier_rank < b->tier_rank; });
  return out;
}

std::variant<RouteChoice, RouteError> ModelRouter::route(
    const std::string& requested, const std::vector<std::string>& allowed_tiers,
    const std::function<std::int64_t(const ServedModel&)>& prompt_tokens, std::int64_t min_new_tokens,
    const std::function<ModelLoad(const ServedModel&)>& load) const {
  const auto& routing = registry_.routing();
  // Token counts per model, computed once each.
  std::map<const ServedModel*, std::int64_t> counted;
  auto tokens = [&](const ServedModel* m) {
    auto it = counted.find(m);
    if (it == counted.end()) it = counted.emplace(m, prompt_tokens(*m)).first;
    return it->second;
  };
  auto fits = [&](const ServedModel* m) { return tokens(m) + std::max<std::int64_t>(1, min_new_tokens) <= m->context_length; };

  // 1. What was asked for, as an ordered list of candidates.
  std::vector<const ServedModel*> candidates;
  bool automatic = false;
  if (const ServedModel* named = registry_.find(requested)) {
    if (!tier_allowed(allowed_tiers, named->tier)) {
      return RouteError{RouteError::not_allowed, "The model '" + requested + "' is in tier '" + named->tier +
                                                     "', which your plan does not include. Use GET /v1/models to see "
                                                     "the models you may use."};
    }
    candidates.push_back(named);
  } else if (std::find(routing.tiers.begin(), routing.tiers.end(), requested) != routing.tiers.end()) {
    if (!tier_allowed(allowed_tiers, requested)) {
      return RouteError{RouteError::not_allowed, "Your plan does not include the tier '" + requested +
                                                     "'. Use GET /v1/models to see the models you may use."};
    }
    for (const auto& m : registry_.models()) {
      if (m->tier == requested) candidates.push_back(m.get());
    }
    if (candidates.empty()) {
      return RouteError{RouteError::not_found, "No model of tier '" + requested + "' is served here."};
    }
  } else if (requested == "auto") {
    automatic = true;
    candidates = allowed_models(allowed_tiers);
    if (candidates.empty()) {
      return RouteError{RouteError::not_allowed, "Your plan includes none of the tiers served here."};
    }
    // Long prompts skip the smallest tier (when a larger one is allowed).
    const std::size_t smallest = candidates.front()->tier_rank;
    const bool larger = std::any_of(candidates.begin(), candidates.end(), [&](const ServedModel* m) { return m->tier_rank > smallest; });
    if (larger && tokens(candidates.front()) > routing.auto_long_prompt_tokens) {
      std::erase_if(candidates, [&](const ServedModel* m) { return m->tier_rank == smallest; });
    }
  } else {
    return RouteError{RouteError::not_found, "The model '" + requested +
                                                 "' does not exist. Use GET /v1/models to list the models you may use, "
                                                 "a tier name, or \"auto\"."};
  }

  // 2. The first candidate whose context fits the request.
  const ServedModel* first = nullptr;
  for (const ServedModel* m : candidates) {
    if (fits(m)) {
      first = m;
      break;
    }
  }
  if (first == nullptr) {
    const ServedModel* m = candidates.back();
    return RouteError{RouteError::context_exceeded,
                      std::string(automatic ? "No model you may use has room for this request: " : "") + "The model '" + m->name +
                          "' has a context of " + std::to_string(m->context_length) + " tokens, but the request needs " +
                          std::to_string(tokens(m) + std::max<std::int64_t>(1, min_new_tokens)) + " (" + std::to_string(tokens(m)) +
                          " in the prompt, " + std::to_string(std::max<std::int64_t>(1, min_new_tokens)) +
                          " to generate). Shorten the prompt or lower max_tokens."};
  }
  if (!overloaded(load(*first))) return RouteChoice{first, tokens(first), false};

  // 3. Overloaded: other candidates of the request first, then the fallback tiers in order. For
  // "auto" every allowed tier is a candidate, so only those of the chosen tier go first and the
  // rest follow routing.fallback (still without the tiers "auto" skipped for a long prompt).
  std::vector<const ServedModel*> next;
  auto add = [&](const ServedModel* m) {
    if (m != first && std::find(next.begin(), next.end(), m) == next.end()) next.push_back(m);
  };
  for (const ServedModel* m : candidates) {
    if (!automatic || m->tier == first->tier) add(m);
  }
  for (const auto& tier : routing.fallback) {
    if (!tier_allowed(allowed_tiers, tier)) continue;
    for (const auto& m : registry_.models()) {
      if (m->tier != tier) continue;
      if (automatic && std::find(candidates.begin(), candidates.end(), m.get()) == candidates.end()) continue;
      add(m.get());
    }
  }
  for (const ServedModel* m : next) {
    if (fits(m) && !overloaded(load(*m))) return RouteChoice{m, tokens(m), true};
  }
  return RouteError{RouteError::overloaded,
                    "The model '" + first->name + "' is overloaded and no other model you may use has capacity. Retry shortly.",
                    1};
}

}  // namespace infergate::gateway
