// GGUF v3 writing for make-model: metadata in the order added, tensor infos, then each
// tensor's bytes at the next multiple of the 32-byte alignment.
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "infergate/engine/gguf.h"

namespace infergate::engine {

namespace {

constexpr std::uint64_t kAlignment = 32;

// resize + memcpy rather than insert: GCC 12 misreports small inserts as overflows.
void put_bytes(std::vector<std::uint8_t>& out, const void* p, std::size_t n) {
  const std::size_t at = out.size();
  out.resize(at + n);
  if (n != 0) std::memcpy(out.data() + at, p, n);
}

template <class T>
void put(std::vector<std::uint8_t>& out, T v) {
  put_bytes(out, &v, sizeof(T));
}

void put_string(std::vector<std::uint8_t>& out, const std::string& s) {
  put<std::uint64_t>(out, s.size());
  put_bytes(out, s.data(), s.size());
}

}  // namespace

void GgufWriter::key(const std::string& k, GgufType t) {
  put_string(kv_bytes_, k);
  put<std::uint32_t>(kv_bytes_, static_cast<std::uint32_t>(t));
  ++kv_count_;
}

void GgufWriter::add_string(std::string k, std::string v) {
  key(k, GgufType::string);
  put_string(kv_bytes_, v);
}
void GgufWriter::add_u32(std::string k, std::uint32_t v) {
  key(k, GgufType::u32);
  put(kv_bytes_, v);
}
void GgufWriter::add_i32(std::string k, std::int32_t v) {
  key(k, GgufType::i32);
  put(kv_bytes_, v);
}
void GgufWriter::add_f32(std::string k, float v) {
  key(k, GgufType::f32);
  put(kv_bytes_, v);
}
void GgufWriter::add_bool(std::string k, bool v) {
  key(k, GgufType::boolean);
  put<std::uint8_t>(kv_bytes_, v ? 1 : 0);
}
void GgufWriter::add_string_array(std::string k, std::vector<std::string> v) {
  key(k, GgufType::array);
  put<std::uint32_t>(kv_bytes_, static_cast<std::uint32_t>(GgufType::string));
  put<std::uint64_t>(kv_bytes_, v.size());
  for (const auto& s : v) put_string(kv_bytes_, s);
}
void GgufWriter::add_f32_array(std::string k, std::vector<float> v) {
  key(k, GgufType::array);
  put<std::uint32_t>(kv_bytes_, static_cast<std::uint32_t>(GgufType::f32));
  put<std::uint64_t>(kv_bytes_, v.size());
  for (const float x : v) put(kv_bytes_, x);
}
void GgufWriter::add_i32_array(std::string k, std::vector<std::int32_t> v) {
  key(k, GgufType::array);
  put<std::uint32_t>(kv_bytes_, static_cast<std::uint32_t>(GgufType::i32));
  put<std::uint64_t>(kv_bytes_, v.size());
  for (const auto x : v) put(kv_bytes_, x);
}

void GgufWriter::add_tensor(std::string name, std::vector<std::uint64_t> dims, std::uint32_t ggml_type,
                            std::vector<std::uint8_t> bytes) {
  std::uint64_t elements = 1;
  for (const auto d : dims) elements *= d;
  const auto expected = ggml_tensor_bytes(ggml_type, elements);
  if (!expected || *expected != bytes.size()) {
    throw GgufError("tensor '" + name + "': " + std::to_string(bytes.size()) +
                    " bytes do not match its shape and type " + ggml_type_name(ggml_type));
  }
  tensors_.push_back({std::move(name), std::move(dims), ggml_type, std::move(bytes)});
}

std::vector<std::uint8_t> GgufWriter::serialize() const {
  std::vector<std::uint8_t> out;
  put<std::uint32_t>(out, 0x46554747);
  put<std::uint32_t>(out, 3);
  put<std::uint64_t>(out, tensors_.size());
  put<std::uint64_t>(out, kv_count_ + 1);
  put_bytes(out, kv_bytes_.data(), kv_bytes_.size());
  put_string(out, "general.alignment");
  put<std::uint32_t>(out, static_cast<std::uint32_t>(GgufType::u32));
  put<std::uint32_t>(out, static_cast<std::uint32_t>(kAlignment));
  std::uint64_t offset = 0;
  for (const auto& t : tensors_) {
    put_string(out, t.name);
    put<std::uint32_t>(out, static_cast<std::uint32_t>(t.dims.size()));
    for (const auto d : t.dims) put<std::uint64_t>(out, d);
    put<std::uint32_t>(out, t.type);
    put<std::uint64_t>(out, offset);
    offset += (t.bytes.size() + kAlignment - 1) / kAlignment * kAlignment;
  }
  out.resize((out.size() + kAlignment - 1) / kAlignment * kAlignment, 0);
  for (const auto& t : tensors_) {
    put_bytes(out, t.bytes.data(), t.bytes.size());
    out.resize((out.size() + kAlignment - 1) / kAlignment * kAlignment, 0);
  }
  return out;
}

void GgufWriter::write(const std::string& path) const {
  const auto bytes = serialize();
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) throw GgufError(path + ": cannot create: " + std::strerror(errno));
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  if (std::fclose(f) != 0 || !ok) {
    std::remove(tmp.c_str());
    throw GgufError(path + ": write failed: " + std::strerror(errno));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw GgufError(path + ": cannot rename into place: " + ec.message());
  }
}

}  // namespace infergate::engine
