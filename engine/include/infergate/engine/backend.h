// What the scheduler needs from a device: run one step of the model over a batch of sequences
// whose keys and values live in the paged KV cache, and return the logits it asks for. The CPU
// backend is the reference; the CUDA backend (kernels/cuda) is tested against it. A backend is
// used by one thread at a time (the engine loop).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "infergate/engine/model.h"

namespace infergate::engine {

struct StepSequence {
  std::span<const std::int32_t> tokens;  // new tokens, at positions start_pos, start_pos + 1, ...
  std::int64_t start_pos = 0;            // positions before it are already in the cache
  std::span<const std::int32_t> blocks;  // the sequence's block table, covering every position
  bool want_logits = false;              // logits of its last new token
};

// How the KV cache stores keys and values: F32, or F16 (half the memory and half the bytes each
// attention step reads; values are rounded to the nearest half when stored).
enum class KvType { f32, f16 };
const char* kv_type_name(KvType t);  // "f32" or "f16"

struct KvGeometry {
  std::int32_t n_blocks = 0;
  std::int32_t block_size = 16;
  KvType type = KvType::f32;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string describe() const = 0;
  // Writes the keys/values of every new token into the cache and, for each sequence with
  // want_logits (in batch order), n_vocab logits into `logits`. Throws std::invalid_argument
  // when the batch is larger than the backend was sized for.
  virtual void forward(std::span<const StepSequence> batch, float* logits) = 0;
};

// The compute threads for engine.threads = 0 on a machine with `hardware` threads: all of them,
// except for a model small enough that a step's products stay in one core's cache (a few MiB of
// weights): a second thread would only hand work back and forth and spin between steps, taking
// CPU from the rest of the process for nothing.
unsigned auto_cpu_threads(const Model& model, unsigned hardware);

// threads: the compute threads (the calling engine thread is one of them). Both KV types.
std::unique_ptr<Backend> make_cpu_backend(std::shared_ptr<const Model> model, KvGeometry kv,
                                          unsigned threads, std::int64_t max_batch_tokens);

// The CUDA backend on GPU `gpu_index`: the weights are copied to the device here, and the KV
// cache, activations and scratch are allocated here once for max_batch_tokens. Throws
// DeviceError (engine/device.h) when the build has no CUDA or the GPU cannot be used, and
// std::runtime_error naming the failing call when a CUDA or cuBLAS call fails (out of memory).
// The CUDA KV cache is F32 only: KvType::f16 throws DeviceError.
std::unique_ptr<Backend> make_cuda_backend(std::shared_ptr<const Model> model, KvGeometry kv, int gpu_index,
                                           std::int64_t max_batch_tokens);

}  // namespace infergate::engine
