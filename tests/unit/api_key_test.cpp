// API key format: parse_api_key accepts exactly ig_live_<16 lowercase hex>_<48 lowercase hex>;
// generate_api_key produces keys that parse back; hash_secret is raw SHA-256.
#include "infergate/gateway/api_key.h"

#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace infergate::gateway {
namespace {

const std::string kId = "0123456789abcdef";                                   // 16
const std::string kSecret = "00112233445566778899aabbccddeeff0123456789abcdef";  // 48

std::string key(const std::string& id, const std::string& secret) {
  return "ig_live_" + id + "_" + secret;
}

std::string to_hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 0xf];
  }
  return out;
}

TEST(ApiKeyTest, FixturesHaveTheDocumentedLengths) {
  ASSERT_EQ(kId.size(), 16u);
  ASSERT_EQ(kSecret.size(), 48u);
  ASSERT_EQ(key(kId, kSecret).size(), 8u + 16u + 1u + 48u);
}

TEST(ApiKeyTest, ParsesWellFormedKey) {
  auto parsed = parse_api_key(key(kId, kSecret));
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->id, kId);
  EXPECT_EQ(parsed->secret, kSecret);
}

TEST(ApiKeyTest, ParsesAllZeroAndAllFKeys) {
  auto zeros = parse_api_key(key(std::string(16, '0'), std::string(48, '0')));
  ASSERT_TRUE(zeros.has_value());
  EXPECT_EQ(zeros->id, std::string(16, '0'));
  EXPECT_EQ(zeros->secret, std::string(48, '0'));
  auto fs = parse_api_key(key(std::string(16, 'f'), std::string(48, 'f')));
  ASSERT_TRUE(fs.has_value());
  EXPECT_EQ(fs->id, std::string(16, 'f'));
  EXPECT_EQ(fs->secret, std::string(48, 'f'));
}

TEST(ApiKeyTest, RejectsUppercaseHex) {
  std::string upper_id = kId;
  upper_id[10] = 'A';
  EXPECT_FALSE(parse_api_key(key(upper_id, kSecret)).has_value());
  std::string upper_secret = kSecret;
  upper_secret[47] = 'F';
  EXPECT_FALSE(parse_api_key(key(kId, upper_secret)).has_value());
  EXPECT_FALSE(parse_api_key("IG_LIVE_" + kId + "_" + kSecret).has_value());
}

TEST(ApiKeyTest, RejectsWrongLengths) {
  EXPECT_FALSE(parse_api_key(key(kId.substr(0, 15), kSecret)).has_value());
  EXPECT_FALSE(parse_api_key(key(kId + "0", kSecret)).has_value());
  EXPECT_FALSE(parse_api_key(key(kId, kSecret.substr(0, 47))).has_value());
  EXPECT_FALSE(parse_api_key(key(kId, kSecret + "0")).has_value());
  // Same total length, but the separator in the wrong place.
  EXPECT_FALSE(parse_api_key(key(kId.substr(0, 15), kSecret + "0")).has_value());
  EXPECT_FALSE(parse_api_key(key(kId + "0", kSecret.substr(0, 47))).has_value());
}

TEST(ApiKeyTest, RejectsMissingOrExtraUnderscores) {
  EXPECT_FALSE(parse_api_key("ig_live_" + kId + kSecret).has_value());          // no separator
  EXPECT_FALSE(parse_api_key("ig_live_" + kId + "__" + kSecret).has_value());   // two
  EXPECT_FALSE(parse_api_key("ig_live" + kId + "_" + kSecret).has_value());     // prefix short
  EXPECT_FALSE(parse_api_key("iglive_" + kId + "_" + kSecret).has_value());
  EXPECT_FALSE(parse_api_key("ig_live__" + kId + "_" + kSecret).has_value());
  // Separator replaced by another character at the same position (same total length).
  EXPECT_FALSE(parse_api_key("ig_live_" + kId + "-" + kSecret).has_value());
  EXPECT_FALSE(parse_api_key("ig_live_" + kId + "0" + kSecret).has_value());
  // An underscore inside the secret at constant length.
  std::string secret_with_underscore = kSecret;
  secret_with_underscore[20] = '_';
  EXPECT_FALSE(parse_api_key(key(kId, secret_with_underscore)).has_value());
}

