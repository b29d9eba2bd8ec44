// The GGUF reader and the llama loader: a writer -> reader round trip, and one test per way a
// file can be malformed, each checking the exception type and that the message names the
// problem. Malformed files are written byte by byte (RawGguf) or rewritten from the toy model
// with something left out, added or changed (rewrite_toy).
#include "infergate/engine/gguf.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <unistd.h>

#include <gtest/gtest.h>

#include "engine/engine_test_util.h"
#include "infergate/engine/model.h"

namespace ie = infergate::engine;
using ie::GgufError;
using ie::GgufType;
using ie::ModelError;
using infergate::kernels::WeightType;

namespace {

using Bytes = std::vector<std::uint8_t>;

// Emits GGUF fields in file order; the test decides what is right or wrong about them.
class RawGguf {
 public:
  RawGguf(std::uint64_t n_tensors, std::uint64_t n_kv, std::uint32_t version = 3) {
    put<std::uint32_t>(0x46554747);
    put(version);
    put(n_tensors);
    put(n_kv);
  }
  template <class T>
  RawGguf& put(T v) {
    const std::size_t at = b_.size();
    b_.resize(at + sizeof(T));
    std::memcpy(b_.data() + at, &v, sizeof(T));
    return *this;
  }
  RawGguf& str(std::string_view s) {
    put<std::uint64_t>(s.size());
    b_.insert(b_.end(), s.begin(), s.end());
    return *this;
  }
  RawGguf& key(std::string_view k, GgufType t) {
    str(k);
    return put(static_cast<std::uint32_t>(t));
  }
  RawGguf& kv_u32(std::string_view k, std::uint32_t v) { return key(k, GgufType::u32).put(v); }
  RawGguf& kv_str(std::string_view k, std::string_view v) {
    return key(k, GgufType::string).str(v);
  }
  RawGguf& tensor(std::string_view name, std::vector<std::uint64_t> dims, std::uint32_t type,
                  std::uint64_t offset) {
    str(name);
    put(static_cast<std::uint32_t>(dims.size()));
    for (const auto d : dims)
      put(d);
    put(type);
    return put(offset);
  }
  RawGguf& pad_to(std::size_t alignment) {
    b_.resize((b_.size() + alignment - 1) / alignment * alignment, 0);
    return *this;
  }
  RawGguf& zeros(std::size_t n) {
    b_.resize(b_.size() + n, 0);
    return *this;
  }
  const Bytes& bytes() const { return b_; }

 private:
  Bytes b_;
};

// The message of the E that f throws; a test failure when it throws nothing or something else.
template <class E>
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw the wrong exception type: " << e.what();
    return {};
  }
  ADD_FAILURE() << "threw nothing";
  return {};
}

std::string parse_error(const Bytes& b) {
  return error_of<GgufError>([&] { (void)ie::GgufFile::parse(b, "test.gguf"); });
}

std::string load_error(const Bytes& b) {
  return error_of<ModelError>(
      [&] { (void)ie::Model::from_gguf(ie::GgufFile::parse(b, "test.gguf")); });
}

#define EXPECT_MENTIONS(message, text) \
  EXPECT_NE((message).find(text), std::string::npos) << "message: " << (message)

const Bytes& toy() {
  return ie::testing::toy_bytes(WeightType::f32);
}

