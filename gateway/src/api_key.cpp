#include "infergate/gateway/api_key.h"

#include "infergate/infra/ids.h"
#include "infergate/infra/sha256.h"

namespace infergate::gateway {
namespace {

constexpr std::string_view kPrefix = "ig_live_";
constexpr std::size_t kIdLen = 16;
constexpr std::size_t kSecretLen = 48;

bool is_lower_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

std::optional<ParsedApiKey> parse_api_key(std::string_view text) {
  if (text.size() != kPrefix.size() + kIdLen + 1 + kSecretLen) return std::nullopt;
  if (text.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  std::string_view id = text.substr(kPrefix.size(), kIdLen);
  if (text[kPrefix.size() + kIdLen] != '_') return std::nullopt;
  std::string_view secret = text.substr(kPrefix.size() + kIdLen + 1);
  if (!is_lower_hex(id) || !is_lower_hex(secret)) return std::nullopt;
  return ParsedApiKey{std::string(id), std::string(secret)};
}

std::string hash_secret(std::string_view secret) { return infra::sha256(secret); }

NewApiKeyMaterial generate_api_key() {
  NewApiKeyMaterial k;
  k.id = infra::random_hex(kIdLen / 2);
  k.secret = infra::random_hex(kSecretLen / 2);
  k.display_prefix = std::string(kPrefix) + k.id;
  k.full_key = k.display_prefix + "_" + k.secret;
  k.secret_sha256 = hash_secret(k.secret);
  return k;
}

}  // namespace infergate::gateway
