// Each CUDA kernel against its CPU counterpart on random inputs, odd sizes included, with a
// tolerance per op stated in each test. Skipped (with the reason) when no GPU can be used.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "gpu/gpu_test_util.h"
#include "infergate/kernels/cpu/kernels.h"
#include "infergate/kernels/cuda/add.h"
#include "infergate/kernels/cuda/attention.h"
#include "infergate/kernels/cuda/device_matrix.h"
#include "infergate/kernels/cuda/embedding.h"
#include "infergate/kernels/cuda/kv_store.h"
#include "infergate/kernels/cuda/matmul.h"
#include "infergate/kernels/cuda/rmsnorm.h"
#include "infergate/kernels/cuda/rope.h"
#include "infergate/kernels/cuda/silu_mul.h"

namespace infergate::gpu_testing {
namespace {

namespace kc = kernels::cpu;
using kernels::WeightMatrix;
using kernels::WeightType;

// Host weights in a GGUF format, plus their exact float values.
struct HostWeights {
  std::vector<std::uint8_t> bytes;
  std::vector<float> values;
  WeightMatrix view;
};

HostWeights make_weights(WeightType type, std::int64_t rows, std::int64_t cols, std::uint32_t seed) {
  HostWeights hw;
  const auto f = random_floats(static_cast<std::size_t>(rows * cols), seed);
  const std::int64_t rb = kernels::row_bytes(type, cols);
  hw.bytes.resize(static_cast<std::size_t>(rows * rb));
  hw.values.resize(f.size());
  for (std::int64_t r = 0; r < rows; ++r) {
    std::uint8_t* dst = hw.bytes.data() + r * rb;
    const float* src = f.data() + r * cols;
    switch (type) {
      case WeightType::f32: std::memcpy(dst, src, static_cast<std::size_t>(cols) * 4); break;
      case WeightType::f16: {
        std::vector<std::uint16_t> h(static_cast<std::size_t>(cols));
        for (std::int64_t c = 0; c < cols; ++c) h[static_cast<std::size_t>(c)] = kernels::fp32_to_fp16(src[c]);
        std::memcpy(dst, h.data(), h.size() * 2);
        break;
      }
      case WeightType::q8_0: {
        std::vector<kernels::BlockQ8_0> blocks(static_cast<std::size_t>(cols / 32));
        kernels::quantize_row_q8_0(src, cols, blocks.data());
        std::memcpy(dst, blocks.data(), blocks.size() * sizeof(kernels::BlockQ8_0));
        break;
      }
    }
    kernels::dequantize_row(type, dst, cols, hw.values.data() + r * cols);
  }
  hw.view = WeightMatrix{type, hw.bytes.data(), rows, cols};
  return hw;
}

struct UploadedMatrix {
  kg::DeviceBuffer storage;
  kg::DeviceMatrix m;
};

UploadedMatrix upload(const WeightMatrix& w) {
  UploadedMatrix u;
  u.storage = kg::DeviceBuffer(kg::device_bytes(w));
  u.m = kg::upload(w, u.storage.data());
  return u;
}

const WeightType kTypes[] = {WeightType::f32, WeightType::f16, WeightType::q8_0};

class CudaOps : public GpuTest {};

// Exact: both sides turn the same stored weight into the same float.
TEST_F(CudaOps, EmbeddingEqualsDequantizedRowsAndZeroesBadIds) {
  for (const WeightType type : kTypes) {
    const std::int64_t rows = 37, cols = 96;
    const auto hw = make_weights(type, rows, cols, 11);
    const auto dev = upload(hw.view);
    const std::vector<std::int32_t> ids = {0, 36, 5, 5, -1, 37, 12};
    auto ids_dev = to_device(ids);
    kg::DeviceBuffer out(ids.size() * cols * 4);
    kg::embedding(dev.m, ids_dev.as<std::int32_t>(), static_cast<std::int64_t>(ids.size()), out.as<float>(), stream());
    const auto got = to_host<float>(out, ids.size() * cols);
    for (std::size_t t = 0; t < ids.size(); ++t) {
      const bool valid = ids[t] >= 0 && ids[t] < rows;
      for (std::int64_t c = 0; c < cols; ++c) {
        const float want = valid ? hw.values[static_cast<std::size_t>(ids[t] * cols + c)] : 0.0f;
        ASSERT_EQ(got[t * cols + static_cast<std::size_t>(c)], want)
            << kernels::weight_type_name(type) << " token " << t << " col " << c;
      }
    }
  }
}

// 1e-5 relative per row: the CPU sums squares in double, the GPU in float over a tree.
TEST_F(CudaOps, RmsnormMatchesCpuOnOddSizesAndGathersRows) {
  for (const std::int64_t n : {1, 7, 64, 385, 4099}) {
    const std::int64_t rows = 5;
    const auto x = random_floats(static_cast<std::size_t>(rows * n), 3, 2.0f);
    const auto w = random_floats(static_cast<std::size_t>(n), 4);
    const std::vector<std::int32_t> gather = {4, 0, 2};
    auto xd = to_device(x), wd = to_device(w), gd = to_device(gather);
    kg::DeviceBuffer out(static_cast<std::size_t>(rows * n) * 4), out_g(gather.size() * static_cast<std::size_t>(n) * 4);
    kg::rmsnorm(xd.as<float>(), wd.as<float>(), rows, n, 1e-5f, nullptr, out.as<float>(), stream());
    kg::rmsnorm(xd.as<float>(), wd.as<float>(), static_cast<std::int64_t>(gather.size()), n, 1e-5f,
                gd.as<std::int32_t>(), out_g.as<float>(), stream());
    const auto got = to_host<float>(out, static_cast<std::size_t>(rows * n));
    const auto got_g = to_host<float>(out_g, gather.size() * static_cast<std::size_t>(n));
    std::vector<float> want(static_cast<std::size_t>(rows * n));
    for (std::int64_t r = 0; r < rows; ++r) kc::rmsnorm(&x[r * n], w.data(), n, 1e-5f, &want[r * n]);
    EXPECT_LT(relative_l2(got, want), 1e-5) << "n " << n;
    for (std::size_t i = 0; i < gather.size(); ++i) {
      const std::vector<float> g(got_g.begin() + static_cast<long>(i) * n, got_g.begin() + static_cast<long>(i + 1) * n);
      const std::vector<float> wr(want.begin() + gather[i] * n, want.begin() + (gather[i] + 1) * n);
      EXPECT_LT(relative_l2(g, wr), 1e-5) << "n " << n << " gathered row " << i;
    }
  }
}

// 1e-5 absolute on values of size ~1: both compute the angle in double.
TEST_F(CudaOps, RopeMatchesCpuForHeadSizesRotaryDimsAndFarPositions) {
  struct Shape {
    std::int64_t heads, head_dim, rot_dim;
  };
  for (const Shape s : {Shape{4, 64, 64}, Shape{3, 80, 80}, Shape{2, 130, 64}, Shape{5, 8, 7}, Shape{1, 256, 256}}) {
    const std::vector<std::int32_t> pos = {0, 1, 17, 2047, 100000};
    const auto T = static_cast<std::int64_t>(pos.size());
    auto x = random_floats(static_cast<std::size_t>(T * s.heads * s.head_dim), 5);
    auto xd = to_device(x);
    auto pd = to_device(pos);
    kg::rope(xd.as<float>(), T, s.heads, s.head_dim, s.rot_dim, pd.as<std::int32_t>(), 10000.0f, stream());
    const auto got = to_host<float>(xd, x.size());
    for (std::int64_t t = 0; t < T; ++t)
      kc::rope(&x[t * s.heads * s.head_dim], s.heads, s.head_dim, s.rot_dim, pos[t], 10000.0f);
    EXPECT_LT(max_abs_diff(got, x), 1e-5) << "head_dim " << s.head_dim << " rot_dim " << s.rot_dim;
  }
}

// 1e-6 relative: the same float formula on both sides (expf may differ in the last bit).
TEST_F(CudaOps, SiluMulAndAddMatchCpu) {
  for (const std::int64_t n : {1, 255, 1000003}) {
    const auto g = random_floats(static_cast<std::size_t>(n), 6, 6.0f), u = random_floats(static_cast<std::size_t>(n), 7);
    auto gd = to_device(g), ud = to_device(u);
    kg::DeviceBuffer out(static_cast<std::size_t>(n) * 4);
    kg::silu_mul(gd.as<float>(), ud.as<float>(), n, out.as<float>(), stream());
    kg::add_inplace(gd.as<float>(), ud.as<float>(), n, stream());
    const auto got = to_host<float>(out, static_cast<std::size_t>(n));
    const auto sum = to_host<float>(gd, static_cast<std::size_t>(n));
    std::vector<float> want(static_cast<std::size_t>(n)), want_sum = g;
    kc::silu_mul(g.data(), u.data(), n, want.data());
    kc::add_inplace(want_sum.data(), u.data(), n);
    EXPECT_LT(relative_l2(got, want), 1e-6) << n;
    EXPECT_EQ(sum, want_sum) << n;
  }
}

TEST_F(CudaOps, KvStoreWritesEachTokenToItsSlot) {
  const std::int64_t kvd = 40, rows = 24;
  const std::vector<std::int32_t> slots = {7, 0, 23, 12};
  const auto T = static_cast<std::int64_t>(slots.size());
  const auto k = random_floats(static_cast<std::size_t>(T * kvd), 8), v = random_floats(static_cast<std::size_t>(T * kvd), 9);
  auto kd = to_device(k), vd = to_device(v), sd = to_device(slots);
  const std::vector<float> zeros(static_cast<std::size_t>(rows * kvd), 0.0f);
  auto kc_dev = to_device(zeros), vc_dev = to_device(zeros);
  kg::kv_store(kd.as<float>(), vd.as<float>(), T, kvd, sd.as<std::int32_t>(), kc_dev.as<float>(), vc_dev.as<float>(),
               stream());
  const auto kcache = to_host<float>(kc_dev, zeros.size()), vcache = to_host<float>(vc_dev, zeros.size());
  std::vector<float> want_k = zeros, want_v = zeros;
  for (std::int64_t t = 0; t < T; ++t) {
    std::copy_n(&k[t * kvd], kvd, &want_k[slots[t] * kvd]);
    std::copy_n(&v[t * kvd], kvd, &want_v[slots[t] * kvd]);
  }
  EXPECT_EQ(kcache, want_k);
  EXPECT_EQ(vcache, want_v);
}

// Two sequences in one batch (a 9-token prefill chunk starting at 3, and one decode token far
// into its context so that all four warps see several chunks of 32), scrambled block tables,
// grouped-query heads; against kc::attend per (token, head). 2e-5 absolute on outputs of size ~1.
TEST_F(CudaOps, PagedAttentionMatchesCpuForPrefillAndDecode) {
  for (const std::int64_t hd : {8, 64, 80, 130, 256}) {
    const std::int64_t n_head = 6, n_kv = 2, kvd = n_kv * hd, bs = 4, n_blocks = 160;
    const auto kcache = random_floats(static_cast<std::size_t>(n_blocks * bs * kvd), 10);
    const auto vcache = random_floats(static_cast<std::size_t>(n_blocks * bs * kvd), 11);
    std::vector<std::int32_t> table_a, table_b;
    for (int b = 0; b < 3; ++b) table_a.push_back((b * 37 + 5) % 160);
    for (int b = 0; b < 130; ++b) table_b.push_back((b * 11 + 100) % 160);
    std::vector<std::int32_t> token_seq, token_pos;
    for (int p = 3; p < 12; ++p) {
      token_seq.push_back(0);
      token_pos.push_back(p);
    }
    token_seq.push_back(1);
    token_pos.push_back(517);
    std::vector<std::int32_t> blocks = table_a;
    blocks.insert(blocks.end(), table_b.begin(), table_b.end());
    const std::vector<std::int32_t> seq_table = {0, static_cast<std::int32_t>(table_a.size())};
    const auto T = static_cast<std::int64_t>(token_seq.size());
    const auto q = random_floats(static_cast<std::size_t>(T * n_head * hd), 12);
    auto qd = to_device(q), kd = to_device(kcache), vd = to_device(vcache), sd = to_device(token_seq),
         pd = to_device(token_pos), td = to_device(seq_table), bd = to_device(blocks);
    kg::DeviceBuffer out(static_cast<std::size_t>(T * n_head * hd) * 4);
    kg::PagedBatch pb;
    pb.token_seq = sd.as<std::int32_t>();
    pb.token_pos = pd.as<std::int32_t>();
    pb.seq_table = td.as<std::int32_t>();
    pb.blocks = bd.as<std::int32_t>();
    pb.n_tokens = T;
    pb.block_size = bs;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    kg::attention(qd.as<float>(), kd.as<float>(), vd.as<float>(), pb, n_head, n_kv, hd, scale, out.as<float>(), stream());
    const auto got = to_host<float>(out, static_cast<std::size_t>(T * n_head * hd));

    std::vector<float> want(got.size()), scratch(1024);
    for (std::int64_t t = 0; t < T; ++t) {
      const auto& table = token_seq[t] == 0 ? table_a : table_b;
      for (std::int64_t h = 0; h < n_head; ++h) {
        const std::int64_t kvh = h / (n_head / n_kv);
        std::vector<const float*> kp, vp;
        for (const std::int32_t b : table) {
          kp.push_back(&kcache[static_cast<std::size_t>(b * bs * kvd + kvh * hd)]);
          vp.push_back(&vcache[static_cast<std::size_t>(b * bs * kvd + kvh * hd)]);
        }
        kc::attend(&q[(t * n_head + h) * hd], kp.data(), vp.data(), bs, kvd, token_pos[t] + 1, hd, scale,
                   scratch.data(), &want[(t * n_head + h) * hd]);
      }
    }
    EXPECT_LT(max_abs_diff(got, want), 2e-5) << "head_dim " << hd;
  }
}

TEST_F(CudaOps, AttentionRejectsHeadDimAboveItsLimit) {
  kg::PagedBatch pb;
  pb.n_tokens = 1;
  pb.block_size = 16;
  EXPECT_THROW(kg::attention(nullptr, nullptr, nullptr, pb, 4, 2, 257, 1.0f, nullptr, stream()), std::invalid_argument);
}

// Every weight type at token counts on both sides of the Q8_0 direct limit (32) and of its
// 8-token launches, rows not a multiple of the kernel's 4 per block, rows longer than one pass
// of its warp, against the CPU product. Tolerances (relative L2): F32 1e-5 (both F32);
// F16 2e-3 (the GPU rounds the input to F16); Q8_0 3e-2 (the CPU rounds the input to 8 bits),
// and against the exact product of the stored weights 1e-5 up to 32 tokens (F32 input) and
// 2e-3 beyond (F16 input and weights).
TEST_F(CudaOps, MatmulMatchesCpuForEveryWeightTypeAndBatchSize) {
  struct Shape {
    std::int64_t rows, cols;
  };
  for (const WeightType type : kTypes) {
    // 1056 = 2 * 512 + 32 columns: the Q8_0 kernel's warp takes 512 per pass, so this one makes
    // three passes, the last with only two lanes working.
    for (const Shape s : {Shape{33, 64}, Shape{257, 96}, Shape{1000, 384}, Shape{70, 1056}}) {
      const auto hw = make_weights(type, s.rows, s.cols, 13);
      const auto dev = upload(hw.view);
      kc::ThreadPool pool(1);
      for (const std::int64_t T : {1, 3, 8, 9, 31, 32, 33, 70}) {
        const auto x = random_floats(static_cast<std::size_t>(T * s.cols), 14);
        auto xd = to_device(x);
        kg::DeviceBuffer y(static_cast<std::size_t>(T * s.rows) * 4);
        kg::DeviceBuffer a16(static_cast<std::size_t>(std::max<std::int64_t>(1, kg::matmul_act_f16_elems(dev.m, T))) * 2);
        kg::DeviceBuffer w16(static_cast<std::size_t>(std::max<std::int64_t>(1, kg::matmul_w_f16_elems(dev.m, T))) * 2);
        kg::MatmulScratch scratch{a16.data(), kg::matmul_act_f16_elems(dev.m, T), w16.data(), kg::matmul_w_f16_elems(dev.m, T)};
        kg::Blas blas(stream());
        kg::matmul(blas, dev.m, xd.as<float>(), T, y.as<float>(), scratch);
        const auto got = to_host<float>(y, static_cast<std::size_t>(T * s.rows));

        std::vector<float> cpu(got.size());
        kc::matmul(hw.view, x.data(), T, cpu.data(), pool);
        std::vector<double> exact(got.size(), 0.0);
        for (std::int64_t t = 0; t < T; ++t)
          for (std::int64_t r = 0; r < s.rows; ++r) {
            double acc = 0;
            for (std::int64_t c = 0; c < s.cols; ++c)
              acc += static_cast<double>(hw.values[r * s.cols + c]) * x[t * s.cols + c];
            exact[t * s.rows + r] = acc;
          }
        const char* name = kernels::weight_type_name(type);
        switch (type) {
          case WeightType::f32:
            EXPECT_LT(relative_l2(got, cpu), 1e-5) << name << " " << s.rows << "x" << s.cols << " T=" << T;
            break;
          case WeightType::f16:
            EXPECT_LT(relative_l2(got, cpu), 2e-3) << name << " " << s.rows << "x" << s.cols << " T=" << T;
            break;
          case WeightType::q8_0:
            EXPECT_LT(relative_l2(got, cpu), 3e-2) << name << " " << s.rows << "x" << s.cols << " T=" << T;
            EXPECT_LT(relative_l2(got, exact), T <= kg::kQ8DirectMaxTokens ? 1e-5 : 2e-3)
                << name << " " << s.rows << "x" << s.cols << " T=" << T << " (against the exact product)";
            break;
        }
      }
    }
  }
}

TEST_F(CudaOps, MatmulRefusesTooSmallScratch) {
  const auto hw = make_weights(WeightType::f16, 32, 64, 15);
  const auto dev = upload(hw.view);
  kg::DeviceBuffer x(64 * 4 * 4), y(32 * 4 * 4);
  kg::Blas blas(stream());
  EXPECT_THROW(kg::matmul(blas, dev.m, x.as<float>(), 4, y.as<float>(), kg::MatmulScratch{}), std::invalid_argument);
}

}  // namespace
}  // namespace infergate::gpu_testing