// The toy model written again, minus the metadata keys and tensors in `drop`, plus what `add`
// writes.
Bytes rewrite_toy(const std::set<std::string>& drop,
                  const std::function<void(ie::GgufWriter&)>& add = {}) {
  const auto f = ie::GgufFile::parse(toy(), "toy");
  ie::GgufWriter w;
  for (const auto& [k, v] : f.metadata()) {
    if (drop.count(k) != 0 || k == "general.alignment") continue;
    switch (v.type) {
      case GgufType::string:
        w.add_string(k, std::get<std::string>(v.value));
        break;
      case GgufType::u32:
        w.add_u32(k, static_cast<std::uint32_t>(std::get<std::uint64_t>(v.value)));
        break;
      case GgufType::i32:
        w.add_i32(k, static_cast<std::int32_t>(std::get<std::int64_t>(v.value)));
        break;
      case GgufType::f32:
        w.add_f32(k, static_cast<float>(std::get<double>(v.value)));
        break;
      case GgufType::boolean:
        w.add_bool(k, std::get<bool>(v.value));
        break;
      case GgufType::array: {
        const auto& a = std::get<ie::GgufArray>(v.value);
        if (a.type == GgufType::string) {
          w.add_string_array(k, a.strings);
        } else if (a.type == GgufType::i32) {
          w.add_i32_array(k, {a.numbers.begin(), a.numbers.end()});
        } else {
          w.add_f32_array(k, {a.numbers.begin(), a.numbers.end()});
        }
        break;
      }
      default:
        ADD_FAILURE() << "toy metadata '" << k << "' has a type rewrite_toy does not copy";
    }
  }
  for (const auto& t : f.tensors()) {
    if (drop.count(t.name) != 0) continue;
    w.add_tensor(t.name, t.dims, t.type, {t.data, t.data + t.n_bytes});
  }
  if (add) add(w);
  return w.serialize();
}

// Sets the ggml type of tensor `name` in serialized bytes (the writer refuses unknown types).
void set_tensor_type(Bytes& b, const std::string& name, std::uint32_t type) {
  RawGguf needle(0, 0);
  needle.str(name);
  const auto& n = needle.bytes();
  const auto it = std::search(b.begin(), b.end(), n.begin() + 24, n.end());
  ASSERT_NE(it, b.end()) << "no tensor " << name;
  const auto at = static_cast<std::size_t>(it - b.begin()) + n.size() - 24;
  std::uint32_t n_dims;
  std::memcpy(&n_dims, b.data() + at, 4);
  std::memcpy(b.data() + at + 4 + 8 * n_dims, &type, 4);
}

Bytes f32_bytes(std::size_t n, float start = 0.5f) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = start + static_cast<float>(i);
  Bytes b(n * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("ig-gguf-test-" + std::to_string(::getpid()) + "-" + name))
      .string();
}

// ---- round trip -----------------------------------------------------------------------------

