// Writes the seed inputs of the GGUF fuzzer (tests/fuzz/corpus/gguf/): tiny llama models that
// load (SentencePiece and byte-level vocabularies; F32, F16 and Q8_0 weights; tied and separate
// output) and a few that are refused for one reason each. Every file stays well under 20 KB.
//   gguf_seeds OUT_DIR
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "infergate/engine/gguf.h"
#include "infergate/kernels/weights.h"

namespace {

namespace ie = infergate::engine;
namespace ik = infergate::kernels;

struct Tiny {
  std::string vocab = "llama";  // or "gpt2"
  ik::WeightType type = ik::WeightType::f32;
  std::uint64_t embd = 8, ff = 16, heads = 2, kv_heads = 1, layers = 1;
  bool tied = true;
  std::string arch = "llama";
  std::string skip_tensor;  // left out
};

std::vector<std::uint8_t> matrix_bytes(ik::WeightType t, std::uint64_t rows, std::uint64_t cols,
                                       std::uint32_t salt) {
  std::vector<float> row(cols);
  const auto rb = static_cast<std::size_t>(ik::row_bytes(t, static_cast<std::int64_t>(cols)));
  std::vector<std::uint8_t> out(rows * rb);
  for (std::uint64_t r = 0; r < rows; ++r) {
    for (std::uint64_t c = 0; c < cols; ++c) {
      row[c] = std::sin(static_cast<float>(salt * 131 + r * 17 + c)) * 0.3f;
    }
    auto* dst = out.data() + r * rb;
    switch (t) {
      case ik::WeightType::f32:
        std::memcpy(dst, row.data(), cols * 4);
        break;
      case ik::WeightType::f16:
        for (std::uint64_t c = 0; c < cols; ++c) {
          const std::uint16_t h = ik::fp32_to_fp16(row[c]);
          std::memcpy(dst + 2 * c, &h, 2);
        }
        break;
      case ik::WeightType::q8_0:
        ik::quantize_row_q8_0(row.data(), static_cast<std::int64_t>(cols),
                              reinterpret_cast<ik::BlockQ8_0*>(dst));
        break;
    }
  }
  return out;
}

std::uint32_t ggml_id(ik::WeightType t) {
  return t == ik::WeightType::f32 ? 0 : t == ik::WeightType::f16 ? 1 : 8;
}

void add_vocab(ie::GgufWriter& w, const std::string& kind) {
  if (kind == "llama") {
    const std::vector<std::string> tokens = {"<unk>",        "<s>", "</s>", "\xE2\x96\x81Hi",
                                             "\xE2\x96\x81", "H",   "i",    "<0x41>"};
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_string_array("tokenizer.ggml.tokens", tokens);
    w.add_f32_array("tokenizer.ggml.scores", {0, 0, 0, -1, -2, -3, -4, -5});
    w.add_i32_array("tokenizer.ggml.token_type", {2, 3, 3, 1, 1, 1, 1, 6});
    w.add_u32("tokenizer.ggml.unknown_token_id", 0);
    w.add_u32("tokenizer.ggml.bos_token_id", 1);
    w.add_u32("tokenizer.ggml.eos_token_id", 2);
    return;
  }
  // Byte-level: the 256 byte tokens in GPT-2's printable mapping, two merges, two specials.
  std::vector<std::string> tokens;
  auto cp = [](std::uint32_t c) {
    std::string s;
    if (c < 0x80) {
      s += static_cast<char>(c);
    } else {
      s += static_cast<char>(0xC0 | (c >> 6));
      s += static_cast<char>(0x80 | (c & 0x3F));
    }
    return s;
  };
  std::uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    tokens.push_back(cp(printable ? static_cast<std::uint32_t>(b) : next++));
  }
  tokens.push_back("Hi");
  tokens.push_back("\xC4\xA0t");  // "Ġt"
  tokens.push_back("<|im_start|>");
  tokens.push_back("<|im_end|>");
  std::vector<std::int32_t> types(tokens.size(), 1);
  types[258] = types[259] = 3;
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", "llama-bpe");
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_i32_array("tokenizer.ggml.token_type", types);
  w.add_string_array("tokenizer.ggml.merges", {"H i", "\xC4\xA0 t"});
  w.add_u32("tokenizer.ggml.bos_token_id", 258);
  w.add_u32("tokenizer.ggml.eos_token_id", 259);
  w.add_bool("tokenizer.ggml.add_bos_token", false);
}