TEST(ApiKeyTest, RejectsOtherPrefixes) {
  EXPECT_FALSE(parse_api_key("ig_test_" + kId + "_" + kSecret).has_value());
  EXPECT_FALSE(parse_api_key("sk-" + kId + "_" + kSecret).has_value());
  EXPECT_FALSE(parse_api_key("sk-proj" + kId + "_" + kSecret).has_value());  // same length
  EXPECT_FALSE(parse_api_key("xx_live_" + kId + "_" + kSecret).has_value());
}

TEST(ApiKeyTest, RejectsEmptyAndWhitespace) {
  EXPECT_FALSE(parse_api_key("").has_value());
  EXPECT_FALSE(parse_api_key(" " + key(kId, kSecret)).has_value());
  EXPECT_FALSE(parse_api_key(key(kId, kSecret) + " ").has_value());
  EXPECT_FALSE(parse_api_key(key(kId, kSecret) + "\n").has_value());
  EXPECT_FALSE(parse_api_key("\t" + key(kId, kSecret)).has_value());
  // Whitespace replacing a character (length unchanged).
  std::string spaced = key(kId, kSecret);
  spaced[30] = ' ';
  EXPECT_FALSE(parse_api_key(spaced).has_value());
}

TEST(ApiKeyTest, RejectsNonHexCharacters) {
  for (char bad : {'g', 'z', 'G', '-', '.', '/', ':', '@', '`', '\0', '\x80'}) {
    std::string id = kId;
    id[3] = bad;
    EXPECT_FALSE(parse_api_key(key(id, kSecret)).has_value()) << "id char " << int(bad);
    std::string secret = kSecret;
    secret[40] = bad;
    EXPECT_FALSE(parse_api_key(key(kId, secret)).has_value()) << "secret char " << int(bad);
  }
}

TEST(ApiKeyTest, GeneratedKeyParsesBack) {
  NewApiKeyMaterial k = generate_api_key();
  EXPECT_EQ(k.id.size(), 16u);
  EXPECT_EQ(k.secret.size(), 48u);
  EXPECT_EQ(k.full_key, "ig_live_" + k.id + "_" + k.secret);
  auto parsed = parse_api_key(k.full_key);
  ASSERT_TRUE(parsed.has_value()) << k.full_key;
  EXPECT_EQ(parsed->id, k.id);
  EXPECT_EQ(parsed->secret, k.secret);
}

TEST(ApiKeyTest, GeneratedDisplayPrefixAndHash) {
  NewApiKeyMaterial k = generate_api_key();
  EXPECT_EQ(k.display_prefix, "ig_live_" + k.id);
  EXPECT_EQ(k.secret_sha256.size(), 32u);
  EXPECT_EQ(k.secret_sha256, hash_secret(k.secret));
  // The display prefix never reveals any of the secret.
  EXPECT_EQ(k.full_key.find(k.display_prefix), 0u);
  EXPECT_EQ(k.display_prefix.find(k.secret.substr(0, 4)), std::string::npos);
}

TEST(ApiKeyTest, GeneratedKeysDiffer) {
  NewApiKeyMaterial a = generate_api_key();
  NewApiKeyMaterial b = generate_api_key();
  EXPECT_NE(a.id, b.id);
  EXPECT_NE(a.secret, b.secret);
  EXPECT_NE(a.full_key, b.full_key);
  EXPECT_NE(a.secret_sha256, b.secret_sha256);

  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    NewApiKeyMaterial k = generate_api_key();
    ASSERT_TRUE(parse_api_key(k.full_key).has_value()) << k.full_key;
    ids.insert(k.id);
  }
  EXPECT_EQ(ids.size(), 1000u);
}

TEST(ApiKeyTest, HashSecretIsRawSha256) {
  const std::string h = hash_secret("abc");
  ASSERT_EQ(h.size(), 32u);
  EXPECT_EQ(to_hex(h), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(to_hex(hash_secret("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_NE(hash_secret("abc"), hash_secret("abd"));
}

}  // namespace
}  // namespace infergate::gateway
