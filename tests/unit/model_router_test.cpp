// Tiered model routing on hand-built models (no weights, no engines): names, aliases, tiers and
// "auto"; the plan's tiers; context fit; and overload fallback along routing.fallback.
#include "infergate/gateway/model_router.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace infergate::gateway {
namespace {

std::unique_ptr<ServedModel> model(std::string name, std::string tier, std::int64_t context,
                                   std::vector<std::string> aliases = {}) {
  auto m = std::make_unique<ServedModel>();
  m->name = std::move(name);
  m->tier = std::move(tier);
  m->context_length = context;
  m->aliases = std::move(aliases);
  return m;
}

infra::RoutingConfig default_routing() {
  infra::RoutingConfig r;
  r.tiers = {"small", "medium", "large", "xl"};  // nothing is served in xl
  r.fallback = {"small", "medium", "large"};
  r.auto_long_prompt_tokens = 50;
  r.max_queue_depth = 2;
  r.max_kv_use = 0.9;
  return r;
}

// small (context 100), two mediums (1000, 2000), large (4000).
std::unique_ptr<ModelRegistry> registry(infra::RoutingConfig routing = default_routing()) {
  std::vector<std::unique_ptr<ServedModel>> ms;
  ms.push_back(model("large-a", "large", 4000));  // out of tier order on purpose
  ms.push_back(model("small-a", "small", 100, {"tiny", "fast"}));
  ms.push_back(model("medium-a", "medium", 1000, {"mid"}));
  ms.push_back(model("medium-b", "medium", 2000));
  return std::make_unique<ModelRegistry>(std::move(ms), std::move(routing));
}

class ModelRouterTest : public ::testing::Test {
 protected:
  std::unique_ptr<ModelRegistry> reg = registry();
  std::int64_t prompt = 10;                // every model counts the prompt alike ...
  std::map<std::string, std::int64_t> per_model_prompt;  // ... unless set here
  std::map<std::string, ModelLoad> loads;  // absent: idle
  std::map<std::string, int> counted;      // prompt_tokens calls per model

