// Each CPU kernel against its plain version on random inputs, including odd sizes, for every
// instruction set this CPU has.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "infergate/kernels/cpu/kernels.h"

namespace kc = infergate::kernels::cpu;
using infergate::kernels::BlockQ8_0;
using infergate::kernels::WeightMatrix;
using infergate::kernels::WeightType;

namespace {

std::vector<float> random_floats(std::size_t n, std::uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Weights in the requested format, plus their exact float values (after rounding to the format).
struct TestWeights {
  std::vector<std::uint8_t> bytes;
  std::vector<float> values;
  WeightMatrix view;
};

TestWeights make_weights(WeightType type, std::int64_t rows, std::int64_t cols, std::uint32_t seed) {
  TestWeights tw;
  const auto f = random_floats(static_cast<std::size_t>(rows * cols), seed);
  const std::int64_t rb = infergate::kernels::row_bytes(type, cols);
  tw.bytes.resize(static_cast<std::size_t>(rows * rb));
  tw.values.resize(f.size());
  for (std::int64_t r = 0; r < rows; ++r) {
    std::uint8_t* dst = tw.bytes.data() + r * rb;
    const float* src = f.data() + r * cols;
    switch (type) {
      case WeightType::f32: std::memcpy(dst, src, static_cast<std::size_t>(cols) * 4); break;
      case WeightType::f16: {
        auto* h = reinterpret_cast<std::uint16_t*>(dst);
        for (std::int64_t c = 0; c < cols; ++c) h[c] = infergate::kernels::fp32_to_fp16(src[c]);
        break;
      }
      case WeightType::q8_0:
        infergate::kernels::quantize_row_q8_0(src, cols, reinterpret_cast<BlockQ8_0*>(dst));
        break;
    }
    infergate::kernels::dequantize_row(type, dst, cols, tw.values.data() + r * cols);
  }
  tw.view = WeightMatrix{type, tw.bytes.data(), rows, cols};
  return tw;
}

std::vector<kc::Isa> isas() {
  std::vector<kc::Isa> out{kc::Isa::scalar};
  if (kc::isa_supported(kc::Isa::avx2)) out.push_back(kc::Isa::avx2);
  if (kc::isa_supported(kc::Isa::avx512)) out.push_back(kc::Isa::avx512);
  if (kc::isa_supported(kc::Isa::avx512vnni)) out.push_back(kc::Isa::avx512vnni);
  if (kc::isa_supported(kc::Isa::amx)) out.push_back(kc::Isa::amx);
  return out;
}

}  // namespace

TEST(Fp16, RoundTripsEveryHalf) {
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const float f = infergate::kernels::fp16_to_fp32(static_cast<std::uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(infergate::kernels::fp32_to_fp16(f), h) << "half " << h;
  }
  EXPECT_EQ(infergate::kernels::fp32_to_fp16(1e6f), 0x7c00);       // overflow -> inf
  EXPECT_EQ(infergate::kernels::fp32_to_fp16(1.0f + 1.0f / 4096), 0x3c00);  // ties to even
}

class MatmulTest : public ::testing::TestWithParam<std::tuple<WeightType, int, int, int>> {};

TEST_P(MatmulTest, EveryIsaMatchesDoublePrecisionProduct) {
  const auto [type, rows, cols, tokens] = GetParam();
  const TestWeights w = make_weights(type, rows, cols, 7);
  const auto x = random_floats(static_cast<std::size_t>(tokens * cols), 11);
  for (const kc::Isa isa : isas()) {
    std::vector<float> y(static_cast<std::size_t>(tokens * rows), -1.0f);
    kc::matmul_isa(isa, w.view, x.data(), tokens, y.data());
    for (int t = 0; t < tokens; ++t) {
      for (int r = 0; r < rows; ++r) {
        double ref = 0, mag = 0;
        for (int c = 0; c < cols; ++c) {
          ref += static_cast<double>(w.values[r * cols + c]) * x[t * cols + c];
          mag += std::fabs(static_cast<double>(w.values[r * cols + c]) * x[t * cols + c]);
        }
        // F32/F16: float accumulation only. Q8_0: the activations are rounded to 8 bits too,
        // an error of at most half a step (max|x|/254) per element of a 32-block.
        const double tol = type == WeightType::q8_0 ? 1.0 / 254 * cols * 1.0 + 1e-4 : 1e-5 * mag + 1e-6;
        ASSERT_NEAR(y[t * rows + r], ref, tol)
            << kc::isa_name(isa) << " row " << r << " token " << t;
      }
    }
  }
}

TEST_P(MatmulTest, SimdEqualsScalarAndThreadPoolSplitsRows) {
  const auto [type, rows, cols, tokens] = GetParam();
  const TestWeights w = make_weights(type, rows, cols, 3);
  const auto x = random_floats(static_cast<std::size_t>(tokens * cols), 5);
  std::vector<float> ref(static_cast<std::size_t>(tokens * rows));
  kc::matmul_isa(kc::Isa::scalar, w.view, x.data(), tokens, ref.data());
  kc::ThreadPool pool(3);
  for (const kc::Isa isa : isas()) {
    kc::force_isa(isa);
    std::vector<float> y(ref.size(), -1.0f);
    kc::matmul(w.view, x.data(), tokens, y.data(), pool);
    for (std::size_t i = 0; i < y.size(); ++i) {
      ASSERT_NEAR(y[i], ref[i], 1e-4 * (1 + std::fabs(ref[i]))) << kc::isa_name(isa) << " at " << i;
    }
  }
  kc::force_isa(isas().back());
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, MatmulTest,
    ::testing::Combine(::testing::Values(WeightType::f32, WeightType::f16, WeightType::q8_0),
                       ::testing::Values(1, 7, 37, 300), ::testing::Values(64, 96, 352),
                       ::testing::Values(1, 2, 5, 16)));

TEST(MatmulOddColumns, FloatTypesHandleColumnTails) {
  for (const int cols : {1, 3, 17, 33, 45}) {
    for (const WeightType type : {WeightType::f32, WeightType::f16}) {
      const TestWeights w = make_weights(type, 9, cols, 13);
      const auto x = random_floats(static_cast<std::size_t>(3 * cols), 17);
      std::vector<float> ref(27), y(27);
      kc::matmul_isa(kc::Isa::scalar, w.view, x.data(), 3, ref.data());
      for (const kc::Isa isa : isas()) {
        kc::matmul_isa(isa, w.view, x.data(), 3, y.data());
        for (int i = 0; i < 27; ++i) ASSERT_NEAR(y[i], ref[i], 1e-5) << cols << " " << kc::isa_name(isa);
      }
    }
  }
}

// Q8_0 rows longer than a kernel's scale chunk (64 blocks) and with odd block counts, against
// the portable product.
TEST(MatmulQ8, LongAndOddBlockCountsMatchScalar) {
  for (const int blocks : {1, 2, 63, 65, 67, 129}) {
    const int cols = 32 * blocks, rows = 13, tokens = 6;
    const TestWeights w = make_weights(WeightType::q8_0, rows, cols, 21);
    const auto x = random_floats(static_cast<std::size_t>(tokens * cols), 23);
    std::vector<float> ref(rows * tokens), y(rows * tokens);
    kc::matmul_isa(kc::Isa::scalar, w.view, x.data(), tokens, ref.data());
    for (const kc::Isa isa : isas()) {
      kc::matmul_isa(isa, w.view, x.data(), tokens, y.data());
      for (int i = 0; i < rows * tokens; ++i) {
        ASSERT_NEAR(y[i], ref[i], 1e-4 * (1 + std::fabs(ref[i]))) << blocks << " blocks, " << kc::isa_name(isa);
      }
    }
  }
}

// Batched decode must give the tokens decoding alone gives: a token's outputs may not depend on
// how many other tokens share the product (tile shape, remainder tiles), bit for bit.
TEST(MatmulBatchInvariance, EachTokenAsIfAlone) {
  for (const WeightType type : {WeightType::f32, WeightType::f16, WeightType::q8_0}) {
    for (const int cols : {96, 352, 2144}) {
      const int rows = 45, tokens = 16;
      const TestWeights w = make_weights(type, rows, cols, 31);
      const auto x = random_floats(static_cast<std::size_t>(tokens * cols), 37);
      for (const kc::Isa isa : isas()) {
        std::vector<float> all(rows * tokens), one(rows);
        kc::matmul_isa(isa, w.view, x.data(), tokens, all.data());
        for (const int n : {1, 3, 5, 16}) {
          std::vector<float> part(rows * n);
          kc::matmul_isa(isa, w.view, x.data(), n, part.data());
          for (int i = 0; i < rows * n; ++i) ASSERT_EQ(part[i], all[i]) << kc::isa_name(isa) << " n " << n;
        }
        for (int t = 0; t < tokens; ++t) {
          kc::matmul_isa(isa, w.view, x.data() + t * cols, 1, one.data());
          for (int r = 0; r < rows; ++r) {
            ASSERT_EQ(one[r], all[t * rows + r]) << kc::isa_name(isa) << " cols " << cols << " token " << t;
          }
        }
      }
    }
  }
}

// Products over several token groups (the AMX kernel takes 16 tokens at a time; 40 leaves a
// group of 8) and row groups with a tail (45 = 16 + 16 + 13), odd block counts: each ISA
// against the portable product, and each token's result as if it were alone, bit for bit.
TEST(MatmulQ8, TokenGroupsAndRowTailsMatchScalarAndAreBatchInvariant) {
  // Block counts 1, 4, 11, 24 and 65: a token group's blocks go in pairs on two sets of C tiles,
  // so both parities of the pair count and an odd last block are covered.
  for (const int cols : {32, 128, 352, 768, 2080}) {
    const int rows = 45, tokens = 40;
    const TestWeights w = make_weights(WeightType::q8_0, rows, cols, 41);
    const auto x = random_floats(static_cast<std::size_t>(tokens * cols), 43);
    std::vector<float> ref(rows * tokens);
    kc::matmul_isa(kc::Isa::scalar, w.view, x.data(), tokens, ref.data());
    kc::ThreadPool pool(2);
    for (const kc::Isa isa : isas()) {
      std::vector<float> all(rows * tokens, -1.0f), pooled(rows * tokens, -1.0f), one(rows);
      kc::matmul_isa(isa, w.view, x.data(), tokens, all.data());
      for (int i = 0; i < rows * tokens; ++i) {
        ASSERT_NEAR(all[i], ref[i], 1e-4 * (1 + std::fabs(ref[i]))) << kc::isa_name(isa) << " cols " << cols << " at " << i;
      }
      kc::force_isa(isa);
      kc::matmul(w.view, x.data(), tokens, pooled.data(), pool);
      for (int i = 0; i < rows * tokens; ++i) ASSERT_EQ(pooled[i], all[i]) << kc::isa_name(isa) << " pooled at " << i;
      for (int t = 0; t < tokens; ++t) {
        kc::matmul_isa(isa, w.view, x.data() + t * cols, 1, one.data());
        for (int r = 0; r < rows; ++r) {
          ASSERT_EQ(one[r], all[t * rows + r]) << kc::isa_name(isa) << " cols " << cols << " token " << t << " row " << r;
        }
      }
      if (isa != kc::Isa::amx) continue;
      // The repacked copy (other kernels, other loads) gives the same floats: whole, pooled,
      // one token alone, and 17 tokens (a group of 16 and a single one).
      std::vector<std::uint8_t> packed(kc::amx_packed_bytes(w.view));
      kc::pack_q8_0_amx(w.view, packed.data());
      WeightMatrix pw = w.view;
      pw.packed = packed.data();
      std::vector<float> p_all(rows * tokens, -1.0f), p_pooled(rows * tokens, -1.0f), p17(rows * 17, -1.0f);
      kc::matmul_isa(isa, pw, x.data(), tokens, p_all.data());
      kc::matmul(pw, x.data(), tokens, p_pooled.data(), pool);
      kc::matmul_isa(isa, pw, x.data(), 17, p17.data());
      for (int i = 0; i < rows * tokens; ++i) {
        ASSERT_EQ(p_all[i], all[i]) << "packed, cols " << cols << " at " << i;
        ASSERT_EQ(p_pooled[i], all[i]) << "packed pooled, cols " << cols << " at " << i;
      }
      for (int i = 0; i < rows * 17; ++i) ASSERT_EQ(p17[i], all[i]) << "packed 17 tokens, cols " << cols << " at " << i;
      for (int t = 0; t < tokens; ++t) {
        kc::matmul(pw, x.data() + t * cols, 1, one.data(), pool);
        for (int r = 0; r < rows; ++r) ASSERT_EQ(one[r], all[t * rows + r]) << "packed alone, cols " << cols << " token " << t << " row " << r;
      }
    }
    kc::force_isa(isas().back());
  }
}

// Small F32 matrices with a column-major copy (rows in the lanes): against the portable
// product, and each token bit for bit as if alone, whole, pooled, alone and in batches of 2 to 4
// (which take more rows a pass: 200 rows are a pass of 128, one of 64 and a tail), on every ISA
// (the ones without AVX-512 ignore the copy), with row tails (45 rows) and odd column counts.
TEST(MatmulF32Columns, MatchScalarAndAreBatchInvariant) {
  for (const auto& [rows, cols] : std::vector<std::pair<int, int>>{{45, 17}, {45, 64}, {45, 192}, {200, 64}, {200, 17}}) {
    const int tokens = 21;
    const TestWeights w = make_weights(WeightType::f32, rows, cols, 81);
    std::vector<std::uint8_t> packed(kc::f32_columns_bytes(w.view));
    kc::pack_f32_columns(w.view, packed.data());
    WeightMatrix pw = w.view;
    pw.packed = packed.data();
    const auto x = random_floats(static_cast<std::size_t>(tokens * cols), 83);
    std::vector<float> ref(rows * tokens);
    kc::matmul_isa(kc::Isa::scalar, w.view, x.data(), tokens, ref.data());
    kc::ThreadPool pool(2);
    for (const kc::Isa isa : isas()) {
      std::vector<float> all(rows * tokens, -1.0f), pooled(rows * tokens, -1.0f), one(rows);
      kc::matmul_isa(isa, pw, x.data(), tokens, all.data());
      for (int i = 0; i < rows * tokens; ++i) {
        ASSERT_NEAR(all[i], ref[i], 1e-5 * (1 + std::fabs(ref[i]))) << kc::isa_name(isa) << " cols " << cols << " at " << i;
      }
      kc::force_isa(isa);
      kc::matmul(pw, x.data(), tokens, pooled.data(), pool);
      for (int i = 0; i < rows * tokens; ++i) ASSERT_EQ(pooled[i], all[i]) << kc::isa_name(isa) << " pooled at " << i;
      for (int t = 0; t < tokens; ++t) {
        kc::matmul(pw, x.data() + t * cols, 1, one.data(), pool);
        for (int r = 0; r < rows; ++r) ASSERT_EQ(one[r], all[t * rows + r]) << kc::isa_name(isa) << " cols " << cols << " token " << t;
      }
      for (int n = 2; n <= 4; ++n) {
        std::vector<float> few(static_cast<std::size_t>(rows * n));
        for (int t = 0; t + n <= tokens; t += n) {
          kc::matmul(pw, x.data() + t * cols, n, few.data(), pool);
          for (int i = 0; i < rows * n; ++i)
            ASSERT_EQ(few[i], all[t * rows + i]) << kc::isa_name(isa) << " rows " << rows << " cols " << cols << " batch of " << n;
        }
      }
    }
    kc::force_isa(isas().back());
  }
}

// An activation block so small that its scale (max / 127) is not a normal float: it must
// contribute nothing on every ISA and path (its reciprocal would overflow and quantize it to
// saturated garbage), while the other blocks of the row still count.
TEST(MatmulQ8, TinyActivationBlocksContributeNothingOnEveryPath) {
  const int rows = 20, cols = 64, tokens = 2;
  const TestWeights w = make_weights(WeightType::q8_0, rows, cols, 91);
  auto x = random_floats(static_cast<std::size_t>(tokens * cols), 93);
  // Token 0: block 0 tiny, block 1 zero, so its outputs are the tiny block's contribution alone
  // (exactly 0 once it is dropped; without that, saturated garbage times a subnormal scale,
  // different on each path). Token 1 is ordinary.
  for (int c = 0; c < 32; ++c) x[static_cast<std::size_t>(c)] = (c % 2 ? 1e-37f : -3e-38f);
  for (int c = 32; c < 64; ++c) x[static_cast<std::size_t>(c)] = 0.0f;
  auto x_zero = x;
  for (int c = 0; c < 32; ++c) x_zero[static_cast<std::size_t>(c)] = 0.0f;
  std::vector<float> want(rows * tokens), got(rows * tokens);
  kc::matmul_isa(kc::Isa::scalar, w.view, x_zero.data(), tokens, want.data());
  std::vector<std::uint8_t> packed(kc::amx_packed_bytes(w.view));
  kc::pack_q8_0_amx(w.view, packed.data());
  for (const kc::Isa isa : isas()) {
    for (const bool use_packed : {false, true}) {
      WeightMatrix m = w.view;
      if (use_packed) m.packed = packed.data();
      kc::matmul_isa(isa, m, x.data(), tokens, got.data());
      std::vector<float> zero_in(rows * tokens);
      kc::matmul_isa(isa, m, x_zero.data(), tokens, zero_in.data());
      for (int i = 0; i < rows * tokens; ++i) {
        ASSERT_EQ(got[i], zero_in[i]) << kc::isa_name(isa) << (use_packed ? " packed" : "") << " at " << i;
        ASSERT_NEAR(got[i], want[i], 1e-4 * (1 + std::fabs(want[i]))) << kc::isa_name(isa) << " at " << i;
      }
    }
  }
}

TEST(Ops, RmsnormMatchesDefinition) {
  for (const int n : {1, 3, 8, 16, 67, 4096}) {  // the vector loop, its tail, and each alone
    const auto x = random_floats(static_cast<std::size_t>(n), 1, 3.0f);
    const auto w = random_floats(static_cast<std::size_t>(n), 2);
    std::vector<float> out(static_cast<std::size_t>(n));
    kc::rmsnorm(x.data(), w.data(), n, 1e-5f, out.data());
    double ss = 0;
    for (float v : x) ss += static_cast<double>(v) * v;
    const double s = 1.0 / std::sqrt(ss / n + 1e-5);
    for (int i = 0; i < n; ++i) ASSERT_NEAR(out[i], x[i] * s * w[i], 1e-5 * (1 + std::fabs(x[i] * s * w[i]))) << n << " at " << i;
  }
}

// Greedy sampling's choice: the first index of the largest value, as a plain loop finds it.
TEST(Ops, ArgmaxIsTheFirstLargest) {
  auto loop = [](const std::vector<float>& x) {
    std::int64_t best = 0;
    for (std::size_t i = 1; i < x.size(); ++i) {
      if (x[i] > x[static_cast<std::size_t>(best)]) best = static_cast<std::int64_t>(i);
    }
    return best;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (const int n : {1, 2, 15, 16, 17, 31, 33, 384, 1000}) {
    for (int seed = 0; seed < 20; ++seed) {
      auto x = random_floats(static_cast<std::size_t>(n), static_cast<std::uint32_t>(100 + seed), 4.0f);
      // Ties at the top (rounded values repeat), infinities and NaNs at chosen places.
      if (seed % 4 == 1) for (auto& v : x) v = std::round(v);
      if (seed % 5 == 2) x[static_cast<std::size_t>(n / 2)] = nan;
      if (seed % 7 == 3) x[static_cast<std::size_t>(n - 1)] = -inf;
      if (seed % 6 == 4) x[static_cast<std::size_t>((n * 2) / 3)] = inf;
      ASSERT_EQ(kc::argmax(x.data(), n), loop(x)) << "n " << n << " seed " << seed;
    }
  }
  const std::vector<float> ties{1.0f, 3.0f, 2.0f, 3.0f}, first_nan{nan, 5.0f, 7.0f}, all_low(40, -inf);
  EXPECT_EQ(kc::argmax(ties.data(), 4), 1);
  EXPECT_EQ(kc::argmax(first_nan.data(), 3), 0);
  EXPECT_EQ(kc::argmax(all_low.data(), 40), 0);
  std::vector<float> late(40, -1.0f);
  late[37] = 0.5f;
  late[20] = nan;
  EXPECT_EQ(kc::argmax(late.data(), 40), 37);
  EXPECT_EQ(kc::argmax(late.data(), 0), 0);
}

TEST(Ops, RopeRotatesConsecutivePairs) {
  auto x = random_floats(2 * 10, 3);
  const auto orig = x;
  kc::rope(x.data(), 2, 10, 8, 5, 10000.0f);
  for (int h = 0; h < 2; ++h) {
    for (int i = 0; i < 10; i += 2) {
      const double theta = i < 8 ? 5 * std::pow(10000.0, -i / 8.0) : 0.0;
      const double a = orig[h * 10 + i], b = orig[h * 10 + i + 1];
      ASSERT_NEAR(x[h * 10 + i], a * std::cos(theta) - b * std::sin(theta), 1e-5);
      ASSERT_NEAR(x[h * 10 + i + 1], a * std::sin(theta) + b * std::cos(theta), 1e-5);
    }
  }
}

TEST(Ops, RopeFromAngleTableEqualsRopeAtEveryPosition) {
  // 2 heads of 10 with 8 rotated: the table form must give the same floats as rope() itself.
  std::vector<float> table(40 * 8);
  kc::rope_angles(40, 8, 500000.0f, table.data());
  for (std::int64_t pos : {0, 1, 7, 39}) {
    auto a = random_floats(2 * 10, static_cast<unsigned>(pos) + 11);
    auto b = a;
    kc::rope(a.data(), 2, 10, 8, pos, 500000.0f);
    kc::rope_cached(b.data(), 2, 10, 8, &table[static_cast<std::size_t>(pos) * 8]);
    for (std::size_t i = 0; i < a.size(); ++i) ASSERT_FLOAT_EQ(a[i], b[i]) << "pos " << pos << " element " << i;
  }
}

TEST(Ops, SoftmaxSiluAdd) {
  auto x = random_floats(13, 4, 20.0f);
  auto ref = x;
  kc::softmax(x.data(), 13);
  double mx = *std::max_element(ref.begin(), ref.end()), sum = 0;
  for (float v : ref) sum += std::exp(v - mx);
  for (int i = 0; i < 13; ++i) ASSERT_NEAR(x[i], std::exp(ref[i] - mx) / sum, 1e-6);

  const auto g = random_floats(19, 5, 4.0f), u = random_floats(19, 6);
  std::vector<float> o(19);
  kc::silu_mul(g.data(), u.data(), 19, o.data());
  for (int i = 0; i < 19; ++i) ASSERT_NEAR(o[i], g[i] / (1 + std::exp(-double(g[i]))) * u[i], 1e-6);

  auto a = random_floats(9, 7);
  const auto a0 = a, b = random_floats(9, 8);
  kc::add_inplace(a.data(), b.data(), 9);
  for (int i = 0; i < 9; ++i) ASSERT_FLOAT_EQ(a[i], a0[i] + b[i]);
}

// Rows of a short context's attention (up to 16 values take a path of their own) and just past.
TEST(Ops, SoftmaxOfShortRowsMatchesDoubleOnEveryIsa) {
  for (const kc::Isa isa : isas()) {
    kc::force_isa(isa);
    for (int n = 1; n <= 40; ++n) {
      const auto x = random_floats(static_cast<std::size_t>(n), static_cast<std::uint32_t>(200 + n), 8.0f);
      auto y = x;
      kc::softmax(y.data(), n);
      const double mx = *std::max_element(x.begin(), x.end());
      double sum = 0;
      for (float v : x) sum += std::exp(v - mx);
      for (int i = 0; i < n; ++i) {
        const double want = std::exp(x[static_cast<std::size_t>(i)] - mx) / sum;
        ASSERT_NEAR(y[static_cast<std::size_t>(i)], want, 2e-6 * want + 1e-12) << kc::isa_name(isa) << " n " << n << " at " << i;
      }
    }
  }
  kc::force_isa(isas().back());
}

TEST(Ops, SiluAndSoftmaxMatchDoubleOnEveryIsaAcrossTheExpRange) {
  // Values from -100 to 100 (past both ends of float exp's range), a length with a tail.
  std::vector<float> g(1003), u(1003);
  for (std::size_t i = 0; i < g.size(); ++i) {
    g[i] = -100.0f + 200.0f * static_cast<float>(i) / 1002.0f;
    u[i] = 0.5f + static_cast<float>(i % 7) * 0.25f;
  }
  for (const kc::Isa isa : isas()) {
    kc::force_isa(isa);
    std::vector<float> o(g.size());
    kc::silu_mul(g.data(), u.data(), static_cast<std::int64_t>(g.size()), o.data());
    for (std::size_t i = 0; i < g.size(); ++i) {
      const double want = g[i] / (1 + std::exp(-double(g[i]))) * u[i];
      ASSERT_NEAR(o[i], want, 4e-7 * std::abs(want) + 1e-30) << kc::isa_name(isa) << " at " << g[i];
    }
    // Softmax over a spread of 60 (the smallest terms are about e^-60 of the largest).
    std::vector<float> x(517);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = -30.0f + 60.0f * static_cast<float>((i * 37) % 517) / 516.0f;
    auto y = x;
    kc::softmax(y.data(), static_cast<std::int64_t>(y.size()));
    const double mx = *std::max_element(x.begin(), x.end());
    double sum = 0;
    for (float v : x) sum += std::exp(v - mx);
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double want = std::exp(x[i] - mx) / sum;
      ASSERT_NEAR(y[i], want, 2e-6 * want + 1e-12) << kc::isa_name(isa) << " element " << i;
    }
  }
  kc::force_isa(isas().back());
}

namespace {

void check_attend(const int head_dim) {
  const int block = 4, n_pos = 11, stride = 3 * head_dim;  // 3 heads per row
  const auto q = random_floats(head_dim, 9);
  std::vector<std::vector<float>> kb(3, std::vector<float>(block * stride)),
      vb(3, std::vector<float>(block * stride));
  std::vector<std::vector<float>> kc_(n_pos), vc(n_pos);
  std::mt19937 rng(10);
  std::uniform_real_distribution<float> dist(-1, 1);
  const int head_off = head_dim;  // the second head's slice
  for (int p = 0; p < n_pos; ++p) {
    for (int d = 0; d < head_dim; ++d) {
      kc_[p].push_back(kb[p / block][(p % block) * stride + head_off + d] = dist(rng));
      vc[p].push_back(vb[p / block][(p % block) * stride + head_off + d] = dist(rng));
    }
  }
  const float* kp[3] = {kb[0].data() + head_off, kb[1].data() + head_off, kb[2].data() + head_off};
  const float* vp[3] = {vb[0].data() + head_off, vb[1].data() + head_off, vb[2].data() + head_off};
  std::vector<float> scratch(n_pos), out(head_dim);
  kc::attend(q.data(), kp, vp, block, stride, n_pos, head_dim, 0.35f, scratch.data(), out.data());
  std::vector<double> s(n_pos);
  double mx = -1e30, sum = 0;
  for (int p = 0; p < n_pos; ++p) {
    double dot = 0;
    for (int d = 0; d < head_dim; ++d) dot += double(q[d]) * kc_[p][d];
    s[p] = dot * 0.35;
    mx = std::max(mx, s[p]);
  }
  for (auto& v : s) sum += (v = std::exp(v - mx));
  for (int d = 0; d < head_dim; ++d) {
    double ref = 0;
    for (int p = 0; p < n_pos; ++p) ref += s[p] / sum * vc[p][d];
    ASSERT_NEAR(out[d], ref, 1e-5) << "head_dim " << head_dim << " " << kc::isa_name(kc::active_isa());
  }
}

}  // namespace

// Every head_dim shape the AVX-512 loops treat differently (one, two or four vectors of
// accumulators, masked tails, several 64-float chunks), with each ISA's path.
TEST(Ops, AttendOverBlocksEqualsContiguousAttention) {
  for (const int head_dim : {8, 16, 24, 32, 64, 80, 130}) {
    for (const kc::Isa isa : isas()) {
      kc::force_isa(isa);
      check_attend(head_dim);
    }
  }
  kc::force_isa(isas().back());
}

// Grouped-query attention: several query heads over one key/value head in one call give each
// head exactly what attend() gives it alone, for every ISA, head counts past the kernel's four
// at a time, and position counts that are not a multiple of its four.
TEST(Ops, AttendHeadsEqualsAttendPerHead) {
  for (const int head_dim : {8, 64, 80}) {
    for (const int n_pos : {1, 6, 13}) {
      const int block = 4, stride = 2 * head_dim, n_blocks = (n_pos + block - 1) / block;
      const auto kv = random_floats(static_cast<std::size_t>(2 * n_blocks * block * stride), 51);
      std::vector<const float*> kp, vp;
      for (int b = 0; b < n_blocks; ++b) {
        kp.push_back(kv.data() + static_cast<std::size_t>(b * block * stride) + head_dim);
        vp.push_back(kv.data() + static_cast<std::size_t>((n_blocks + b) * block * stride) + head_dim);
      }
      for (const int n_q : {1, 3, 6}) {
        const auto q = random_floats(static_cast<std::size_t>(n_q * head_dim), 53);
        for (const kc::Isa isa : isas()) {
          kc::force_isa(isa);
          std::vector<float> scratch(static_cast<std::size_t>(n_q * n_pos)), out(static_cast<std::size_t>(n_q * head_dim));
          kc::attend_heads(q.data(), n_q, kp.data(), vp.data(), block, stride, n_pos, head_dim, 0.3f, scratch.data(), out.data());
          for (int h = 0; h < n_q; ++h) {
            std::vector<float> s1(static_cast<std::size_t>(n_pos)), o1(static_cast<std::size_t>(head_dim));
            kc::attend(q.data() + h * head_dim, kp.data(), vp.data(), block, stride, n_pos, head_dim, 0.3f, s1.data(), o1.data());
            for (int d = 0; d < head_dim; ++d) {
              ASSERT_EQ(out[static_cast<std::size_t>(h * head_dim + d)], o1[static_cast<std::size_t>(d)])
                  << kc::isa_name(isa) << " head_dim " << head_dim << " n_pos " << n_pos << " n_q " << n_q << " head " << h;
            }
          }
        }
      }
    }
  }
  kc::force_isa(isas().back());
}

// An F16 cache: attend_heads over halves gives exactly what it gives over the same values
// widened to floats (the widening is exact; the arithmetic after it is the F32 path's).
TEST(Ops, AttendOverF16CacheEqualsF32OverTheWidenedValues) {
  {  // the cache's rounding is fp32_to_fp16's on every ISA: ties, overflow, subnormals, zeros
    const std::vector<float> edge = {1.0f + 1.0f / 4096, 1.0f + 3.0f / 4096, 65504.0f, 65520.0f, 1e6f, -1e6f,
                                     6e-8f, -3e-8f, 1e-5f, 0.0f, -0.0f, 0.1f, -2.5f, 3.14159f, 1e-40f, 70000.0f,
                                     -65519.0f};
    for (const kc::Isa isa : isas()) {
      kc::force_isa(isa);
      std::vector<std::uint16_t> h(edge.size());
      kc::to_fp16(edge.data(), static_cast<std::int64_t>(edge.size()), h.data());
      for (std::size_t i = 0; i < edge.size(); ++i) {
        ASSERT_EQ(h[i], infergate::kernels::fp32_to_fp16(edge[i])) << kc::isa_name(isa) << " value " << edge[i];
      }
    }
  }
  for (const int head_dim : {8, 64, 80}) {
    const int block = 4, n_pos = 11, stride = head_dim, n_blocks = 3, n_q = 3;
    auto kv = random_floats(static_cast<std::size_t>(2 * n_blocks * block * stride), 61);
    std::vector<std::uint16_t> half(kv.size());
    kc::to_fp16(kv.data(), static_cast<std::int64_t>(kv.size()), half.data());
    for (std::size_t i = 0; i < kv.size(); ++i) {
      ASSERT_EQ(half[i], infergate::kernels::fp32_to_fp16(kv[i]));
      kv[i] = infergate::kernels::fp16_to_fp32(half[i]);
    }
    std::vector<const float*> kp, vp;
    std::vector<const std::uint16_t*> kh, vh;
    for (int b = 0; b < n_blocks; ++b) {
      const auto k_at = static_cast<std::size_t>(b * block * stride), v_at = static_cast<std::size_t>((n_blocks + b) * block * stride);
      kp.push_back(kv.data() + k_at);
      vp.push_back(kv.data() + v_at);
      kh.push_back(half.data() + k_at);
      vh.push_back(half.data() + v_at);
    }
    const auto q = random_floats(static_cast<std::size_t>(n_q * head_dim), 63);
    for (const kc::Isa isa : isas()) {
      kc::force_isa(isa);
      std::vector<float> s32(n_q * n_pos), s16(n_q * n_pos), o32(n_q * head_dim), o16(n_q * head_dim);
      kc::attend_heads(q.data(), n_q, kp.data(), vp.data(), block, stride, n_pos, head_dim, 0.25f, s32.data(), o32.data());
      kc::attend_heads(q.data(), n_q, kh.data(), vh.data(), block, stride, n_pos, head_dim, 0.25f, s16.data(), o16.data());
      for (std::size_t i = 0; i < o32.size(); ++i) ASSERT_EQ(o16[i], o32[i]) << kc::isa_name(isa) << " head_dim " << head_dim << " at " << i;
    }
  }
  kc::force_isa(isas().back());
}

// Keys stored dimension-major per block (the CPU backend's cache): the same attention as over
// row-major keys, up to float rounding, for F32 and F16 caches, on every ISA, with block sizes
// below, at and past the kernel's 16 positions a pass and partly filled last blocks.
TEST(Ops, AttendOverDimensionMajorKeysEqualsRowMajor) {
  for (const int block : {4, 16, 20}) {
    for (const int head_dim : {6, 7, 8, 13, 16, 29, 64, 80}) {  // 6, 7, 13, 29: dimensions past a multiple of 4
      for (const int n_pos : {1, 17, 45}) {
        const int n_kv = 2, kvd = n_kv * head_dim, n_blocks = (n_pos + block - 1) / block, n_q = 3;
        const auto keys = random_floats(static_cast<std::size_t>(n_blocks * block * kvd), 71);
        const auto vals = random_floats(static_cast<std::size_t>(n_blocks * block * kvd), 73);
        std::vector<float> kt(keys.size());  // block b: [dimension j][position p]
        for (int b = 0; b < n_blocks; ++b)
          for (int p = 0; p < block; ++p)
            for (int j = 0; j < kvd; ++j) kt[(b * kvd + j) * block + p] = keys[(b * block + p) * kvd + j];
        std::vector<std::uint16_t> kt16(kt.size()), v16(vals.size());
        kc::to_fp16(kt.data(), static_cast<std::int64_t>(kt.size()), kt16.data());
        kc::to_fp16(vals.data(), static_cast<std::int64_t>(vals.size()), v16.data());
        std::vector<float> kt_w(kt.size()), vals_w(vals.size()), keys_w(keys.size());  // widened halves
        for (std::size_t i = 0; i < kt.size(); ++i) kt_w[i] = infergate::kernels::fp16_to_fp32(kt16[i]);
        for (std::size_t i = 0; i < vals.size(); ++i) vals_w[i] = infergate::kernels::fp16_to_fp32(v16[i]);
        for (int b = 0; b < n_blocks; ++b)
          for (int p = 0; p < block; ++p)
            for (int j = 0; j < kvd; ++j) keys_w[(b * block + p) * kvd + j] = kt_w[(b * kvd + j) * block + p];
        const int kvh = 1;  // the second kv head
        std::vector<const float*> kp, vp, ktp, kwp, vwp;
        std::vector<const std::uint16_t*> kt16p, v16p;
        for (int b = 0; b < n_blocks; ++b) {
          kp.push_back(&keys[(b * block) * kvd + kvh * head_dim]);
          vp.push_back(&vals[(b * block) * kvd + kvh * head_dim]);
          ktp.push_back(&kt[(b * kvd + kvh * head_dim) * block]);
          kwp.push_back(&keys_w[(b * block) * kvd + kvh * head_dim]);
          vwp.push_back(&vals_w[(b * block) * kvd + kvh * head_dim]);
          kt16p.push_back(&kt16[(b * kvd + kvh * head_dim) * block]);
          v16p.push_back(&v16[(b * block) * kvd + kvh * head_dim]);
        }
        const auto q = random_floats(static_cast<std::size_t>(n_q * head_dim), 75);
        for (const kc::Isa isa : isas()) {
          kc::force_isa(isa);
          std::vector<float> sc(n_q * n_pos), want(n_q * head_dim), got(n_q * head_dim), want16(n_q * head_dim),
              got16(n_q * head_dim);
          kc::attend_heads(q.data(), n_q, kp.data(), vp.data(), block, kvd, n_pos, head_dim, 0.2f, sc.data(), want.data());
          kc::attend_heads_kt(q.data(), n_q, ktp.data(), vp.data(), block, kvd, n_pos, head_dim, 0.2f, sc.data(), got.data());
          kc::attend_heads(q.data(), n_q, kwp.data(), vwp.data(), block, kvd, n_pos, head_dim, 0.2f, sc.data(), want16.data());
          kc::attend_heads_kt(q.data(), n_q, kt16p.data(), v16p.data(), block, kvd, n_pos, head_dim, 0.2f, sc.data(), got16.data());
          for (std::size_t i = 0; i < got.size(); ++i) {
            ASSERT_NEAR(got[i], want[i], 2e-6) << kc::isa_name(isa) << " block " << block << " head_dim " << head_dim << " n_pos " << n_pos;
            ASSERT_NEAR(got16[i], want16[i], 2e-6) << "f16 " << kc::isa_name(isa) << " block " << block << " n_pos " << n_pos;
          }
        }
      }
    }
  }
  kc::force_isa(isas().back());
}

TEST(ThreadPool, ParkedWorkersWakeForTheNextJobAndShareIt) {
  // After park() the workers sleep; the next job must still run every index once, and the
  // workers must take part again (not leave it all to the caller).
  kc::ThreadPool pool(3);
  std::vector<std::atomic<int>> hits(400);
  std::mutex mu;
  std::set<std::thread::id> ran_on;
  for (int job = 0; job < 50; ++job) {
    pool.park();
    if (job % 10 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(3));  // deep sleep
    pool.run(400, [&](std::int64_t i) {
      hits[static_cast<std::size_t>(i)].fetch_add(1);
      // Long enough items that a woken worker gets some before the caller is done.
      std::this_thread::sleep_for(std::chrono::microseconds(20));
      std::lock_guard lock(mu);
      ran_on.insert(std::this_thread::get_id());
    });
    for (int i = 0; i < 400; ++i) ASSERT_EQ(hits[i].exchange(0), 1) << "job " << job << " index " << i;
  }
  EXPECT_GT(ran_on.size(), 1u) << "parked workers never took part in a later job";
}

TEST(ThreadPool, RunsEveryIndexExactlyOnceAcrossManyJobs) {
  kc::ThreadPool pool(3);
  std::vector<std::atomic<int>> hits(1000);
  for (int job = 0; job < 200; ++job) {
    const int n = 1 + job * 5 % 997;
    pool.run(n, [&](std::int64_t i) { hits[static_cast<std::size_t>(i)].fetch_add(1); });
    for (int i = 0; i < n; ++i) ASSERT_EQ(hits[i].exchange(0), 1) << "job " << job << " index " << i;
  }
}
