// Tiered model routing: maps what a request asks for (a model, an alias, a tier, or "auto") to a
// served model, honouring the tenant's allowed tiers, the prompt's fit in each model's context,
// and load (a model over routing.max_queue_depth or routing.max_kv_use is overloaded, and the
// request falls back along routing.fallback among the tenant's tiers). Pure decisions: the
// caller supplies token counts and load figures. Thread-safe (const).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "infergate/gateway/models.h"

namespace infergate::gateway {

struct ModelLoad {
  std::int64_t waiting = 0;
  double kv_use = 0;  // fraction of KV blocks in use
};

struct RouteChoice {
  const ServedModel* model = nullptr;
  std::int64_t prompt_tokens = 0;
  bool fallback = false;  // the first choice was overloaded
};

struct RouteError {
  enum Kind { not_found, not_allowed, context_exceeded, overloaded } kind;
  std::string message;
  int retry_after_s = 0;
};

class ModelRouter {
 public:
  explicit ModelRouter(const ModelRegistry& registry) : registry_(registry) {}

  // prompt_tokens(model): the prompt's length in that model's tokens. min_new_tokens: what the
  // request needs room for after the prompt (its max_tokens when given, else 1).
  std::variant<RouteChoice, RouteError> route(const std::string& requested,
                                              const std::vector<std::string>& allowed_tiers,
                                              const std::function<std::int64_t(const ServedModel&)>& prompt_tokens,
                                              std::int64_t min_new_tokens,
                                              const std::function<ModelLoad(const ServedModel&)>& load) const;

  // The models a tenant may use (for GET /v1/models), smallest tier first.
  std::vector<const ServedModel*> allowed_models(const std::vector<std::string>& allowed_tiers) const;
  bool tier_allowed(const std::vector<std::string>& allowed_tiers, const std::string& tier) const;

 private:
  bool overloaded(const ModelLoad& l) const;
  const ModelRegistry& registry_;
};

}  // namespace infergate::gateway