  std::variant<RouteChoice, RouteError> route(const std::string& requested,
                                              const std::vector<std::string>& allowed = {},
                                              std::int64_t max_new = 1) {
    ModelRouter router(*reg);
    return router.route(
        requested, allowed,
        [this](const ServedModel& m) {
          ++counted[m.name];
          auto it = per_model_prompt.find(m.name);
          return it == per_model_prompt.end() ? prompt : it->second;
        },
        max_new,
        [this](const ServedModel& m) {
          auto it = loads.find(m.name);
          return it == loads.end() ? ModelLoad{} : it->second;
        });
  }
  // The model a successful route chose ("" and a test failure otherwise).
  std::string chosen(const std::variant<RouteChoice, RouteError>& r) {
    if (const auto* e = std::get_if<RouteError>(&r)) {
      ADD_FAILURE() << "route failed: " << e->message;
      return "";
    }
    return std::get<RouteChoice>(r).model->name;
  }
  RouteError error(const std::variant<RouteChoice, RouteError>& r) {
    if (const auto* c = std::get_if<RouteChoice>(&r)) {
      ADD_FAILURE() << "routed to " << c->model->name;
      return {};
    }
    return std::get<RouteError>(r);
  }
  static constexpr ModelLoad kQueueFull{3, 0.0};  // waiting > max_queue_depth (2)
  static constexpr ModelLoad kKvFull{0, 0.95};    // kv_use > max_kv_use (0.9)
};

TEST_F(ModelRouterTest, ExactNameIsChosenWithItsPromptCount) {
  per_model_prompt["medium-b"] = 17;
  const auto r = route("medium-b");
  ASSERT_EQ(chosen(r), "medium-b");
  EXPECT_EQ(std::get<RouteChoice>(r).prompt_tokens, 17);
  EXPECT_FALSE(std::get<RouteChoice>(r).fallback);
  EXPECT_EQ(chosen(route("large-a", {"large"})), "large-a");
}

TEST_F(ModelRouterTest, AliasFindsItsModel) {
  EXPECT_EQ(chosen(route("tiny")), "small-a");
  EXPECT_EQ(chosen(route("fast")), "small-a");
  EXPECT_EQ(chosen(route("mid", {"medium"})), "medium-a");
}

TEST_F(ModelRouterTest, TierNamePicksTheFirstModelOfThatTierThatFits) {
  EXPECT_EQ(chosen(route("medium")), "medium-a");
  EXPECT_EQ(chosen(route("large")), "large-a");
  prompt = 1500;  // over medium-a's context (1000), within medium-b's (2000)
  EXPECT_EQ(chosen(route("medium")), "medium-b");
}

TEST_F(ModelRouterTest, AutoPicksTheSmallestAllowedTierThatFits) {
  EXPECT_EQ(chosen(route("auto")), "small-a");
  EXPECT_EQ(chosen(route("auto", {"medium", "large"})), "medium-a");
  EXPECT_EQ(chosen(route("auto", {"large"})), "large-a");
  // A short prompt whose max_tokens does not fit small's context (40 + 80 > 100).
  prompt = 40;
  EXPECT_EQ(chosen(route("auto", {}, 80)), "medium-a");
  // Beyond medium-a's context: medium-b.
  EXPECT_EQ(chosen(route("auto", {"medium", "large"}, 1500)), "medium-b");
}

TEST_F(ModelRouterTest, AutoSkipsTheSmallestTierForLongPrompts) {
  prompt = 60;  // > auto_long_prompt_tokens (50), yet it would fit small's context of 100
  EXPECT_EQ(chosen(route("auto")), "medium-a");
  EXPECT_EQ(chosen(route("auto", {"small", "large"})), "large-a");
  // ... unless the smallest allowed tier is the only one.
  EXPECT_EQ(chosen(route("auto", {"small"})), "small-a");
  prompt = 50;  // at the threshold: not long
  EXPECT_EQ(chosen(route("auto")), "small-a");
}

TEST_F(ModelRouterTest, UnknownModelOrEmptyTierIs404) {
  auto e = error(route("gpt-4o"));
  EXPECT_EQ(e.kind, RouteError::not_found);
  EXPECT_EQ(e.message,
            "The model 'gpt-4o' does not exist. Use GET /v1/models to list the models you may use, a tier name, "
            "or \"auto\".");
  e = error(route("xl"));
  EXPECT_EQ(e.kind, RouteError::not_found);
  EXPECT_EQ(e.message, "No model of tier 'xl' is served here.");
  EXPECT_EQ(error(route("Small-A")).kind, RouteError::not_found);  // names are case-sensitive
}

TEST_F(ModelRouterTest, TierOutsideThePlanIs403) {
  auto e = error(route("large-a", {"small", "medium"}));
  EXPECT_EQ(e.kind, RouteError::not_allowed);
  EXPECT_EQ(e.message,
            "The model 'large-a' is in tier 'large', which your plan does not include. Use GET /v1/models to see "
            "the models you may use.");
  e = error(route("mid", {"small"}));  // by alias
  EXPECT_EQ(e.kind, RouteError::not_allowed);
  EXPECT_NE(e.message.find("'mid' is in tier 'medium'"), std::string::npos) << e.message;
  e = error(route("large", {"small"}));
  EXPECT_EQ(e.kind, RouteError::not_allowed);
  EXPECT_EQ(e.message, "Your plan does not include the tier 'large'. Use GET /v1/models to see the models you may use.");
  e = error(route("auto", {"xl"}));
  EXPECT_EQ(e.kind, RouteError::not_allowed);
  EXPECT_EQ(e.message, "Your plan includes none of the tiers served here.");
  // A refused request is not tokenized.
  EXPECT_TRUE(counted.empty());
}

TEST_F(ModelRouterTest, ContextExceededNamesTheCounts) {
  prompt = 90;
  auto e = error(route("small-a", {}, 20));
  EXPECT_EQ(e.kind, RouteError::context_exceeded);
  EXPECT_EQ(e.message,
            "The model 'small-a' has a context of 100 tokens, but the request needs 110 (90 in the prompt, 20 to "
            "generate). Shorten the prompt or lower max_tokens.");
  prompt = 100;  // the prompt alone fills the context: no room for one token
  e = error(route("small-a"));
  EXPECT_EQ(e.kind, RouteError::context_exceeded);
  EXPECT_NE(e.message.find("needs 101 (100 in the prompt, 1 to generate)"), std::string::npos) << e.message;
  prompt = 99;
  EXPECT_EQ(chosen(route("small-a")), "small-a");

  prompt = 5000;
  e = error(route("auto", {"small", "medium"}));
  EXPECT_EQ(e.kind, RouteError::context_exceeded);
  EXPECT_EQ(e.message.rfind("No model you may use has room for this request: The model 'medium-b' has a context of "
                            "2000 tokens",
                            0),
            0u)
      << e.message;
}

TEST_F(ModelRouterTest, ContextIsCheckedWithEachModelsOwnTokenCount) {
  prompt = 95;
  per_model_prompt["small-a"] = 60;  // another tokenizer, fewer tokens
  EXPECT_EQ(chosen(route("small-a", {}, 30)), "small-a");
  per_model_prompt["small-a"] = 80;
  EXPECT_EQ(error(route("small-a", {}, 30)).kind, RouteError::context_exceeded);
}

TEST_F(ModelRouterTest, OverloadedModelFallsBackAlongTheConfiguredOrder) {
  auto routing = default_routing();
  routing.fallback = {"large", "medium", "small"};
  reg = registry(routing);
  loads["small-a"] = kQueueFull;
  auto r = route("small-a");
  EXPECT_EQ(chosen(r), "large-a");
  EXPECT_TRUE(std::get<RouteChoice>(r).fallback);
  // KV pressure counts as overload too.
  loads["small-a"] = kKvFull;
  EXPECT_EQ(chosen(route("tiny")), "large-a");
  // The next in order when large is busy as well.
  loads["large-a"] = kQueueFull;
  EXPECT_EQ(chosen(route("small-a")), "medium-a");
  // At the thresholds a model is not overloaded.
  loads["small-a"] = ModelLoad{2, 0.9};
  r = route("small-a");
  EXPECT_EQ(chosen(r), "small-a");
  EXPECT_FALSE(std::get<RouteChoice>(r).fallback);
}

TEST_F(ModelRouterTest, FallbackStaysWithinThePlansTiers) {
  loads["small-a"] = kQueueFull;
  // medium is next in the fallback order but not allowed; large is.
  EXPECT_EQ(chosen(route("small-a", {"small", "large"})), "large-a");
  // Nothing else allowed: overloaded, not routed outside the plan.
  auto e = error(route("small-a", {"small"}));
  EXPECT_EQ(e.kind, RouteError::overloaded);
  EXPECT_GE(e.retry_after_s, 1);
}

TEST_F(ModelRouterTest, FallbackTriesOnlyTheConfiguredTiers) {
  auto routing = default_routing();
  routing.fallback = {"medium"};
  reg = registry(routing);
  loads["small-a"] = kQueueFull;
  loads["medium-a"] = kQueueFull;
  loads["medium-b"] = kQueueFull;
  // large is allowed and idle, but not a fallback tier.
  EXPECT_EQ(error(route("small-a")).kind, RouteError::overloaded);
  loads.erase("medium-b");
  EXPECT_EQ(chosen(route("small-a")), "medium-b");
}

TEST_F(ModelRouterTest, FallbackSkipsModelsWhoseContextIsTooSmall) {
  loads["medium-b"] = kQueueFull;
  prompt = 1500;  // fits medium-b and large-a only
  auto r = route("medium-b");
  EXPECT_EQ(chosen(r), "large-a");
  EXPECT_TRUE(std::get<RouteChoice>(r).fallback);
  EXPECT_EQ(std::get<RouteChoice>(r).prompt_tokens, 1500);
}

TEST_F(ModelRouterTest, TierRequestTriesTheTiersOtherModelsFirst) {
  auto routing = default_routing();
  routing.fallback = {"large", "small", "medium"};
  reg = registry(routing);
  loads["medium-a"] = kQueueFull;
  auto r = route("medium");
  EXPECT_EQ(chosen(r), "medium-b");
  EXPECT_TRUE(std::get<RouteChoice>(r).fallback);
  loads["medium-b"] = kQueueFull;
  EXPECT_EQ(chosen(route("medium")), "large-a");
}

TEST_F(ModelRouterTest, AutoFallsBackAlongTheConfiguredOrder) {
  auto routing = default_routing();
  routing.fallback = {"large", "medium"};
  reg = registry(routing);
  loads["small-a"] = kQueueFull;
  auto r = route("auto");
  EXPECT_EQ(chosen(r), "large-a");  // not medium, which comes first by size
  EXPECT_TRUE(std::get<RouteChoice>(r).fallback);
  loads["large-a"] = kQueueFull;
  EXPECT_EQ(chosen(route("auto")), "medium-a");
  // A long prompt keeps skipping the smallest tier while falling back.
  routing.fallback = {"small", "large", "medium"};
  reg = registry(routing);
  loads.clear();
  loads["medium-a"] = kQueueFull;
  loads["medium-b"] = kQueueFull;
  prompt = 60;
  EXPECT_EQ(chosen(route("auto")), "large-a");
  loads["large-a"] = kQueueFull;
  EXPECT_EQ(error(route("auto")).kind, RouteError::overloaded);
}

TEST_F(ModelRouterTest, AllOverloadedIsAnOverloadedErrorWithRetryAfter) {
  for (const char* m : {"small-a", "medium-a", "medium-b", "large-a"}) loads[m] = kQueueFull;
  for (const char* requested : {"small-a", "medium", "auto"}) {
    SCOPED_TRACE(requested);
    const auto e = error(route(requested));
    EXPECT_EQ(e.kind, RouteError::overloaded);
    EXPECT_GE(e.retry_after_s, 1);
    EXPECT_NE(e.message.find("is overloaded and no other model you may use has capacity"), std::string::npos)
        << e.message;
  }
  EXPECT_NE(error(route("small-a")).message.find("'small-a'"), std::string::npos);
}

TEST_F(ModelRouterTest, EachModelsPromptIsCountedOnce) {
  loads["small-a"] = kQueueFull;
  loads["medium-a"] = kQueueFull;
  ASSERT_EQ(chosen(route("auto")), "medium-b");
  for (const auto& [name, n] : counted) EXPECT_EQ(n, 1) << name;
  EXPECT_EQ(counted.count("large-a"), 0u);  // never needed
}

TEST_F(ModelRouterTest, AllowedModelsAreTheTenantsTiersSmallestFirst) {
  ModelRouter router(*reg);
  auto names = [&](const std::vector<std::string>& tiers) {
    std::vector<std::string> out;
    for (const ServedModel* m : router.allowed_models(tiers)) out.push_back(m->name);
    return out;
  };
  EXPECT_EQ(names({}), (std::vector<std::string>{"small-a", "medium-a", "medium-b", "large-a"}));
  EXPECT_EQ(names({"large", "small"}), (std::vector<std::string>{"small-a", "large-a"}));
  EXPECT_EQ(names({"medium"}), (std::vector<std::string>{"medium-a", "medium-b"}));
  EXPECT_TRUE(names({"xl"}).empty());
  EXPECT_TRUE(router.tier_allowed({}, "large"));
  EXPECT_FALSE(router.tier_allowed({"small"}, "large"));
}

}  // namespace
}  // namespace infergate::gateway
