// `infergate make-model --preset toy|small|medium --out FILE [--type f32|f16|q8_0] [--seed N]
// [--chat chatml|llama3|llama2]`: writes a llama GGUF with deterministic random weights and a
// BPE vocabulary learned from the text shipped in the repo.
#include <chrono>
#include <cstdio>
#include <string>

#include "cli.h"
#include "infergate/engine/gguf.h"
#include "infergate/engine/make_model.h"
#include "infergate/engine/model.h"

namespace infergate::app {

namespace {

kernels::WeightType parse_type(const std::string& s) {
  if (s == "f32" || s == "F32") return kernels::WeightType::f32;
  if (s == "f16" || s == "F16") return kernels::WeightType::f16;
  if (s == "q8_0" || s == "Q8_0") return kernels::WeightType::q8_0;
  throw UsageError("--type must be f32, f16 or q8_0, not '" + s + "'");
}

std::uint64_t parse_seed(const std::string& s) {
  std::size_t used = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != s.size() || s.empty() || s[0] == '-') throw UsageError("--seed must be a non-negative integer, not '" + s + "'");
  return v;
}

}  // namespace

int cmd_make_model(const std::vector<std::string>& args) {
  Flags f = parse_flags(args, {"preset", "out", "type", "seed", "chat", "config"});
  if (!f.positional.empty()) throw UsageError("unexpected argument " + f.positional[0]);
  const auto preset_name = f.get("preset");
  const auto out = f.get("out");
  if (!preset_name || !out) throw UsageError("--preset and --out are required");
  engine::MakeModelOptions o;
  const auto preset = engine::find_preset(*preset_name);
  if (!preset) throw UsageError("--preset must be toy, small or medium, not '" + *preset_name + "'");
  o.preset = *preset;
  if (auto t = f.get("type")) o.type = parse_type(*t);
  if (auto s = f.get("seed")) o.seed = parse_seed(*s);
  if (auto c = f.get("chat")) {
    const auto style = engine::parse_chat_style(*c);
    if (!style) throw UsageError("--chat must be chatml, llama3 or llama2, not '" + *c + "'");
    o.chat = *style;
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::uint64_t params = 0;
  try {
    params = engine::make_model(o, *out);
    engine::Model::load(*out);  // what we wrote must load
  } catch (const std::exception& e) {
    std::fprintf(stderr, "infergate make-model: %s\n", e.what());
    return kExitFailed;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("wrote %s: %s preset, %s weights, %.1fM parameters (%.2fs)\n", out->c_str(), o.preset.name.c_str(),
              kernels::weight_type_name(o.type), static_cast<double>(params) / 1e6, secs);
  return kExitOk;
}

}  // namespace infergate::app
