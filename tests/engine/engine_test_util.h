// Shared by the engine tests: the toy model built once per process (make-model, in memory).
#pragma once

#include <memory>
#include <vector>

#include "infergate/engine/gguf.h"
#include "infergate/engine/make_model.h"
#include "infergate/engine/model.h"

namespace infergate::engine::testing {

// Bytes of the toy model for a weight type; kept alive for the whole test process.
inline const std::vector<std::uint8_t>& toy_bytes(kernels::WeightType type) {
  static std::vector<std::uint8_t> cache[3];
  auto& b = cache[static_cast<int>(type)];
  if (b.empty()) {
    MakeModelOptions o;
    o.preset = *find_preset("toy");
    o.type = type;
    o.seed = 7;
    b = make_model_bytes(o);
  }
  return b;
}

inline std::shared_ptr<const Model> toy_model(kernels::WeightType type = kernels::WeightType::f32) {
  return Model::from_gguf(GgufFile::parse(toy_bytes(type), "toy"));
}

}  // namespace infergate::engine::testing