TEST(GgufRoundTrip, EveryWriterTypeAndTensorComesBack) {
  ie::GgufWriter w;
  w.add_string("s", "h\xC3\xA9llo");
  w.add_u32("u", 4000000000u);
  w.add_i32("i", -7);
  w.add_f32("f", 1.5f);
  w.add_bool("b", true);
  w.add_string_array("sa", {"a", "", "ccc"});
  w.add_f32_array("fa", {0.25f, -2.0f});
  w.add_i32_array("ia", {1, -2, 2147483647});
  const Bytes q8(2 * 34, 0x11), q4(18, 0x22), bf(14, 0x33);
  w.add_tensor("t.f32", {3, 2}, 0, f32_bytes(6));
  w.add_tensor("t.f16", {5}, 1, Bytes(10, 0x44));
  w.add_tensor("t.q8", {32, 2}, 8, q8);
  w.add_tensor("t.q4", {32}, 2, q4);
  w.add_tensor("t.bf16", {7}, 30, bf);
  const Bytes b = w.serialize();
  const auto f = ie::GgufFile::parse(b, "rt");

  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.get_string("s"), "h\xC3\xA9llo");
  EXPECT_EQ(f.find("s")->type, GgufType::string);
  EXPECT_EQ(f.get_uint("u"), 4000000000u);
  EXPECT_EQ(f.find("u")->type, GgufType::u32);
  EXPECT_EQ(std::get<std::int64_t>(f.find("i")->value), -7);
  EXPECT_EQ(f.find("i")->type, GgufType::i32);
  EXPECT_EQ(f.get_float("f"), 1.5);
  EXPECT_EQ(f.find("f")->type, GgufType::f32);
  EXPECT_TRUE(f.get_bool("b"));
  EXPECT_EQ(f.get_array("sa").strings, (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(f.get_array("sa").type, GgufType::string);
  EXPECT_EQ(f.get_array("fa").numbers, (std::vector<double>{0.25, -2.0}));
  EXPECT_EQ(f.get_array("fa").type, GgufType::f32);
  EXPECT_EQ(f.get_array("ia").numbers, (std::vector<double>{1, -2, 2147483647}));
  EXPECT_EQ(f.get_array("ia").type, GgufType::i32);
  EXPECT_EQ(f.get_uint("general.alignment"), 32u);
  EXPECT_EQ(f.metadata().size(), 9u);

  ASSERT_EQ(f.tensors().size(), 5u);
  const std::vector<std::pair<std::string, Bytes>> want = {{"t.f32", f32_bytes(6)},
                                                           {"t.f16", Bytes(10, 0x44)},
                                                           {"t.q8", q8},
                                                           {"t.q4", q4},
                                                           {"t.bf16", bf}};
  const std::uint8_t* data_start = f.tensors()[0].data;
  EXPECT_EQ((data_start - b.data()) % 32, 0);
  for (const auto& [name, bytes] : want) {
    const auto* t = f.tensor(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->n_bytes, bytes.size()) << name;
    EXPECT_EQ(t->offset % 32, 0u) << name;
    EXPECT_EQ(t->data, data_start + t->offset) << name;
    EXPECT_EQ((t->data - b.data()) % 32, 0) << name;
    EXPECT_EQ(Bytes(t->data, t->data + t->n_bytes), bytes) << name;
  }
  EXPECT_EQ(f.tensor("t.f32")->dims, (std::vector<std::uint64_t>{3, 2}));
  EXPECT_EQ(f.tensor("t.f32")->elements(), 6u);
  EXPECT_EQ(f.tensor("t.q8")->type, 8u);
  EXPECT_EQ(f.tensor("nope"), nullptr);
}

TEST(GgufRoundTrip, OpenMapsTheFileWithAlignedTensorData) {
  ie::GgufWriter w;
  w.add_string("general.architecture", "none");
  w.add_tensor("a", {3}, 0, f32_bytes(3));
  w.add_tensor("b", {5}, 0, f32_bytes(5, 9.0f));
  const auto path = temp_path("open.gguf");
  w.write(path);
  const auto f = ie::GgufFile::open(path);
  std::filesystem::remove(path);
  EXPECT_EQ(f.source(), path);
  for (const auto& t : f.tensors()) {
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.data) % 32, 0u) << t.name;
  }
  float b0;
  std::memcpy(&b0, f.tensor("b")->data, 4);
  EXPECT_EQ(b0, 9.0f);
}

TEST(GgufRoundTrip, EveryGgufValueTypeWrittenByHand) {
  RawGguf r(0, 8);
  r.key("u8", GgufType::u8).put<std::uint8_t>(200);
  r.key("i8", GgufType::i8).put<std::int8_t>(-100);
  r.key("u16", GgufType::u16).put<std::uint16_t>(60000);
  r.key("i16", GgufType::i16).put<std::int16_t>(-30000);
  r.key("u64", GgufType::u64).put<std::uint64_t>(1ULL << 60);
  r.key("i64", GgufType::i64).put<std::int64_t>(-(1LL << 60));
  r.key("f64", GgufType::f64).put<double>(0.125);
  r.key("au16", GgufType::array)
      .put(static_cast<std::uint32_t>(GgufType::u16))
      .put<std::uint64_t>(2);
  r.put<std::uint16_t>(1).put<std::uint16_t>(65535);
  const auto f = ie::GgufFile::parse(r.bytes(), "hand");
  EXPECT_EQ(f.get_uint("u8"), 200u);
  EXPECT_EQ(std::get<std::int64_t>(f.find("i8")->value), -100);
  EXPECT_EQ(f.get_uint("u16"), 60000u);
  EXPECT_EQ(f.get_float("i16"), -30000.0);
  EXPECT_EQ(f.get_uint("u64"), 1ULL << 60);
  EXPECT_EQ(std::get<std::int64_t>(f.find("i64")->value), -(1LL << 60));
  EXPECT_EQ(f.get_float("f64"), 0.125);
  EXPECT_EQ(f.get_array("au16").numbers, (std::vector<double>{1, 65535}));
  EXPECT_TRUE(f.tensors().empty());
}

TEST(GgufRoundTrip, ToyModelLoads) {
  const auto m = ie::testing::toy_model();
  EXPECT_EQ(m->config().n_layer, 2);
  EXPECT_EQ(m->layers().size(), 2u);
}

