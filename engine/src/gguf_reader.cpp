// GGUF parsing. Every read goes through Cursor, which refuses to step past the end, and every
// count read from the file is checked against the bytes left before anything is allocated, so
// a malformed or hostile file yields a GgufError and never a crash or a huge allocation.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "infergate/engine/gguf.h"

namespace infergate::engine {

namespace {

constexpr std::uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr std::uint64_t kMaxDims = 4;

class Cursor {
 public:
  Cursor(std::span<const std::uint8_t> b, const std::string& what) : b_(b), what_(what) {}

  std::size_t pos() const { return pos_; }
  std::size_t left() const { return b_.size() - pos_; }

  template <class T>
  T read(const char* field) {
    need(sizeof(T), field);
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const char* field) {
    const auto len = read<std::uint64_t>(field);
    if (len > left()) fail(std::string(field) + ": string length " + std::to_string(len) +
                           " runs past the end of the file (truncated or corrupt)");
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), static_cast<std::size_t>(len));
    pos_ += static_cast<std::size_t>(len);
    return s;
  }

  [[noreturn]] void fail(const std::string& msg) const {
    throw GgufError(what_ + ": " + msg + " (at byte " + std::to_string(pos_) + ")");
  }

 private:
  void need(std::size_t n, const char* field) const {
    if (n > left()) fail(std::string("file ends inside ") + field + " (truncated)");
  }
  std::span<const std::uint8_t> b_;
  std::size_t pos_ = 0;
  const std::string& what_;
};

std::size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::u8: case GgufType::i8: case GgufType::boolean: return 1;
    case GgufType::u16: case GgufType::i16: return 2;
    case GgufType::u32: case GgufType::i32: case GgufType::f32: return 4;
    case GgufType::u64: case GgufType::i64: case GgufType::f64: return 8;
    case GgufType::string: return 8;  // at least its length field
    case GgufType::array: return 12;  // at least its type and count
  }
  return 1;
}

bool valid_type(std::uint32_t t) { return t <= static_cast<std::uint32_t>(GgufType::f64); }

// A numeric or bool scalar as the variant the reader keeps.
GgufValue read_scalar(Cursor& c, GgufType t, const char* field) {
  GgufValue v;
  v.type = t;
  switch (t) {
    case GgufType::u8: v.value = std::uint64_t{c.read<std::uint8_t>(field)}; break;
    case GgufType::i8: v.value = std::int64_t{c.read<std::int8_t>(field)}; break;
    case GgufType::u16: v.value = std::uint64_t{c.read<std::uint16_t>(field)}; break;
    case GgufType::i16: v.value = std::int64_t{c.read<std::int16_t>(field)}; break;
    case GgufType::u32: v.value = std::uint64_t{c.read<std::uint32_t>(field)}; break;
    case GgufType::i32: v.value = std::int64_t{c.read<std::int32_t>(field)}; break;
    case GgufType::u64: v.value = c.read<std::uint64_t>(field); break;
    case GgufType::i64: v.value = c.read<std::int64_t>(field); break;
    case GgufType::f32: v.value = double{c.read<float>(field)}; break;
    case GgufType::f64: v.value = c.read<double>(field); break;
    case GgufType::boolean: {
      const auto b = c.read<std::uint8_t>(field);
      if (b > 1) c.fail(std::string(field) + ": bool value " + std::to_string(b) + " is not 0 or 1");
      v.value = b == 1;
      break;
    }
    case GgufType::string: v.value = c.read_string(field); break;
    case GgufType::array: c.fail("internal: array read as scalar");
  }
  return v;
}

double as_number(const GgufValue& v) {
  if (const auto* u = std::get_if<std::uint64_t>(&v.value)) return static_cast<double>(*u);
  if (const auto* i = std::get_if<std::int64_t>(&v.value)) return static_cast<double>(*i);
  if (const auto* d = std::get_if<double>(&v.value)) return *d;
  if (const auto* b = std::get_if<bool>(&v.value)) return *b ? 1.0 : 0.0;
  return 0;
}

GgufValue read_value(Cursor& c, GgufType t, const std::string& key) {
  const char* field = key.c_str();
  if (t != GgufType::array) return read_scalar(c, t, field);
  const auto elem = c.read<std::uint32_t>(field);
  if (!valid_type(elem)) c.fail("metadata '" + key + "': unknown array element type " + std::to_string(elem));
  const auto et = static_cast<GgufType>(elem);
  if (et == GgufType::array) c.fail("metadata '" + key + "': nested arrays are not supported");
  const auto count = c.read<std::uint64_t>(field);
  if (count > c.left() / scalar_size(et)) {
    c.fail("metadata '" + key + "': array of " + std::to_string(count) +
           " elements runs past the end of the file (truncated or corrupt)");
  }
  GgufArray arr;
  arr.type = et;
  if (et == GgufType::string) {
    arr.strings.reserve(static_cast<std::size_t>(count));
    for (std::uint64_t i = 0; i < count; ++i) arr.strings.push_back(c.read_string(field));
  } else {
    arr.numbers.reserve(static_cast<std::size_t>(count));
    for (std::uint64_t i = 0; i < count; ++i) arr.numbers.push_back(as_number(read_scalar(c, et, field)));
  }
  GgufValue v;
  v.type = GgufType::array;
  v.value = std::move(arr);
  return v;
}

