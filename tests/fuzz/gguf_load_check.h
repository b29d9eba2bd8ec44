// What the GGUF fuzzer and the corpus regression test do with one input: parse it, load it as a
// llama model, then touch what the loader promised (the last byte of every weight view, a
// tokenizer round trip), so a view past the end of the buffer shows up under AddressSanitizer.
// Throws only GgufError or ModelError, the loader's documented errors.
#pragma once

#include <cstdint>
#include <span>

#include "infergate/engine/gguf.h"
#include "infergate/engine/model.h"

namespace infergate::engine::fuzzing {

inline std::uint8_t last_byte(const kernels::WeightMatrix& w) {
  return w.row(w.rows - 1)[kernels::row_bytes(w.type, w.cols) - 1];
}

// Returns true when the bytes load as a model.
inline bool load_and_touch(std::span<const std::uint8_t> bytes) {
  const auto model = Model::from_gguf(GgufFile::parse(bytes, "fuzz input"));
  const auto& c = model->config();
  volatile std::uint8_t sink = last_byte(model->token_embedding()) ^ last_byte(model->output());
  sink = sink ^ reinterpret_cast<const std::uint8_t*>(model->output_norm())[c.n_embd * 4 - 1];
  for (const auto& l : model->layers()) {
    for (const auto* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      sink = sink ^ last_byte(*w);
    }
    sink = sink ^ reinterpret_cast<const std::uint8_t*>(l.attn_norm)[c.n_embd * 4 - 1];
    sink = sink ^ reinterpret_cast<const std::uint8_t*>(l.ffn_norm)[c.n_embd * 4 - 1];
  }
  const auto& tok = model->tokenizer();
  const auto ids = tok.encode("Hi there, <|im_start|>user\n\xC3\xA9t\xC3\xA9 42!", true);
  for (const auto id : ids) {
    if (id < 0 || static_cast<std::size_t>(id) >= tok.vocab_size()) __builtin_trap();
  }
  (void)tok.decode(ids);
  return true;
}

}  // namespace infergate::engine::fuzzing