TEST(GgufGetters, WrongTypeOrMissingKeyIsNamed) {
  const auto f = ie::GgufFile::parse(toy(), "toy");
  EXPECT_MENTIONS(error_of<GgufError>([&] { (void)f.get_uint("general.name"); }),
                  "metadata 'general.name' should be a non-negative integer but is string");
  EXPECT_MENTIONS(error_of<GgufError>([&] { (void)f.get_string("llama.block_count"); }),
                  "should be a string but is u32");
  EXPECT_MENTIONS(error_of<GgufError>([&] { (void)f.get_float("nope.key"); }),
                  "'nope.key' is missing");
  EXPECT_MENTIONS(error_of<GgufError>([&] { (void)f.get_bool("general.name"); }),
                  "should be a bool");
  EXPECT_MENTIONS(error_of<GgufError>([&] { (void)f.get_array("general.name"); }),
                  "should be an array");
}

// ---- the header -----------------------------------------------------------------------------

TEST(GgufMalformed, BadMagic) {
  Bytes b = toy();
  b[0] = 'X';
  EXPECT_MENTIONS(parse_error(b), "not a GGUF file");
  EXPECT_MENTIONS(parse_error({}), "not a GGUF file");
  EXPECT_MENTIONS(parse_error({'G', 'G', 'U'}), "not a GGUF file");
}

TEST(GgufMalformed, UnsupportedVersion) {
  EXPECT_MENTIONS(parse_error(RawGguf(0, 0, 4).bytes()), "version 4 is not supported");
  EXPECT_MENTIONS(parse_error(RawGguf(0, 0, 1).bytes()), "version 1 is not supported");
}

TEST(GgufMalformed, EveryTruncationThrows) {
  const Bytes& full = toy();
  const auto f = ie::GgufFile::parse(full, "toy");
  const auto data_start = static_cast<std::size_t>(f.tensors().front().data - full.data());
  ASSERT_GT(data_start, 1000u);
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n <= data_start; ++n)
    lengths.push_back(n);
  for (std::size_t n = data_start + 1; n < full.size(); n += 997)
    lengths.push_back(n);
  lengths.push_back(full.size() - 1);
  for (const auto n : lengths) {
    const Bytes prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    const std::string msg = parse_error(prefix);
    if (n < 4) {
      EXPECT_MENTIONS(msg, "not a GGUF file");
    } else {
      EXPECT_MENTIONS(msg, "truncated");
    }
    if (HasFailure()) {
      ADD_FAILURE() << "at prefix length " << n;
      break;
    }
  }
}

TEST(GgufMalformed, HugeCountsAreRefusedBeforeAllocating) {
  EXPECT_MENTIONS(parse_error(RawGguf(0, 1ULL << 60).bytes()),
                  "metadata count 1152921504606846976");
  EXPECT_MENTIONS(parse_error(RawGguf(1ULL << 62, 0).bytes()), "tensor count 4611686018427387904");
  RawGguf s(0, 1);
  s.put<std::uint64_t>(~0ULL).zeros(16);
  EXPECT_MENTIONS(parse_error(s.bytes()), "string length 18446744073709551615 runs past the end");
  RawGguf a(0, 1);
  a.key("big", GgufType::array)
      .put(static_cast<std::uint32_t>(GgufType::u8))
      .put<std::uint64_t>(1ULL << 61);
  EXPECT_MENTIONS(parse_error(a.bytes()),
                  "'big': array of 2305843009213693952 elements runs past the end");
  RawGguf sa(0, 1);
  sa.key("strs", GgufType::array)
      .put(static_cast<std::uint32_t>(GgufType::string))
      .put<std::uint64_t>(3);
  sa.str("x").put<std::uint64_t>(1ULL << 40).zeros(20);
  EXPECT_MENTIONS(parse_error(sa.bytes()), "string length 1099511627776 runs past the end");
}

// ---- metadata -------------------------------------------------------------------------------

TEST(GgufMalformed, DuplicateKey) {
  RawGguf r(0, 2);
  r.kv_u32("llama.block_count", 1).kv_u32("llama.block_count", 2);
  EXPECT_MENTIONS(parse_error(r.bytes()), "metadata key 'llama.block_count' appears twice");
}

