// Engine throughput on this machine: for the medium model (F32 and Q8_0), prefill tokens/s and
// decode tokens/s at 1, 4 and 16 concurrent sequences, with 1 and 2 threads, beside the
// machine's memory read bandwidth measured in the same run with the same threads (a pass before
// each decode round, so that both are the best of the same stretches of time on a shared
// machine). Batch-1 decode reads every weight once per token, so bandwidth / weight bytes is its
// ceiling (the "bandwidth floor" on time per token); the bench prints the fraction of it reached.
// With --device cuda (builds with CUDA, a GPU present) the same on the GPU at 1, 16 and 64
// sequences, beside the GPU's own memory read bandwidth.
//
//   engine_bench [--device cpu|cuda] [--preset medium] [--types f32,q8_0] [--threads 1,2]
//                [--batches 1,4,16] [--isa NAME] [--kv auto|f32|f16] [--steps 24] [--dir DIR]
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "infergate/engine/backend.h"
#include "infergate/engine/make_model.h"
#include "infergate/engine/model.h"
#include "infergate/kernels/cpu/kernels.h"
#include "infergate/kernels/devices.h"
#if INFERGATE_HAVE_CUDA
#include "infergate/kernels/cuda/runtime.h"
#endif

namespace ie = infergate::engine;
namespace kc = infergate::kernels::cpu;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Sums a buffer with 256-bit (or 512-bit) loads, four independent accumulators per thread.
__attribute__((target("avx2"))) double read_avx2(const float* p, std::size_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (std::size_t i = 0; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  alignas(32) float out[8];
  _mm256_store_ps(out, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  double s = 0;
  for (float v : out) s += v;
  return s;
}

__attribute__((target("avx512f"))) double read_avx512(const float* p, std::size_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (std::size_t i = 0; i + 64 <= n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
  }
  alignas(64) float out[16];
  _mm512_store_ps(out, _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  double s = 0;
  for (float v : out) s += v;
  return s;
}

// The same sum reading eight parts of the buffer at once, one line of each per round: a
// matrix product at batch 1 reads several rows side by side, and on some machines several
// streams per core get more from memory than one (the floor must not be lower than what the
// engine itself reaches).
__attribute__((target("avx512f"))) double read_avx512_streams(const float* p, std::size_t n) {
  constexpr int S = 8;
  const std::size_t part = n / S / 16 * 16;
  __m512 a[S];
  for (auto& v : a) v = _mm512_setzero_ps();
  for (std::size_t i = 0; i < part; i += 16) {
    for (int s = 0; s < S; ++s) a[s] = _mm512_add_ps(a[s], _mm512_load_ps(p + s * part + i));
  }
  for (int s = 1; s < S; ++s) a[0] = _mm512_add_ps(a[0], a[s]);
  alignas(64) float out[16];
  _mm512_store_ps(out, a[0]);
  double sum = 0;
  for (float v : out) sum += v;
  return sum;
}

// Passes over a 1 GiB buffer (far beyond any cache), split across the threads, alternating one
// and eight streams a thread; best() is the fastest pass so far.
class Bandwidth {
 public:
  explicit Bandwidth(unsigned threads)
      : threads_(threads), buf_(static_cast<float*>(std::aligned_alloc(64, kBytes))), pool_(threads), partial_(threads) {
    std::memset(buf_, 0, kBytes);  // touch every page
  }
  ~Bandwidth() {
    std::free(buf_);
    if (sink_ != 0) std::printf("(checksum %g)\n", sink_);
  }
  Bandwidth(const Bandwidth&) = delete;
  Bandwidth& operator=(const Bandwidth&) = delete;

  void pass() {
    const std::size_t n = kBytes / 4;
    const bool avx512 = kc::active_isa() >= kc::Isa::avx512;
    const bool streams = passes_++ % 2 == 1;
    const auto t0 = Clock::now();
    pool_.run(threads_, [&](std::int64_t t) {
      const std::size_t per = n / threads_ / 64 * 64;
      const float* p = buf_ + static_cast<std::size_t>(t) * per;
      partial_[static_cast<std::size_t>(t)] = !avx512 ? read_avx2(p, per) : streams ? read_avx512_streams(p, per) : read_avx512(p, per);
    });
    const double s = seconds_since(t0);
    for (double v : partial_) sink_ += v;
    best_ = std::max(best_, static_cast<double>(kBytes) / s / 1e9);
  }
  double best() const { return best_; }
  int passes() const { return passes_; }

 private:
  static constexpr std::size_t kBytes = std::size_t{1} << 30;
  unsigned threads_;
  float* buf_;
  kc::ThreadPool pool_;
  std::vector<double> partial_;
  double best_ = 0, sink_ = 0;
  int passes_ = 0;
};

struct Figures {
  double prefill_tps = 0;
  std::vector<double> decode_tps;  // per batch size (aggregate over the batch)
};

using BackendFactory = std::function<std::unique_ptr<ie::Backend>(ie::KvGeometry, std::int64_t max_tokens)>;

// `round_start` (if set) runs before each decode round: the CPU run takes a bandwidth pass there,
// so the floor and the decode figures are the best of the same stretches of time.
Figures run(const std::shared_ptr<const ie::Model>& m, const BackendFactory& make_backend,
            const std::vector<int>& batches, int steps, const std::function<void()>& round_start = {},
            int rounds = 5) {
  const int max_batch = *std::max_element(batches.begin(), batches.end());
  const std::int64_t prompt = 128;
  const std::int32_t block = 16;
  const std::int32_t blocks_per_seq = static_cast<std::int32_t>((prompt + steps + 2 + block - 1) / block);
  auto be = make_backend({blocks_per_seq * max_batch, block}, std::max<std::int64_t>(prompt, max_batch));
  const auto n_vocab = static_cast<std::size_t>(m->config().n_vocab);
  std::vector<float> logits(n_vocab * static_cast<std::size_t>(max_batch));
  std::vector<std::int32_t> tokens(static_cast<std::size_t>(prompt));
  for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<std::int32_t>(1 + i * 37 % (n_vocab - 1));
  std::vector<std::vector<std::int32_t>> tables(static_cast<std::size_t>(max_batch));
  for (int s = 0; s < max_batch; ++s)
    for (int b = 0; b < blocks_per_seq; ++b) tables[static_cast<std::size_t>(s)].push_back(s * blocks_per_seq + b);

  Figures f;
  // Prefill: the prompt of each sequence in one step each (best of them).
  double best_prefill = 1e30;
  for (int s = 0; s < max_batch; ++s) {
    ie::StepSequence seq{tokens, 0, tables[static_cast<std::size_t>(s)], true};
    const auto t0 = Clock::now();
    be->forward(std::span(&seq, 1), logits.data());
    best_prefill = std::min(best_prefill, seconds_since(t0));
  }
  f.prefill_tps = static_cast<double>(prompt) / best_prefill;
  // Decode: every sequence adds one token per step. Several rounds over the same positions, the
  // best one counted (as the bandwidth is the best of several passes): on a shared machine a
  // round can lose the memory bus to a neighbour, and the figure is what the engine can do.
  // Each round runs every batch size in turn, so that the ratios between them compare runs made
  // under the same conditions rather than one batch size's quiet minute with another's busy one.
  f.decode_tps.assign(batches.size(), 0.0);
  std::vector<std::int32_t> next(static_cast<std::size_t>(max_batch), 5);
  for (int round = 0; round < rounds; ++round) {
    if (round_start) round_start();
    for (std::size_t bi = 0; bi < batches.size(); ++bi) {
      const int B = batches[bi];
      std::vector<ie::StepSequence> batch(static_cast<std::size_t>(B));
      double total = 0;
      for (int step = 0; step < steps; ++step) {
        for (int s = 0; s < B; ++s) {
          batch[static_cast<std::size_t>(s)] = {std::span(&next[static_cast<std::size_t>(s)], 1), prompt + step,
                                                tables[static_cast<std::size_t>(s)], true};
        }
        const auto t0 = Clock::now();
        be->forward(batch, logits.data());
        if (step > 0) total += seconds_since(t0);  // the first step warms caches and the pool
      }
      f.decode_tps[bi] = std::max(f.decode_tps[bi], static_cast<double>(B) * (steps - 1) / total);
    }
  }
  return f;
}

std::shared_ptr<const ie::Model> bench_model(const std::string& preset, const std::string& type_name,
                                             const std::string& dir) {
  ie::MakeModelOptions o;
  o.preset = *ie::find_preset(preset);
  o.type = type_name == "q8_0" ? infergate::kernels::WeightType::q8_0
           : type_name == "f16" ? infergate::kernels::WeightType::f16
                                : infergate::kernels::WeightType::f32;
  const std::string path = dir + "/" + preset + "-" + type_name + ".gguf";
  if (!std::filesystem::exists(path)) ie::make_model(o, path);
  return ie::Model::load(path);
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const auto c = s.find(',', start);
    out.push_back(s.substr(start, c == std::string::npos ? std::string::npos : c - start));
    if (c == std::string::npos) break;
    start = c + 1;
  }
  return out;
}

// The GPU run: its read bandwidth, then each model type at batch 1, 16 and 64.
int run_cuda(const std::string& preset, const std::vector<std::string>& types, int steps, const std::string& dir) {
#if INFERGATE_HAVE_CUDA
  const auto inv = infergate::kernels::detect_gpus();
  if (inv.devices.empty()) {
    std::fprintf(stderr, "engine_bench: --device cuda but no GPU can be used: %s\n", inv.note.c_str());
    return 2;
  }
  const auto& gpu = inv.devices.front();
  infergate::kernels::cuda::set_device(gpu.index);
  const double bw = infergate::kernels::cuda::measure_read_bandwidth_gbs(std::size_t{1} << 30, 10);
  std::printf("engine_bench: preset %s on cuda:%d %s (sm_%d%d), %d decode steps per figure\n", preset.c_str(),
              gpu.index, gpu.name.c_str(), gpu.compute_major, gpu.compute_minor, steps);
  std::printf("GPU memory read bandwidth: %.0f GB/s (best of 10 reads of 1 GiB by a kernel)\n", bw);
  const std::vector<int> batches = {1, 16, 64};
  for (const auto& type_name : types) {
    const auto m = bench_model(preset, type_name, dir);
    const double weight_mb = static_cast<double>(m->weight_bytes_per_token()) / 1e6;
    std::printf("\nmodel %s (%s): %.1f MB of weights read per decode step\n", m->name().c_str(),
                m->weight_type().c_str(), weight_mb);
    const Figures f = run(
        m, [&](ie::KvGeometry kv, std::int64_t max_tokens) { return ie::make_cuda_backend(m, kv, gpu.index, max_tokens); },
        batches, steps);
    const double floor_tps = bw * 1e9 / static_cast<double>(m->weight_bytes_per_token());
    std::printf("%12s %12s %12s %12s %10s %12s\n", "prefill t/s", "decode b=1", "b=16 (agg)", "b=64 (agg)", "b64/b1",
                "b1 / floor");
    std::printf("%12.0f %12.1f %12.1f %12.1f %9.2fx %11.0f%%   (floor %.1f t/s at batch 1)\n", f.prefill_tps,
                f.decode_tps[0], f.decode_tps[1], f.decode_tps[2], f.decode_tps[2] / f.decode_tps[0],
                100.0 * f.decode_tps[0] / floor_tps, floor_tps);
  }
  return 0;
#else
  (void)preset, (void)types, (void)steps, (void)dir;
  std::fprintf(stderr, "engine_bench: --device cuda needs a build with CUDA (INFERGATE_CUDA=AUTO or ON, nvcc found)\n");
  return 2;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  std::string preset = "medium", types = "f32,q8_0", thread_list = "1,2", device = "cpu", isa, batch_list = "1,4,16", kv_choice = "auto";
  std::string dir = (std::filesystem::temp_directory_path() / "infergate-bench-models").string();
  int steps = 24;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--preset") preset = v;
    else if (k == "--types") types = v;
    else if (k == "--threads") thread_list = v;
    else if (k == "--steps") steps = std::max(3, std::stoi(v));
    else if (k == "--dir") dir = v;
    else if (k == "--device") device = v;
    else if (k == "--isa") isa = v;
    else if (k == "--batches") batch_list = v;
    else if (k == "--kv") kv_choice = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (kv_choice != "auto" && kv_choice != "f32" && kv_choice != "f16") {
    std::fprintf(stderr, "unknown kv cache type %s: expected auto, f32 or f16\n", kv_choice.c_str());
    return 2;
  }
  if (device != "cpu" && device != "cuda") {
    std::fprintf(stderr, "unknown device %s: expected cpu or cuda\n", device.c_str());
    return 2;
  }
  if (!isa.empty()) {  // e.g. --isa avx512vnni on a CPU with AMX, to compare the kernels
    bool found = false;
    for (const kc::Isa i : {kc::Isa::scalar, kc::Isa::avx2, kc::Isa::avx512, kc::Isa::avx512vnni, kc::Isa::amx}) {
      if (isa != kc::isa_name(i)) continue;
      if (!kc::isa_supported(i)) {
        std::fprintf(stderr, "this CPU does not support %s\n", isa.c_str());
        return 2;
      }
      kc::force_isa(i);
      found = true;
    }
    if (!found) {
      std::fprintf(stderr, "unknown isa %s: expected scalar, avx2, avx512, avx512vnni or amx\n", isa.c_str());
      return 2;
    }
  }
  std::filesystem::create_directories(dir);
  if (device == "cuda") return run_cuda(preset, split(types), steps, dir);
  std::printf("engine_bench: preset %s, isa %s, decode figures: best of 5 rounds of %d steps\n", preset.c_str(),
              kc::isa_name(kc::active_isa()), steps);
  std::vector<unsigned> threads;
  for (const auto& t : split(thread_list)) threads.push_back(static_cast<unsigned>(std::stoul(t)));
  std::printf("memory read bandwidth: before each decode round, a pass over 1 GiB with the run's threads (one and\n"
              "eight streams a thread in turn); the floor is the best of them (weight bytes per token / bandwidth)\n");
  std::vector<int> batches;
  for (const auto& b : split(batch_list)) batches.push_back(std::max(1, std::stoi(b)));
  for (const auto& type_name : split(types)) {
    const auto m = bench_model(preset, type_name, dir);
    const double weight_mb = static_cast<double>(m->weight_bytes_per_token()) / 1e6;
    // The gateway's engine.kv_cache_type = auto: F16 unless the weights are F32.
    const ie::KvType kv_type = kv_choice == "f16" || (kv_choice == "auto" && m->weight_type() != "F32")
                                   ? ie::KvType::f16
                                   : ie::KvType::f32;
    std::printf("\nmodel %s (%s): %.1f MB of weights read per decode step, KV cache %s\n", m->name().c_str(),
                m->weight_type().c_str(), weight_mb, ie::kv_type_name(kv_type));
    // Decode columns: aggregate tokens/s at each batch; then the last batch over the first and
    // the first (batch 1 by default) against the bandwidth floor.
    std::printf("%-8s %12s", "threads", "prefill t/s");
    for (const int b : batches) std::printf(" %12s", ("decode b=" + std::to_string(b)).c_str());
    const std::string ratio = "b" + std::to_string(batches.back()) + "/b" + std::to_string(batches.front());
    std::printf(" %10s %12s\n", ratio.c_str(), ("b" + std::to_string(batches.front()) + " / floor").c_str());
    for (std::size_t ti = 0; ti < threads.size(); ++ti) {
      const unsigned th = threads[ti];
      Bandwidth bw(th);
      bw.pass();  // and one before each round: six passes, three of each kind
      const Figures f = run(
          m,
          [&](ie::KvGeometry kv, std::int64_t max_tokens) {
            kv.type = kv_type;
            return ie::make_cpu_backend(m, kv, th, max_tokens);
          },
          batches, steps, [&bw] { bw.pass(); });
      const double floor_tps = bw.best() * 1e9 / static_cast<double>(m->weight_bytes_per_token());
      std::printf("%-8u %12.0f", th, f.prefill_tps);
      for (const double tps : f.decode_tps) std::printf(" %12.1f", tps);
      std::printf(" %9.2fx %11.0f%%   (floor %.1f t/s at %.1f GB/s)\n", f.decode_tps.back() / f.decode_tps.front(),
                  100.0 * f.decode_tps.front() / floor_tps, floor_tps, bw.best());
    }
  }
  return 0;
}
