// The CPU backend's forward pass against a plain reference written here: straightforward loops
// in double precision over the dequantized weights, no paging, no batching.
#include <cmath>

#include <gtest/gtest.h>

#include "engine/engine_test_util.h"
#include "infergate/engine/backend.h"
#include "infergate/kernels/cpu/kernels.h"

namespace ie = infergate::engine;
using infergate::kernels::WeightType;

namespace {

using Mat = std::vector<double>;  // row-major rows x cols

Mat dequant(const infergate::kernels::WeightMatrix& w) {
  std::vector<float> row(static_cast<std::size_t>(w.cols));
  Mat m;
  for (std::int64_t r = 0; r < w.rows; ++r) {
    infergate::kernels::dequantize_row(w.type, w.row(r), w.cols, row.data());
    m.insert(m.end(), row.begin(), row.end());
  }
  return m;
}

std::vector<double> matvec(const Mat& m, std::int64_t rows, const std::vector<double>& x) {
  const auto cols = static_cast<std::int64_t>(x.size());
  std::vector<double> y(static_cast<std::size_t>(rows), 0.0);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c)
      y[r] += m[r * cols + c] * x[c];
  return y;
}

std::vector<double> rmsnorm(const std::vector<double>& x, const float* w, double eps) {
  double ss = 0;
  for (double v : x)
    ss += v * v;
  const double s = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + eps);
  std::vector<double> y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    y[i] = x[i] * s * w[i];
  return y;
}

void rope(std::vector<double>& v, std::int64_t heads, std::int64_t hd, std::int64_t rot,
          std::int64_t pos, double base) {
  for (std::int64_t h = 0; h < heads; ++h) {
    for (std::int64_t i = 0; i < rot; i += 2) {
      const double th = pos * std::pow(base, -static_cast<double>(i) / rot);
      const double a = v[h * hd + i], b = v[h * hd + i + 1];
      v[h * hd + i] = a * std::cos(th) - b * std::sin(th);
      v[h * hd + i + 1] = a * std::sin(th) + b * std::cos(th);
    }
  }
}

// Logits after each token of `tokens`, computed the textbook way.
std::vector<std::vector<double>> reference_logits(const ie::Model& m,
                                                  const std::vector<std::int32_t>& tokens) {
  const auto& c = m.config();
  const std::int64_t d = c.n_embd, hd = c.head_dim, group = c.n_head / c.n_head_kv;
  struct L {
    Mat q, k, v, o, g, u, dn;
  };
  std::vector<L> layers;
  for (const auto& l : m.layers())
    layers.push_back({dequant(l.wq), dequant(l.wk), dequant(l.wv), dequant(l.wo), dequant(l.w_gate),
                      dequant(l.w_up), dequant(l.w_down)});
  const Mat emb = dequant(m.token_embedding()), out = dequant(m.output());
  std::vector<std::vector<std::vector<double>>> kc(layers.size()), vc(layers.size());
  std::vector<std::vector<double>> result;
  for (std::size_t pos = 0; pos < tokens.size(); ++pos) {
    std::vector<double> x(emb.begin() + tokens[pos] * d, emb.begin() + (tokens[pos] + 1) * d);
    for (std::size_t li = 0; li < layers.size(); ++li) {
      const auto& W = layers[li];
      const auto& lw = m.layers()[li];
      auto h = rmsnorm(x, lw.attn_norm, c.rms_eps);
      auto q = matvec(W.q, d, h), k = matvec(W.k, c.kv_dim(), h), v = matvec(W.v, c.kv_dim(), h);
      rope(q, c.n_head, hd, c.rot_dim, static_cast<std::int64_t>(pos), c.rope_base);
      rope(k, c.n_head_kv, hd, c.rot_dim, static_cast<std::int64_t>(pos), c.rope_base);
      kc[li].push_back(k);
      vc[li].push_back(v);
      std::vector<double> att(static_cast<std::size_t>(d), 0.0);
      for (std::int64_t head = 0; head < c.n_head; ++head) {
        const std::int64_t kvh = head / group;
        std::vector<double> s(pos + 1);
        double mx = -1e300, sum = 0;
        for (std::size_t p = 0; p <= pos; ++p) {
          double dot = 0;
          for (std::int64_t i = 0; i < hd; ++i)
            dot += q[head * hd + i] * kc[li][p][kvh * hd + i];
          s[p] = dot / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, s[p]);
        }
        for (auto& e : s)
          sum += (e = std::exp(e - mx));
        for (std::size_t p = 0; p <= pos; ++p)
          for (std::int64_t i = 0; i < hd; ++i)
            att[head * hd + i] += s[p] / sum * vc[li][p][kvh * hd + i];
      }
      const auto o = matvec(W.o, d, att);
      for (std::int64_t i = 0; i < d; ++i)
        x[i] += o[i];
      h = rmsnorm(x, lw.ffn_norm, c.rms_eps);
      auto g = matvec(W.g, c.n_ff, h);
      const auto u = matvec(W.u, c.n_ff, h);
      for (std::int64_t i = 0; i < c.n_ff; ++i)
        g[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
      const auto dn = matvec(W.dn, d, g);
      for (std::int64_t i = 0; i < d; ++i)
        x[i] += dn[i];
    }
    result.push_back(matvec(out, c.n_vocab, rmsnorm(x, m.output_norm(), c.rms_eps)));
  }
  return result;
}