TEST(GgufMalformed, UnknownValueTypes) {
  RawGguf r(0, 1);
  r.str("k").put<std::uint32_t>(13).put<std::uint32_t>(0);
  EXPECT_MENTIONS(parse_error(r.bytes()), "metadata 'k' has unknown value type 13");
  RawGguf e(0, 1);
  e.key("arr", GgufType::array).put<std::uint32_t>(99).put<std::uint64_t>(0);
  EXPECT_MENTIONS(parse_error(e.bytes()), "'arr': unknown array element type 99");
  RawGguf n(0, 1);
  n.key("arr", GgufType::array)
      .put(static_cast<std::uint32_t>(GgufType::array))
      .put<std::uint64_t>(0);
  EXPECT_MENTIONS(parse_error(n.bytes()), "nested arrays are not supported");
  RawGguf b(0, 1);
  b.key("flag", GgufType::boolean).put<std::uint8_t>(2);
  EXPECT_MENTIONS(parse_error(b.bytes()), "bool value 2 is not 0 or 1");
}

TEST(GgufMalformed, BadAlignment) {
  for (const std::uint32_t a : {0u, 3u, 4u, 48u, 131072u}) {
    RawGguf r(0, 1);
    r.kv_u32("general.alignment", a);
    const auto msg = parse_error(r.bytes());
    EXPECT_MENTIONS(msg, "general.alignment = " + std::to_string(a));
    EXPECT_MENTIONS(msg, "power of two from 8 to 65536");
  }
  RawGguf s(0, 1);
  s.kv_str("general.alignment", "32");
  EXPECT_MENTIONS(parse_error(s.bytes()),
                  "general.alignment should be an unsigned integer but is string");
}

// ---- tensor infos ---------------------------------------------------------------------------

TEST(GgufMalformed, TensorOffsetOutsideTheFile) {
  RawGguf r(1, 0);
  r.tensor("w", {8}, 0, 0).pad_to(32).zeros(16);  // 32 bytes needed, 16 there
  EXPECT_MENTIONS(parse_error(r.bytes()),
                  "tensor 'w' (32 bytes at data offset 0) lies outside the file");
  RawGguf far(1, 0);
  far.tensor("w", {8}, 0, 1ULL << 63).pad_to(32).zeros(64);
  EXPECT_MENTIONS(parse_error(far.bytes()), "lies outside the file");
  RawGguf end(1, 0);
  end.tensor("w", {8}, 0, ~0ULL << 5).pad_to(32).zeros(64);  // offset + size wraps around
  EXPECT_MENTIONS(parse_error(end.bytes()), "lies outside the file");
}

TEST(GgufMalformed, MisalignedTensorOffset) {
  RawGguf r(1, 0);
  r.tensor("w", {8}, 0, 4).pad_to(32).zeros(64);
  EXPECT_MENTIONS(parse_error(r.bytes()),
                  "tensor 'w' offset 4 is not a multiple of the alignment 32");
}

TEST(GgufMalformed, DimensionCount) {
  for (const std::uint32_t n : {0u, 5u}) {
    RawGguf r(1, 0);
    r.str("w").put(n);
    for (std::uint32_t i = 0; i < n; ++i)
      r.put<std::uint64_t>(2);
    r.put<std::uint32_t>(0).put<std::uint64_t>(0).pad_to(32).zeros(256);
    EXPECT_MENTIONS(parse_error(r.bytes()),
                    "tensor 'w' has " + std::to_string(n) + " dimensions (1 to 4 allowed)");
  }
}

TEST(GgufMalformed, DimensionProductOverflowAndZero) {
  RawGguf r(1, 0);
  r.tensor("w", {1ULL << 32, 1ULL << 32}, 0, 0).pad_to(32).zeros(64);
  EXPECT_MENTIONS(parse_error(r.bytes()), "tensor 'w' has an impossible shape");
  RawGguf w(1, 0);
  w.tensor("w", {1ULL << 21, 1ULL << 21, 1ULL << 21, 1ULL << 21}, 0, 0).pad_to(32).zeros(64);
  EXPECT_MENTIONS(parse_error(w.bytes()), "impossible shape");
  RawGguf z(1, 0);
  z.tensor("w", {4, 0}, 0, 0).pad_to(32).zeros(64);
  EXPECT_MENTIONS(parse_error(z.bytes()), "impossible shape (dimension 0)");
}

