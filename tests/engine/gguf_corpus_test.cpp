// Replays the GGUF fuzzer's seeds (tests/fuzz/corpus/gguf/) and every input that ever crashed it
// (tests/fuzz/crashes/) through the same load as the fuzz target: each must load or be refused
// with GgufError or ModelError. Any other exception fails here; a crash crashes the test binary.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>

#include "fuzz/gguf_load_check.h"

namespace ie = infergate::engine;
namespace fs = std::filesystem;

namespace {

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().filename().string()[0] != '.') out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::uint8_t> read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs every file of `dir`; returns how many loaded as models.
int replay(const fs::path& dir) {
  int loaded = 0;
  for (const auto& path : files_in(dir)) {
    const auto bytes = read_all(path);
    try {
      if (ie::fuzzing::load_and_touch(bytes)) ++loaded;
    } catch (const ie::GgufError& e) {
      EXPECT_NE(std::string(e.what()), "") << path;
    } catch (const ie::ModelError& e) {
      EXPECT_NE(std::string(e.what()), "") << path;
    } catch (const std::exception& e) {
      ADD_FAILURE() << path << " threw an undocumented exception: " << e.what();
    }
  }
  return loaded;
}

TEST(GgufCorpus, SeedsLoadOrAreRefusedCleanly) {
  const fs::path dir = fs::path(IG_FUZZ_DIR) / "corpus" / "gguf";
  ASSERT_GE(files_in(dir).size(), 5u) << "no seed files in " << dir;
  EXPECT_GE(replay(dir), 3) << "the valid seeds (valid-*) should load";
  for (const auto& path : files_in(dir)) {
    if (path.filename().string().rfind("valid-", 0) == 0) {
      EXPECT_NO_THROW(ie::fuzzing::load_and_touch(read_all(path))) << path;
    }
  }
}

TEST(GgufCorpus, FormerCrashesAreRefusedCleanly) {
  replay(fs::path(IG_FUZZ_DIR) / "crashes");
}

}  // namespace