std::vector<std::uint8_t> tiny(const Tiny& o) {
  ie::GgufWriter w;
  w.add_string("general.architecture", o.arch);
  w.add_string("general.name", "seed");
  w.add_u32(o.arch + ".context_length", 32);
  w.add_u32(o.arch + ".embedding_length", static_cast<std::uint32_t>(o.embd));
  w.add_u32(o.arch + ".block_count", static_cast<std::uint32_t>(o.layers));
  w.add_u32(o.arch + ".feed_forward_length", static_cast<std::uint32_t>(o.ff));
  w.add_u32(o.arch + ".attention.head_count", static_cast<std::uint32_t>(o.heads));
  w.add_u32(o.arch + ".attention.head_count_kv", static_cast<std::uint32_t>(o.kv_heads));
  w.add_f32(o.arch + ".attention.layer_norm_rms_epsilon", 1e-5f);
  w.add_f32(o.arch + ".rope.freq_base", 10000.0f);
  add_vocab(w, o.vocab);
  const std::uint64_t n_vocab = o.vocab == "llama" ? 8 : 260;
  const std::uint64_t kv = o.kv_heads * (o.embd / o.heads);
  std::uint32_t salt = 0;
  auto mat = [&](const std::string& name, std::uint64_t cols, std::uint64_t rows) {
    if (name == o.skip_tensor) return;
    w.add_tensor(name, {cols, rows}, ggml_id(o.type), matrix_bytes(o.type, rows, cols, ++salt));
  };
  auto norm = [&](const std::string& name) {
    if (name == o.skip_tensor) return;
    w.add_tensor(name, {o.embd}, 0, matrix_bytes(ik::WeightType::f32, 1, o.embd, ++salt));
  };
  mat("token_embd.weight", o.embd, n_vocab);
  for (std::uint64_t i = 0; i < o.layers; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    norm(p + "attn_norm.weight");
    mat(p + "attn_q.weight", o.embd, o.embd);
    mat(p + "attn_k.weight", o.embd, kv);
    mat(p + "attn_v.weight", o.embd, kv);
    mat(p + "attn_output.weight", o.embd, o.embd);
    norm(p + "ffn_norm.weight");
    mat(p + "ffn_gate.weight", o.embd, o.ff);
    mat(p + "ffn_up.weight", o.embd, o.ff);
    mat(p + "ffn_down.weight", o.ff, o.embd);
  }
  norm("output_norm.weight");
  if (!o.tied) mat("output.weight", o.embd, n_vocab);
  return w.serialize();
}

// Rewrites the ggml type of a tensor in serialized bytes (the writer refuses unknown types).
void set_type(std::vector<std::uint8_t>& b, const std::string& name, std::uint32_t type) {
  std::string needle(8, '\0');
  const std::uint64_t len = name.size();
  std::memcpy(needle.data(), &len, 8);
  needle += name;
  const std::string_view all(reinterpret_cast<const char*>(b.data()), b.size());
  std::size_t at = all.find(needle);
  if (at == std::string_view::npos) throw std::runtime_error("no tensor " + name);
  at += needle.size();
  std::uint32_t n_dims;
  std::memcpy(&n_dims, b.data() + at, 4);
  std::memcpy(b.data() + at + 4 + 8 * n_dims, &type, 4);
}

void save(const std::string& dir, const std::string& name, const std::vector<std::uint8_t>& b) {
  if (b.size() >= 20000)
    throw std::runtime_error(name + " is " + std::to_string(b.size()) + " bytes");
  std::ofstream(dir + "/" + name, std::ios::binary)
      .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  std::cout << name << ": " << b.size() << " bytes\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: gguf_seeds OUT_DIR\n";
    return 2;
  }
  const std::string dir = argv[1];
  try {
    save(dir, "valid-spm-f32-tied", tiny({}));
    save(dir, "valid-bpe-f16", tiny({.vocab = "gpt2", .type = ik::WeightType::f16, .tied = false}));
    save(dir, "valid-spm-q8_0-2layers",
         tiny({.type = ik::WeightType::q8_0, .embd = 32, .ff = 32, .heads = 4, .layers = 2}));
    auto ok = tiny({});
    auto bad = ok;
    bad[0] = 'X';
    save(dir, "bad-magic", bad);
    bad = ok;
    bad[4] = 4;
    save(dir, "bad-version-4", bad);
    save(dir, "truncated-in-metadata", {ok.begin(), ok.begin() + 200});
    save(dir, "truncated-in-data", {ok.begin(), ok.end() - 40});
    save(dir, "arch-gpt2", tiny({.arch = "gpt2"}));
    save(dir, "missing-ffn-up", tiny({.skip_tensor = "blk.0.ffn_up.weight"}));
    bad = tiny({});
    set_type(bad, "blk.0.ffn_up.weight", 12);
    save(dir, "type-q4_k", bad);
    save(dir, "heads-do-not-divide", tiny({.heads = 3}));
  } catch (const std::exception& e) {
    std::cerr << "gguf_seeds: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
