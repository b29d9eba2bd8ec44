// The models this instance serves (config [[models]]): each loaded from its GGUF file with its
// own engine (scheduler thread and compute threads), tier, aliases, context length and chat
// format. Built once at startup; lookups are thread-safe (the set never changes afterwards).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "infergate/engine/chat_template.h"
#include "infergate/engine/engine.h"
#include "infergate/engine/model.h"
#include "infergate/infra/config.h"

namespace infergate::gateway {

struct ServedModel {
  std::string name;
  std::string tier;
  std::size_t tier_rank = 0;  // position in routing.tiers
  std::vector<std::string> aliases;
  std::int64_t context_length = 0;
  std::shared_ptr<const engine::Model> model;  // null only in routing unit tests
  std::unique_ptr<engine::Engine> engine;       // null only in routing unit tests
  engine::ChatStyle chat = engine::ChatStyle::chatml;
  std::vector<std::int32_t> stop_tokens;        // end-of-turn tokens of the chat format
  std::vector<std::string> reserved_texts;      // control-token texts refused in user content
  std::string device;                           // "cpu (avx512, 2 threads)", ...
  // Requests routed here that are not yet in the engine's queue (being admitted): routing counts
  // them as waiting, so a burst arriving within one admission round trip still sees the load.
  mutable std::atomic<std::int64_t> routing_pending{0};
};

class ModelRegistry {
 public:
  // Loads every configured model and starts its engine. Throws std::runtime_error naming the
  // model and what is wrong (missing file, bad GGUF, cuda without a GPU, context too long).
  explicit ModelRegistry(const infra::Config& cfg);
  // For tests: models assembled by hand.
  ModelRegistry(std::vector<std::unique_ptr<ServedModel>> models, infra::RoutingConfig routing);

  // By name or alias; null when unknown.
  const ServedModel* find(std::string_view name) const;
  const std::vector<std::unique_ptr<ServedModel>>& models() const { return models_; }
  const infra::RoutingConfig& routing() const { return routing_; }
  // At shutdown, once no request can come: every engine cancels what it holds, which finishes
  // (through each request's callback) at the end of its step under way.
  void cancel_all_generations();
  // Whether any engine still holds a request (running, waiting, or not yet taken from its inbox).
  bool generating() const;
  // At exit, once no request can come: each engine finishes what it still holds as cancelled
  // (through each request's callback) and stops; the models stay, without engines.
  void stop_engines();

 private:
  std::vector<std::unique_ptr<ServedModel>> models_;
  infra::RoutingConfig routing_;
};

}  // namespace infergate::gateway