// Runs tokens through the backend one chunk per call (chunk tokens at a time), block size 4 so
// that sequences span many blocks, and returns the logits after every token.
std::vector<std::vector<float>> backend_logits(std::shared_ptr<const ie::Model> m,
                                               const std::vector<std::int32_t>& tokens,
                                               std::int64_t chunk, ie::KvType kv = ie::KvType::f32) {
  const auto n_vocab = m->config().n_vocab;
  auto be = ie::make_cpu_backend(m, {64, 4, kv}, 2, 64);
  // A scrambled block table: positions need not live in consecutive blocks.
  std::vector<std::int32_t> blocks;
  for (int b = 0; b < 16; ++b)
    blocks.push_back((b * 7 + 3) % 64);
  std::vector<std::vector<float>> out;
  for (std::size_t p = 0; p < tokens.size();) {
    // One token per call to get the logits after every token, or `chunk` at once for the last.
    const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(chunk), tokens.size() - p);
    for (std::size_t j = 0; j < n; ++j) {
      std::vector<float> logits(static_cast<std::size_t>(n_vocab));
      ie::StepSequence s{std::span(tokens).subspan(p + j, 1), static_cast<std::int64_t>(p + j),
                         blocks, true};
      be->forward(std::span(&s, 1), logits.data());
      out.push_back(std::move(logits));
    }
    p += n;
  }
  return out;
}

void expect_close(const std::vector<std::vector<float>>& got,
                  const std::vector<std::vector<double>>& ref, double rel) {
  ASSERT_EQ(got.size(), ref.size());
  for (std::size_t p = 0; p < ref.size(); ++p) {
    double err = 0, norm = 0;
    for (std::size_t i = 0; i < ref[p].size(); ++i) {
      err += (got[p][i] - ref[p][i]) * (got[p][i] - ref[p][i]);
      norm += ref[p][i] * ref[p][i];
    }
    EXPECT_LT(std::sqrt(err / norm), rel) << "position " << p;
  }
}

const std::vector<std::int32_t> kTokens = {1,   17, 200, 45, 45, 3, 99, 310, 5,
                                           250, 11, 60,  61, 62, 7, 8,  9,   120};

}  // namespace

TEST(Forward, F32MatchesDoublePrecisionReferenceWithin1e4) {
  auto m = ie::testing::toy_model(WeightType::f32);
  expect_close(backend_logits(m, kTokens, 1), reference_logits(*m, kTokens), 1e-4);
}

TEST(Forward, F16MatchesReferenceOfItsOwnWeightsWithin1e4) {
  auto m = ie::testing::toy_model(WeightType::f16);
  expect_close(backend_logits(m, kTokens, 1), reference_logits(*m, kTokens), 1e-4);
}

// Q8_0 rounds the activations to 8 bits before every product (as ggml does); against the
// double reference over the same (dequantized) weights the logits stay within 2% (relative L2).
TEST(Forward, Q8MatchesReferenceWithinStatedBound) {
  auto m = ie::testing::toy_model(WeightType::q8_0);
  expect_close(backend_logits(m, kTokens, 1), reference_logits(*m, kTokens), 2e-2);
}

// An F16 KV cache rounds every key and value to 11 significant bits: F32 weights stay within
// 1e-3 of the double reference, and Q8_0 within its 2% (the production pairing, kv auto).
TEST(Forward, F16KvCacheStaysWithinStatedBounds) {
  auto f32 = ie::testing::toy_model(WeightType::f32);
  expect_close(backend_logits(f32, kTokens, 1, ie::KvType::f16), reference_logits(*f32, kTokens), 1e-3);
  auto q8 = ie::testing::toy_model(WeightType::q8_0);
  expect_close(backend_logits(q8, kTokens, 1, ie::KvType::f16), reference_logits(*q8, kTokens), 2e-2);
}

