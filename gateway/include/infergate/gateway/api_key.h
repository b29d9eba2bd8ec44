// The API key format: ig_live_<id>_<secret>, id 16 and secret 48 lowercase hex digits. The id
// finds the row; only the SHA-256 of the secret is ever stored. Pure functions, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace infergate::gateway {

struct ParsedApiKey {
  std::string id;
  std::string secret;
};

// nullopt for anything not exactly of the form above.
std::optional<ParsedApiKey> parse_api_key(std::string_view text);

struct NewApiKeyMaterial {
  std::string id;
  std::string secret;
  std::string full_key;        // shown once to the user
  std::string display_prefix;  // safe to show later: "ig_live_<id>"
  std::string secret_sha256;   // 32 raw bytes
};

// Fresh random id and secret from the OS CSPRNG.
NewApiKeyMaterial generate_api_key();

// SHA-256 of the secret as 32 raw bytes.
std::string hash_secret(std::string_view secret);

}  // namespace infergate::gateway
