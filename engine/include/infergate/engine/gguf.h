// GGUF v3 files: reading (memory-mapped, every offset and length checked against the file) and
// writing (for `infergate make-model`). Layout facts: little-endian header "GGUF", version,
// tensor count, metadata count; metadata key/value pairs; tensor infos (name, dims, type,
// offset); tensor data from the first multiple of `general.alignment` (default 32) after the
// infos, each tensor at an aligned offset into it. A parsed file is immutable and thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace infergate::engine {

class GgufError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class GgufType : std::uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8,
  array = 9, u64 = 10, i64 = 11, f64 = 12,
};
const char* gguf_type_name(GgufType t);

// ggml tensor types this reader knows the size of (the engine computes with F32, F16, Q8_0).
enum class GgmlType : std::uint32_t { f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q8_0 = 8, bf16 = 30 };
std::string ggml_type_name(std::uint32_t type);

struct GgufArray {
  GgufType type = GgufType::u8;
  std::vector<std::string> strings;  // when type == string
  std::vector<double> numbers;       // every numeric or bool element (exact up to 2^53)
  std::size_t size() const { return type == GgufType::string ? strings.size() : numbers.size(); }
};

struct GgufValue {
  GgufType type = GgufType::u8;
  std::variant<std::uint64_t, std::int64_t, double, bool, std::string, GgufArray> value;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<std::uint64_t> dims;  // dims[0] is the fastest-varying (a row's length)
  std::uint32_t type = 0;           // ggml type id
  std::uint64_t offset = 0;         // from the start of the data section
  std::uint64_t n_bytes = 0;        // 0 when the type is unknown to this reader
  const std::uint8_t* data = nullptr;  // into the mapping; null when n_bytes is 0
  std::uint64_t elements() const;
};

class GgufFile {
 public:
  // Maps and parses the file; throws GgufError naming the file and what is wrong.
  static GgufFile open(const std::string& path);
  // Parses bytes that outlive the result (the fuzzer and tests use this).
  static GgufFile parse(std::span<const std::uint8_t> bytes, std::string_view what = "buffer");

  std::uint32_t version() const { return version_; }
  std::uint64_t alignment() const { return alignment_; }
  const std::string& source() const { return source_; }

  const GgufValue* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }
  // Typed getters: missing key or wrong type -> GgufError naming the key and what it holds.
  std::string get_string(std::string_view key) const;
  std::uint64_t get_uint(std::string_view key) const;  // any non-negative integer type
  double get_float(std::string_view key) const;        // f32, f64 or any integer
  bool get_bool(std::string_view key) const;
  const GgufArray& get_array(std::string_view key) const;
  std::optional<std::uint64_t> get_uint_or(std::string_view key) const;  // nullopt if missing

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* tensor(std::string_view name) const;
  const std::map<std::string, GgufValue, std::less<>>& metadata() const { return kv_; }

 private:
  std::shared_ptr<const void> mapping_;  // keeps the mmap alive
  std::string source_;
  std::uint32_t version_ = 0;
  std::uint64_t alignment_ = 32;
  std::map<std::string, GgufValue, std::less<>> kv_;
  std::vector<GgufTensorInfo> tensors_;
};

// Writes a GGUF v3 file. Values and tensors are written in the order added.
class GgufWriter {
 public:
  void add_string(std::string key, std::string v);
  void add_u32(std::string key, std::uint32_t v);
  void add_i32(std::string key, std::int32_t v);
  void add_f32(std::string key, float v);
  void add_bool(std::string key, bool v);
  void add_string_array(std::string key, std::vector<std::string> v);
  void add_f32_array(std::string key, std::vector<float> v);
  void add_i32_array(std::string key, std::vector<std::int32_t> v);
  // dims[0] is the row length. bytes must be exactly the size the type and dims imply.
  void add_tensor(std::string name, std::vector<std::uint64_t> dims, std::uint32_t ggml_type,
                  std::vector<std::uint8_t> bytes);
  // Writes to path (via a temporary file renamed into place); throws GgufError on I/O errors.
  void write(const std::string& path) const;
  std::vector<std::uint8_t> serialize() const;

 private:
  struct Tensor {
    std::string name;
    std::vector<std::uint64_t> dims;
    std::uint32_t type;
    std::vector<std::uint8_t> bytes;
  };
  std::vector<std::uint8_t> kv_bytes_;
  std::uint64_t kv_count_ = 0;
  std::vector<Tensor> tensors_;
  void key(const std::string& k, GgufType t);
};

// Bytes a tensor of `elements` values of ggml type `type` takes; nullopt for types this reader
// does not know, or when elements is not a whole number of blocks.
std::optional<std::uint64_t> ggml_tensor_bytes(std::uint32_t type, std::uint64_t elements);

}  // namespace infergate::engine