TEST(Forward, PrefillInOneStepEqualsTokenByToken) {
  auto m = ie::testing::toy_model();
  const auto n_vocab = m->config().n_vocab;
  const auto one_by_one = backend_logits(m, kTokens, 1);
  auto be = ie::make_cpu_backend(m, {8, 16}, 2, 64);
  const std::vector<std::int32_t> blocks = {5, 2};
  std::vector<float> logits(static_cast<std::size_t>(n_vocab));
  ie::StepSequence s{kTokens, 0, blocks, true};
  be->forward(std::span(&s, 1), logits.data());
  for (std::int64_t i = 0; i < n_vocab; ++i)
    ASSERT_NEAR(logits[i], one_by_one.back()[i], 1e-4);
}

// A long prompt in one step: every per-token pass (norms, rotary and cache writes, activations,
// residual adds) and the activation quantization then run across the pool, some pieces of the
// quantization empty (more pieces than the toy model's two blocks a row). The logits are those
// of feeding the prompt one token a step, bit for bit, for each weight type and cache type.
TEST(Forward, LongPrefillAcrossThePoolEqualsTokenByTokenExactly) {
  std::vector<std::int32_t> prompt(140);
  for (std::size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<std::int32_t>(1 + i * 37 % 383);
  for (const WeightType type : {WeightType::f32, WeightType::q8_0}) {
    for (const ie::KvType kv : {ie::KvType::f32, ie::KvType::f16}) {
      auto m = ie::testing::toy_model(type);
      const auto n_vocab = static_cast<std::size_t>(m->config().n_vocab);
      std::vector<std::int32_t> blocks;
      for (int b = 0; b < 9; ++b) blocks.push_back((b * 5 + 2) % 9);
      auto alone = ie::make_cpu_backend(m, {9, 16, kv}, 2, 256);
      std::vector<float> step(n_vocab), whole(n_vocab);
      for (std::size_t p = 0; p < prompt.size(); ++p) {
        ie::StepSequence s{std::span(prompt).subspan(p, 1), static_cast<std::int64_t>(p), blocks, true};
        alone->forward(std::span(&s, 1), step.data());
      }
      auto at_once = ie::make_cpu_backend(m, {9, 16, kv}, 2, 256);
      ie::StepSequence s{prompt, 0, blocks, true};
      at_once->forward(std::span(&s, 1), whole.data());
      for (std::size_t i = 0; i < n_vocab; ++i) {
        ASSERT_EQ(whole[i], step[i]) << "type " << static_cast<int>(type) << " kv " << static_cast<int>(kv) << " logit " << i;
      }
    }
  }
}

TEST(Forward, RejectsBadBatches) {
  auto m = ie::testing::toy_model();
  auto be = ie::make_cpu_backend(m, {4, 4}, 1, 8);
  std::vector<float> logits(static_cast<std::size_t>(m->config().n_vocab) * 2);
  const std::vector<std::int32_t> blocks = {0};
  const std::vector<std::int32_t> too_many(9, 1), five(5, 1), bad_id = {100000};
  ie::StepSequence a{too_many, 0, std::vector<std::int32_t>{0, 1, 2}, true};
  EXPECT_THROW(be->forward(std::span(&a, 1), logits.data()), std::invalid_argument);
  ie::StepSequence b{five, 0, blocks, true};  // 5 positions, one block of 4
  EXPECT_THROW(be->forward(std::span(&b, 1), logits.data()), std::invalid_argument);
  ie::StepSequence c{bad_id, 0, blocks, true};
  EXPECT_THROW(be->forward(std::span(&c, 1), logits.data()), std::invalid_argument);
}

// engine.threads = 0: a model whose weights stay in one core's cache runs on the engine thread
// alone; anything larger gets every hardware thread.
TEST(CpuThreads, AutoUsesOneThreadForAModelThatFitsOneCoreAndAllOtherwise) {
  const auto toy = ie::testing::toy_model();
  ASSERT_LT(toy->weight_bytes_per_token(), std::uint64_t{4} << 20);
  EXPECT_EQ(ie::auto_cpu_threads(*toy, 8), 1u);
  EXPECT_EQ(ie::auto_cpu_threads(*toy, 1), 1u);

  ie::MakeModelOptions o;
  o.preset = {"wider", 384, 256, 2, 4, 2, 768, 128};  // about 6.7 MB of F32 weights
  const auto wider = ie::Model::from_gguf(ie::GgufFile::parse(ie::make_model_bytes(o), "wider"));
  ASSERT_GT(wider->weight_bytes_per_token(), std::uint64_t{4} << 20);
  EXPECT_EQ(ie::auto_cpu_threads(*wider, 8), 8u);
  EXPECT_EQ(ie::auto_cpu_threads(*wider, 2), 2u);
  EXPECT_EQ(ie::auto_cpu_threads(*wider, 0), 1u);  // hardware_concurrency may say 0: unknown
}
