// Request ids, random secrets and SHA-256 digests.
#include "infergate/infra/ids.h"

#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "infergate/infra/sha256.h"

namespace infergate::infra {
namespace {

TEST(IdsTest, RequestIdFormat) {
  const std::regex format("^req_[0-9a-f]{24}$");
  for (int i = 0; i < 1000; ++i) {
    std::string id = new_request_id();
    ASSERT_TRUE(std::regex_match(id, format)) << id;
  }
}

TEST(IdsTest, RequestIdsAreUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i)
    seen.insert(new_request_id());
  EXPECT_EQ(seen.size(), 10000u);
}

TEST(IdsTest, RequestIdsAreUniqueAcrossThreads) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 5000;
  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&ids, t] {
      for (int i = 0; i < kPerThread; ++i)
        ids[t].push_back(new_request_id());
    });
  }
  for (auto& th : threads)
    th.join();
  std::set<std::string> seen;
  for (const auto& v : ids)
    seen.insert(v.begin(), v.end());
  EXPECT_EQ(seen.size(), std::size_t{kThreads} * kPerThread);
}

TEST(IdsTest, RequestIdUsesEveryHexDigit) {
  // 24 random hex digits: over many ids each of the 16 digits shows up in every position.
  std::vector<std::set<char>> per_position(24);
  for (int i = 0; i < 2000; ++i) {
    std::string id = new_request_id();
    for (std::size_t p = 0; p < 24; ++p)
      per_position[p].insert(id[4 + p]);
  }
  for (std::size_t p = 0; p < 24; ++p)
    EXPECT_EQ(per_position[p].size(), 16u) << "position " << p;
}

TEST(IdsTest, RandomHex) {
  const std::regex hex32("^[0-9a-f]{32}$");
  std::string a = random_hex(16);
  std::string b = random_hex(16);
  EXPECT_TRUE(std::regex_match(a, hex32)) << a;
  EXPECT_TRUE(std::regex_match(b, hex32)) << b;
  EXPECT_NE(a, b);
  EXPECT_EQ(random_hex(0), "");
  EXPECT_EQ(random_hex(1).size(), 2u);
  EXPECT_EQ(random_hex(1000).size(), 2000u);
}

TEST(IdsTest, UniqueHexHasTheLengthAskedAndEveryDigitVaries) {
  const std::regex hex24("^[0-9a-f]{24}$");
  std::set<std::string> seen;
  std::vector<std::set<char>> per_position(24);
  for (int i = 0; i < 2000; ++i) {
    const std::string id = unique_hex(12);
    ASSERT_TRUE(std::regex_match(id, hex24)) << id;
    seen.insert(id);
    for (std::size_t p = 0; p < 24; ++p) per_position[p].insert(id[p]);
  }
  EXPECT_EQ(seen.size(), 2000u);
  for (std::size_t p = 0; p < 24; ++p) EXPECT_EQ(per_position[p].size(), 16u) << "position " << p;
  EXPECT_EQ(unique_hex(0), "");
  EXPECT_EQ(unique_hex(3).size(), 6u);
  EXPECT_EQ(unique_hex(17).size(), 34u);
}

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, HashesBytesNotCStrings) {
  // An embedded NUL is data, not the end of the input.
  EXPECT_EQ(sha256_hex(std::string_view("\x00\xff", 2)),
            "06eb7d6a69ee19e5fbdf749018d3d2abfa04bcbd1365db312eb86dc7169389b8");
  EXPECT_NE(sha256_hex(std::string_view("a\0b", 3)), sha256_hex("a"));
}

}  // namespace
}  // namespace infergate::infra