TEST(GgufMalformed, DuplicateTensor) {
  RawGguf r(2, 0);
  r.tensor("w", {8}, 0, 0).tensor("w", {8}, 0, 32).pad_to(32).zeros(64);
  EXPECT_MENTIONS(parse_error(r.bytes()), "tensor 'w' appears twice");
}

TEST(GgufMalformed, UnknownTensorTypeParsesWithoutData) {
  RawGguf r(1, 0);
  r.tensor("w", {256}, 12, 0).pad_to(32);  // Q4_K: the reader does not know its size
  const auto f = ie::GgufFile::parse(r.bytes(), "q4k");
  EXPECT_EQ(f.tensor("w")->n_bytes, 0u);
  EXPECT_EQ(f.tensor("w")->data, nullptr);
  EXPECT_EQ(ie::ggml_type_name(12), "Q4_K");
}

// ---- files ----------------------------------------------------------------------------------

TEST(GgufOpen, MissingEmptyAndDirectory) {
  EXPECT_MENTIONS(error_of<GgufError>([] { (void)ie::GgufFile::open("/nonexistent/m.gguf"); }),
                  "/nonexistent/m.gguf: cannot open: No such file or directory");
  const auto empty = temp_path("empty.gguf");
  std::ofstream(empty).close();
  EXPECT_MENTIONS(error_of<GgufError>([&] { (void)ie::GgufFile::open(empty); }),
                  "the file is empty");
  std::filesystem::remove(empty);
  const auto dir = temp_path("dir.gguf");
  std::filesystem::create_directory(dir);
  EXPECT_MENTIONS(error_of<GgufError>([&] { (void)ie::GgufFile::open(dir); }),
                  "is a directory, not a GGUF file");
  std::filesystem::remove(dir);
}

TEST(GgufOpen, ModelLoadFromDisk) {
  const auto path = temp_path("toy.gguf");
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(toy().data()),
             static_cast<std::streamsize>(toy().size()));
  const auto m = ie::Model::load(path);
  std::filesystem::remove(path);
  EXPECT_EQ(m->config().n_embd, 64);
  EXPECT_EQ(m->name(), "infergate-toy-F32");
}

// ---- the model ------------------------------------------------------------------------------

TEST(GgufModel, RewrittenToyStillLoads) {  // rewrite_toy itself changes nothing
  const auto m = ie::Model::from_gguf(ie::GgufFile::parse(rewrite_toy({}), "copy"));
  EXPECT_EQ(m->config().n_vocab, ie::testing::toy_model()->config().n_vocab);
}

TEST(GgufModel, MissingTensor) {
  EXPECT_MENTIONS(load_error(rewrite_toy({"blk.1.ffn_up.weight"})),
                  "tensor 'blk.1.ffn_up.weight' is missing");
  EXPECT_MENTIONS(load_error(rewrite_toy({"output_norm.weight"})),
                  "tensor 'output_norm.weight' is missing");
  EXPECT_MENTIONS(load_error(rewrite_toy({"token_embd.weight"})),
                  "tensor 'token_embd.weight' is missing");
}

TEST(GgufModel, WrongShape) {
  const auto b = rewrite_toy({"blk.0.attn_k.weight"}, [](ie::GgufWriter& w) {
    w.add_tensor("blk.0.attn_k.weight", {64, 64}, 0, f32_bytes(64 * 64));
  });
  EXPECT_MENTIONS(load_error(b),
                  "tensor 'blk.0.attn_k.weight' has shape [64, 64], expected [64, 32]");
  const auto n = rewrite_toy({"blk.1.ffn_norm.weight"}, [](ie::GgufWriter& w) {
    w.add_tensor("blk.1.ffn_norm.weight", {32, 2}, 0, f32_bytes(64));
  });
  EXPECT_MENTIONS(load_error(n), "tensor 'blk.1.ffn_norm.weight' has shape [32, 2], expected [64]");
  const auto e = rewrite_toy({"token_embd.weight"}, [](ie::GgufWriter& w) {
    w.add_tensor("token_embd.weight", {64}, 0, f32_bytes(64));
  });
  EXPECT_MENTIONS(load_error(e),
                  "tensor 'token_embd.weight' has shape [64], expected 2 dimensions");
}

