// The CPU kernels a transformer step needs. Matrix products dispatch at run time to the best
// instruction set the CPU has (AVX-512 with VNNI, AVX-512, else AVX2/FMA, else portable code); everything else is
// plain loops the compiler vectorizes. All functions are thread-safe (no shared state besides
// the read-only dispatch choice); those taking a ThreadPool use it and must not be called
// concurrently with another user of the same pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "infergate/kernels/cpu/thread_pool.h"
#include "infergate/kernels/weights.h"

namespace infergate::kernels::cpu {

// In order: each one's CPUs support the ones before it. `amx` is AVX-512 VNNI plus Intel's tile
// unit (AMX-INT8), which runs the Q8_0 products; F32/F16 run as avx512vnni there.
enum class Isa { scalar, avx2, avx512, avx512vnni, amx };
const char* isa_name(Isa isa);
// The best the CPU supports (cached); `force_isa` overrides it (tests compare each one against
// the portable code; forcing an ISA the CPU lacks throws std::runtime_error).
Isa active_isa();
void force_isa(Isa isa);
bool isa_supported(Isa isa);

// y[t * w.rows + r] = sum_c w[r][c] * x[t * w.cols + c], for t in [0, n_tokens).
// Q8_0 weights: x is first quantized to Q8_0 per row of 32 (as llama.cpp does), then dotted in
// integers; its error against the F32 product is bounded by the activation rounding.
void matmul(const WeightMatrix& w, const float* x, std::int64_t n_tokens, float* y,
            ThreadPool& pool);
// Several products of the same input (Q, K and V; gate and up) in one parallel region, with the
// input quantized once: each matrix's rows are split into chunks and all chunks share the pool.
// Every matrix must have the same weight type and row length. Results equal separate matmul()s.
struct MatmulOut {
  const WeightMatrix* w;
  float* y;
};
void matmul_shared_input(std::span<const MatmulOut> outs, const float* x, std::int64_t n_tokens, ThreadPool& pool);

// Q8_0 weights laid out for the AMX kernel: rows in groups of 16, a group's blocks one after
// another, each block as the 16 rows' 32 quant bytes followed by their 16 F16 scales (544 bytes;
// rows past the end are zeros), so a row group is one sequential read. Setting a matrix's
// `packed` to it speeds up Isa::amx products without changing their results. pack_q8_0_amx
// writes amx_packed_bytes(w) bytes; w must be Q8_0.
std::size_t amx_packed_bytes(const WeightMatrix& w);
void pack_q8_0_amx(const WeightMatrix& w, std::uint8_t* out);

// Small F32 matrices (rows of at most kMaxColumnsPacked columns, a small model's): a
// column-major copy lets the AVX-512 kernels put 16 rows in the lanes and skip the sums across
// lanes that dominate short rows. Setting `packed` to it changes the summation order, the same
// for every batch size (so still batch-invariant), on AVX-512 ISAs; others ignore it.
// pack_f32_columns writes f32_columns_bytes(w) bytes; w must be F32.
inline constexpr std::int64_t kMaxColumnsPacked = 256;
std::size_t f32_columns_bytes(const WeightMatrix& w);
void pack_f32_columns(const WeightMatrix& w, std::uint8_t* out);

// Same with a given ISA and no pool; the reference the tests compare against uses Isa::scalar.
void matmul_isa(Isa isa, const WeightMatrix& w, const float* x, std::int64_t n_tokens, float* y);

// The first index of the largest of n values (ties: the lowest index; a NaN is never the
// largest, but a NaN first value gives 0); 0 when n is 0.
std::int64_t argmax(const float* x, std::int64_t n);
// out = x / sqrt(mean(x^2) + eps) * weight, over n elements.
void rmsnorm(const float* x, const float* weight, std::int64_t n, float eps, float* out);
// Rotary embedding in place on n_heads heads of head_dim, rotating consecutive pairs
// (x[2i], x[2i+1]) by pos * base^(-2i/rot_dim) for 2i < rot_dim (GGUF's llama layout).
void rope(float* x, std::int64_t n_heads, std::int64_t head_dim, std::int64_t rot_dim,
          std::int64_t pos, float base);
// The same rotation with its angles looked up: cos_sin holds rot_dim / 2 pairs (cos, sin) for
// this position, as rope_angles writes them.
void rope_cached(float* x, std::int64_t n_heads, std::int64_t head_dim, std::int64_t rot_dim,
                 const float* cos_sin);
// The (cos, sin) pairs of positions [0, n_pos) one after another (rot_dim floats a position),
// computed in double exactly as rope() does.
void rope_angles(std::int64_t n_pos, std::int64_t rot_dim, float base, float* out);
// In place: x = softmax(x) over n elements (max-subtracted, float accumulate).
void softmax(float* x, std::int64_t n);
// out[i] = silu(gate[i]) * up[i].
void silu_mul(const float* gate, const float* up, std::int64_t n, float* out);
// x[i] += y[i].
void add_inplace(float* x, const float* y, std::int64_t n);

// Attention of one query head over one sequence's cached keys/values stored in blocks:
// position p lives in block p / block_size at row p % block_size; k_blocks[b] and v_blocks[b]
// point at head `h`'s slice of row 0 of block b, rows are `row_stride` floats apart.
// out[head_dim] = sum_p softmax(q.k_p * scale)_p * v_p for p in [0, n_pos). scratch holds
// n_pos floats.
void attend(const float* q, const float* const* k_blocks, const float* const* v_blocks,
            std::int64_t block_size, std::int64_t row_stride, std::int64_t n_pos,
            std::int64_t head_dim, float scale, float* scratch, float* out);
// The same for n_q query heads that share one key/value head (grouped-query attention), each
// cached key and value read once for all of them: q and out hold the heads one after another
// (head_dim floats each), scratch holds n_q * n_pos floats. Each head's result is bit for bit
// what attend() gives it alone.
void attend_heads(const float* q, std::int64_t n_q, const float* const* k_blocks, const float* const* v_blocks,
                  std::int64_t block_size, std::int64_t row_stride, std::int64_t n_pos, std::int64_t head_dim,
                  float scale, float* scratch, float* out);
// The same over an F16 cache (rows of halves, row_stride halves apart): each value is widened
// exactly, so the result equals the F32 call on the widened values.
void attend_heads(const float* q, std::int64_t n_q, const std::uint16_t* const* k_blocks,
                  const std::uint16_t* const* v_blocks, std::int64_t block_size, std::int64_t row_stride,
                  std::int64_t n_pos, std::int64_t head_dim, float scale, float* scratch, float* out);
// The same with each block's keys stored dimension-major: key p's dimension d at
// kt_blocks[p / block_size][d * block_size + p % block_size] (values stay row-major, row_stride
// apart). Sixteen positions are dotted at once without sums across lanes, so this is the CPU
// backend's layout; the results equal attend_heads' up to float rounding (another summation order).
void attend_heads_kt(const float* q, std::int64_t n_q, const float* const* kt_blocks, const float* const* v_blocks,
                     std::int64_t block_size, std::int64_t row_stride, std::int64_t n_pos, std::int64_t head_dim,
                     float scale, float* scratch, float* out);
void attend_heads_kt(const float* q, std::int64_t n_q, const std::uint16_t* const* kt_blocks,
                     const std::uint16_t* const* v_blocks, std::int64_t block_size, std::int64_t row_stride,
                     std::int64_t n_pos, std::int64_t head_dim, float scale, float* scratch, float* out);
// out[i] = x[i] rounded to the nearest half (ties to even), for storing into an F16 cache.
void to_fp16(const float* x, std::int64_t n, std::uint16_t* out);

}  // namespace infergate::kernels::cpu