[[noreturn]] void key_error(const std::string& source, std::string_view key, const std::string& msg) {
  throw GgufError(source + ": metadata '" + std::string(key) + "' " + msg);
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  static const char* names[] = {"u8",  "i8",  "u16",    "i16",   "u32", "i32", "f32",
                                "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<std::uint32_t>(t);
  return i < 13 ? names[i] : "unknown";
}

std::string ggml_type_name(std::uint32_t type) {
  switch (type) {
    case 0: return "F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 6: return "Q5_0";
    case 7: return "Q5_1";
    case 8: return "Q8_0";
    case 10: return "Q2_K";
    case 11: return "Q3_K";
    case 12: return "Q4_K";
    case 13: return "Q5_K";
    case 14: return "Q6_K";
    case 30: return "BF16";
    default: return "type " + std::to_string(type);
  }
}

std::optional<std::uint64_t> ggml_tensor_bytes(std::uint32_t type, std::uint64_t elements) {
  auto blocks = [&](std::uint64_t block, std::uint64_t bytes) -> std::optional<std::uint64_t> {
    if (elements % block != 0) return std::nullopt;
    return elements / block * bytes;
  };
  switch (type) {
    case 0: return elements * 4;
    case 1: case 30: return elements * 2;
    case 2: return blocks(32, 18);
    case 3: return blocks(32, 20);
    case 8: return blocks(32, 34);
    default: return std::nullopt;
  }
}

std::uint64_t GgufTensorInfo::elements() const {
  std::uint64_t n = 1;
  for (const auto d : dims) n *= d;
  return n;
}

GgufFile GgufFile::parse(std::span<const std::uint8_t> bytes, std::string_view what) {
  GgufFile f;
  f.source_ = std::string(what);
  Cursor c(bytes, f.source_);
  if (bytes.size() < 4 || c.read<std::uint32_t>("magic") != kMagic) {
    throw GgufError(f.source_ + ": not a GGUF file (the first 4 bytes are not \"GGUF\")");
  }
  f.version_ = c.read<std::uint32_t>("version");
  if (f.version_ != 3 && f.version_ != 2) {
    c.fail("GGUF version " + std::to_string(f.version_) + " is not supported (expected 3)");
  }
  const auto n_tensors = c.read<std::uint64_t>("tensor count");
  const auto n_kv = c.read<std::uint64_t>("metadata count");
  if (n_kv > c.left() / 12) {
    c.fail("metadata count " + std::to_string(n_kv) + " is larger than the file could hold (truncated or corrupt)");
  }
  for (std::uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.read_string("metadata key");
    const auto t = c.read<std::uint32_t>("metadata value type");
    if (!valid_type(t)) c.fail("metadata '" + key + "' has unknown value type " + std::to_string(t));
    GgufValue v = read_value(c, static_cast<GgufType>(t), key);
    if (f.kv_.count(key) != 0) c.fail("metadata key '" + key + "' appears twice");
    f.kv_.emplace(std::move(key), std::move(v));
  }
  if (const auto* a = f.find("general.alignment")) {
    // The GGUF spec asks for a multiple of 8; less would misalign F32 and F16 tensor data.
    const auto* u = std::get_if<std::uint64_t>(&a->value);
    if (u == nullptr) {
      throw GgufError(f.source_ + ": general.alignment should be an unsigned integer but is " + gguf_type_name(a->type));
    }
    if (*u < 8 || (*u & (*u - 1)) != 0 || *u > 65536) {
      throw GgufError(f.source_ + ": general.alignment = " + std::to_string(*u) +
                      " is not allowed: it must be a power of two from 8 to 65536");
    }
    f.alignment_ = *u;
  }
  // A tensor info is at least a name length, n_dims, one dim, type and offset.
  if (n_tensors > c.left() / 32) {
    c.fail("tensor count " + std::to_string(n_tensors) + " is larger than the file could hold (truncated or corrupt)");
  }
  f.tensors_.reserve(static_cast<std::size_t>(n_tensors));
  std::set<std::string> names;  // a set, not a scan: a hostile file may hold millions of tensors
  for (std::uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = c.read_string("tensor name");
    const auto n_dims = c.read<std::uint32_t>("tensor dimension count");
    if (n_dims == 0 || n_dims > kMaxDims) {
      c.fail("tensor '" + t.name + "' has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
    }
    std::uint64_t elements = 1;
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      const auto dim = c.read<std::uint64_t>("tensor dimension");
      if (dim == 0 || dim > (std::uint64_t{1} << 40) || elements > (std::uint64_t{1} << 40) / dim) {
        c.fail("tensor '" + t.name + "' has an impossible shape (dimension " + std::to_string(dim) + ")");
      }
      elements *= dim;
      t.dims.push_back(dim);
    }
    t.type = c.read<std::uint32_t>("tensor type");
    t.offset = c.read<std::uint64_t>("tensor offset");
    if (t.offset % f.alignment_ != 0) {
      c.fail("tensor '" + t.name + "' offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
             std::to_string(f.alignment_));
    }
    t.n_bytes = ggml_tensor_bytes(t.type, elements).value_or(0);
    if (!names.insert(t.name).second) c.fail("tensor '" + t.name + "' appears twice");
    f.tensors_.push_back(std::move(t));
  }
  const std::uint64_t data_start = (c.pos() + f.alignment_ - 1) / f.alignment_ * f.alignment_;
  for (auto& t : f.tensors_) {
    if (t.n_bytes == 0) continue;  // unknown type: its use is refused by whoever needs it
    if (data_start > bytes.size() || t.offset > bytes.size() - data_start ||
        t.n_bytes > bytes.size() - data_start - t.offset) {
      throw GgufError(f.source_ + ": tensor '" + t.name + "' (" + std::to_string(t.n_bytes) +
                      " bytes at data offset " + std::to_string(t.offset) +
                      ") lies outside the file (truncated or corrupt)");
    }
    t.data = bytes.data() + data_start + t.offset;
  }
  return f;
}

GgufFile GgufFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw GgufError(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw GgufError(path + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw GgufError(path + (S_ISDIR(st.st_mode) ? ": is a directory, not a GGUF file" : ": not a regular file"));
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    throw GgufError(path + ": the file is empty, not a GGUF model");
  }
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);
  if (p == MAP_FAILED) throw GgufError(path + ": cannot map: " + std::strerror(map_errno));
  std::shared_ptr<const void> mapping(p, [size](const void* q) { ::munmap(const_cast<void*>(q), size); });
  GgufFile f = parse({static_cast<const std::uint8_t*>(p), size}, path);
  f.mapping_ = std::move(mapping);
  return f;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  const auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

const GgufTensorInfo* GgufFile::tensor(std::string_view name) const {
  for (const auto& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::string GgufFile::get_string(std::string_view key) const {
  const auto* v = find(key);
  if (v == nullptr) key_error(source_, key, "is missing");
  if (const auto* s = std::get_if<std::string>(&v->value)) return *s;
  key_error(source_, key, std::string("should be a string but is ") + gguf_type_name(v->type));
}

std::optional<std::uint64_t> GgufFile::get_uint_or(std::string_view key) const {
  const auto* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (const auto* u = std::get_if<std::uint64_t>(&v->value)) return *u;
  if (const auto* i = std::get_if<std::int64_t>(&v->value); i != nullptr && *i >= 0) {
    return static_cast<std::uint64_t>(*i);
  }
  key_error(source_, key, std::string("should be a non-negative integer but is ") + gguf_type_name(v->type));
}

std::uint64_t GgufFile::get_uint(std::string_view key) const {
  const auto v = get_uint_or(key);
  if (!v) key_error(source_, key, "is missing");
  return *v;
}

double GgufFile::get_float(std::string_view key) const {
  const auto* v = find(key);
  if (v == nullptr) key_error(source_, key, "is missing");
  if (std::holds_alternative<std::string>(v->value) || std::holds_alternative<GgufArray>(v->value) ||
      std::holds_alternative<bool>(v->value)) {
    key_error(source_, key, std::string("should be a number but is ") + gguf_type_name(v->type));
  }
  return as_number(*v);
}

bool GgufFile::get_bool(std::string_view key) const {
  const auto* v = find(key);
  if (v == nullptr) key_error(source_, key, "is missing");
  if (const auto* b = std::get_if<bool>(&v->value)) return *b;
  key_error(source_, key, std::string("should be a bool but is ") + gguf_type_name(v->type));
}

const GgufArray& GgufFile::get_array(std::string_view key) const {
  const auto* v = find(key);
  if (v == nullptr) key_error(source_, key, "is missing");
  if (const auto* a = std::get_if<GgufArray>(&v->value)) return *a;
  key_error(source_, key, std::string("should be an array but is ") + gguf_type_name(v->type));
}

}  // namespace infergate::engine