TEST(GgufModel, UnsupportedWeightType) {
  Bytes b = rewrite_toy({});
  set_tensor_type(b, "blk.0.ffn_gate.weight", 12);
  EXPECT_MENTIONS(
      load_error(b),
      "tensor 'blk.0.ffn_gate.weight' has weight type Q4_K, which infergate does not support");
  const auto q4 = rewrite_toy({"blk.1.attn_q.weight"}, [](ie::GgufWriter& w) {
    w.add_tensor("blk.1.attn_q.weight", {64, 64}, 2, Bytes(64 * 2 * 18));
  });
  EXPECT_MENTIONS(load_error(q4), "weight type Q4_0");
  const auto norm = rewrite_toy({"output_norm.weight"}, [](ie::GgufWriter& w) {
    w.add_tensor("output_norm.weight", {64}, 1, Bytes(128));
  });
  EXPECT_MENTIONS(load_error(norm), "tensor 'output_norm.weight' must be F32, is F16");
}

TEST(GgufModel, UnsupportedOrMissingArchitecture) {
  const auto gpt2 = rewrite_toy({"general.architecture"}, [](ie::GgufWriter& w) {
    w.add_string("general.architecture", "gpt2");
  });
  EXPECT_MENTIONS(load_error(gpt2), "architecture 'gpt2' is not supported");
  EXPECT_MENTIONS(load_error(rewrite_toy({"general.architecture"})),
                  "general.architecture is missing");
}

TEST(GgufModel, VocabularyMismatch) {
  const auto size = rewrite_toy({"llama.vocab_size"},
                                [](ie::GgufWriter& w) { w.add_u32("llama.vocab_size", 1000); });
  EXPECT_MENTIONS(load_error(size), "llama.vocab_size = 1000 disagrees with token_embd.weight");
  const auto n = static_cast<std::uint64_t>(ie::testing::toy_model()->config().n_vocab);
  const auto rows = rewrite_toy(
      {"llama.vocab_size", "token_embd.weight", "output.weight"}, [&](ie::GgufWriter& w) {
        w.add_tensor("token_embd.weight", {64, n - 1}, 0, f32_bytes(64 * (n - 1)));
      });
  EXPECT_MENTIONS(load_error(rows), "the tokenizer has " + std::to_string(n) +
                                        " tokens but the embedding has " + std::to_string(n - 1) +
                                        " rows");
}

TEST(GgufModel, BadTokenizerMetadata) {
  const auto model = rewrite_toy({"tokenizer.ggml.model"}, [](ie::GgufWriter& w) {
    w.add_string("tokenizer.ggml.model", "bert");
  });
  EXPECT_MENTIONS(load_error(model), "unsupported tokenizer.ggml.model 'bert'");
  EXPECT_MENTIONS(load_error(rewrite_toy({"tokenizer.ggml.tokens"})),
                  "'tokenizer.ggml.tokens' is missing");
  const auto bos = rewrite_toy({"tokenizer.ggml.bos_token_id"}, [](ie::GgufWriter& w) {
    w.add_u32("tokenizer.ggml.bos_token_id", 100000);
  });
  EXPECT_MENTIONS(load_error(bos), "tokenizer.ggml.bos_token_id = 100000 is out of range");
  const auto neg = rewrite_toy({"tokenizer.ggml.eos_token_id"}, [](ie::GgufWriter& w) {
    w.add_i32("tokenizer.ggml.eos_token_id", -3);
  });
  EXPECT_MENTIONS(load_error(neg),
                  "'tokenizer.ggml.eos_token_id' should be a non-negative integer");
  const auto strs = rewrite_toy({"tokenizer.ggml.tokens"}, [](ie::GgufWriter& w) {
    w.add_i32_array("tokenizer.ggml.tokens", {1, 2, 3});
  });
  EXPECT_MENTIONS(load_error(strs),
                  "tokenizer.ggml.tokens should be an array of strings but holds i32");
  const auto types = rewrite_toy({"tokenizer.ggml.token_type"}, [](ie::GgufWriter& w) {
    w.add_f32_array("tokenizer.ggml.token_type", {1e30f});
  });
  EXPECT_MENTIONS(load_error(types),
                  "tokenizer.ggml.token_type should be an array of integers but holds f32");
  const auto big = rewrite_toy({"tokenizer.ggml.token_type"}, [](ie::GgufWriter& w) {
    w.add_i32_array("tokenizer.ggml.token_type", {1, 99});
  });
  EXPECT_MENTIONS(load_error(big), "tokenizer.ggml.token_type has 2 entries");
  const auto merges = rewrite_toy({"tokenizer.ggml.merges"}, [](ie::GgufWriter& w) {
    w.add_string_array("tokenizer.ggml.merges", {"nospace"});
  });
  EXPECT_MENTIONS(load_error(merges), "tokenizer.ggml.merges[0] = 'nospace' is not two tokens");
}

TEST(GgufModel, TokenTypeBeyondInt32) {  // a u32 array: 4294967295 must not wrap to -1
  const auto n = static_cast<std::size_t>(ie::testing::toy_model()->config().n_vocab);
  std::vector<std::int32_t> types(n, 1);
  types[5] = -1;
  auto b = rewrite_toy({"tokenizer.ggml.token_type"}, [&](ie::GgufWriter& g) {
    g.add_i32_array("tokenizer.ggml.token_type", types);
  });
  RawGguf key(0, 0);
  key.key("tokenizer.ggml.token_type", GgufType::array)
      .put(static_cast<std::uint32_t>(GgufType::i32));
  const auto& k = key.bytes();
  const auto it = std::search(b.begin(), b.end(), k.begin() + 24, k.end());
  ASSERT_NE(it, b.end());
  *(it + static_cast<std::ptrdiff_t>(k.size() - 24 - 4)) = static_cast<std::uint8_t>(GgufType::u32);
  EXPECT_MENTIONS(load_error(b), "tokenizer.ggml.token_type[5] = 4294967295 is not a token type");
}

TEST(GgufModel, HeadCountsThatDoNotDivide) {
  const auto heads = rewrite_toy({"llama.attention.head_count"}, [](ie::GgufWriter& w) {
    w.add_u32("llama.attention.head_count", 3);
  });
  EXPECT_MENTIONS(
      load_error(heads),
      "llama.embedding_length (64) is not a multiple of llama.attention.head_count (3)");
  const auto kv = rewrite_toy({"llama.attention.head_count_kv"}, [](ie::GgufWriter& w) {
    w.add_u32("llama.attention.head_count_kv", 3);
  });
  EXPECT_MENTIONS(
      load_error(kv),
      "llama.attention.head_count (4) is not a multiple of llama.attention.head_count_kv (3)");
  const auto zero = rewrite_toy({"llama.block_count"},
                                [](ie::GgufWriter& w) { w.add_u32("llama.block_count", 0); });
  EXPECT_MENTIONS(load_error(zero), "metadata 'llama.block_count' = 0 is out of range");
  const auto rope = rewrite_toy({"llama.rope.dimension_count"}, [](ie::GgufWriter& w) {
    w.add_u32("llama.rope.dimension_count", 7);
  });
  EXPECT_MENTIONS(load_error(rope), "rope.dimension_count");
}

TEST(GgufModel, NonFiniteHyperparameters) {
  const auto eps = rewrite_toy({"llama.attention.layer_norm_rms_epsilon"}, [](ie::GgufWriter& w) {
    w.add_f32("llama.attention.layer_norm_rms_epsilon", std::nanf(""));
  });
  EXPECT_MENTIONS(load_error(eps), "llama.attention.layer_norm_rms_epsilon");
  const auto base = rewrite_toy({"llama.rope.freq_base"}, [](ie::GgufWriter& w) {
    w.add_f32("llama.rope.freq_base", INFINITY);
  });
  EXPECT_MENTIONS(load_error(base), "llama.rope.freq_base");
}

}  // namespace
