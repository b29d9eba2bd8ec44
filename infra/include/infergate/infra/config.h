// Typed configuration, parsed once at startup from a TOML file plus environment overrides.
// Every key is documented with its default in config/infergate.toml. After startup nobody reads
// raw config again; components receive the struct for their section.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace infergate::infra {

using Millis = std::chrono::milliseconds;

struct ServerConfig {
  std::string listen_address = "127.0.0.1";
  std::uint16_t port = 8080;  // 0 picks a free port (logged at startup)
  int io_threads = 2;
  Millis read_timeout{15000};   // to read one request once its first byte arrived
  Millis idle_timeout{60000};   // keep-alive connection with no request in progress
  Millis write_timeout{30000};  // to write one response
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 4 * 1024 * 1024;
  Millis shutdown_grace{10000};  // in-flight requests get this long after SIGTERM
  Millis shutdown_cut{5000};     // then those cut off get this long after their engine step to be metered and settled
  bool access_log = true;
  // HTTPS on a second port (same API): a PEM certificate chain and its private key.
  bool tls_enabled = false;
  std::uint16_t tls_port = 8443;  // 0 picks a free port (logged at startup)
  std::string tls_cert_file;
  std::string tls_key_file;
};

struct PostgresConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 54329;
  std::string user = "infergate";
  std::string password;
  std::string database = "infergate";
  int pool_size = 4;
  Millis connect_timeout{2000};
  Millis query_timeout{5000};
  Millis reconnect_backoff{500};

  // libpq connection string built from the fields above (values quoted as libpq requires).
  std::string conninfo() const;
};

struct RedisConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 63799;
  Millis connect_timeout{1000};
  Millis command_timeout{500};
  Millis reconnect_min{100};
  Millis reconnect_max{5000};
};

struct AuthConfig {
  Millis cache_ttl{5000};            // a cached key is re-read from Postgres after this long
  std::size_t cache_max_entries = 100000;
};

struct AdmissionConfig {
  bool fail_open = false;               // Redis unreachable: refuse (503) or admit locally
  Millis redis_timeout{100};            // deadline of one admission or settlement round trip
  Millis reservation_ttl{600000};       // an unsettled reservation is released after this
  std::int64_t default_max_tokens = 1024;  // when a request gives no max_tokens
  bool prefetch = true;  // admit a few reservations ahead of a busy key's demand (admission.h)
};

struct JournalConfig {
  std::string dir = ".local/journal";       // usage journal segments and checkpoint
  std::uint64_t segment_bytes = 64ull << 20;  // a new segment after this many bytes
  bool direct_io = true;  // commits bypass the page cache where the file system allows it
  int batch_records = 1000;                 // records per insert into the ledger
  Millis drain_timeout{10000};              // on SIGTERM, how long to wait for the ledger
  // How long the ledger writer lets records gather before its next insert (at once when a
  // batch fills): each insert is a Postgres commit, flushed to disk, and a burst of Postgres
  // work about (0.3 ms + 25 us a record) long on the machines measured.
  Millis ledger_interval{10};
};

// The inference engine of each model: threads, KV-cache pool and batch limits.
struct EngineConfig {
  int threads = 0;                    // compute threads per model; 0 = all hardware threads
  int kv_blocks = 1024;               // KV-cache blocks per model
  int block_size = 16;                // positions per block
  std::int64_t max_batch_tokens = 512;  // tokens per engine step (decodes + a prefill chunk)
  int max_seqs = 16;                  // sequences decoding at once per model
  std::string device = "auto";        // auto | cpu | cuda (a model may override it)
  std::string kv_cache_type = "auto";  // auto (F16 for quantized or F16 weights, F32 for F32) | f32 | f16
  bool prefix_cache = true;           // reuse the KV blocks of prompts that start the same way
};

// One served model ([[models]] in the file).
struct ModelConfig {
  std::string name;                   // what clients put in "model"
  std::string file;                   // GGUF path (relative: to the working directory)
  std::string tier;                   // one of routing.tiers
  std::vector<std::string> aliases;   // other names clients may use
  std::int64_t context_length = 0;    // 0 = the model's own (llama.context_length)
  std::string device;                 // "" = engine.device
  std::string chat_template;          // "" = from the file's metadata; chatml | llama3 | llama2
};

// Tiered routing: which model serves "auto", a tier name, or an overloaded model's requests.
struct RoutingConfig {
  std::vector<std::string> tiers = {"small", "medium", "large"};  // smallest first
  // When the chosen model is overloaded, the tiers tried next, in this order (only those the
  // tenant's plan allows, and only models whose context fits the request).
  std::vector<std::string> fallback = {"small", "medium", "large"};
  std::int64_t auto_long_prompt_tokens = 2048;  // "auto" skips the smallest tier above this
  std::int64_t max_queue_depth = 64;  // a model with more requests waiting is overloaded
  double max_kv_use = 0.95;           // ... or with more of its KV cache in use
};

struct LogConfig {
  std::string level = "info";  // debug | info | warn | error
};

struct Config {
  std::string source = "<defaults>";  // the file it came from, for messages
  ServerConfig server;
  PostgresConfig postgres;
  RedisConfig redis;
  AuthConfig auth;
  AdmissionConfig admission;
  JournalConfig journal;
  EngineConfig engine;
  RoutingConfig routing;
  std::vector<ModelConfig> models;
  LogConfig log;
};

// A config problem: the message names the file and the key and says what is expected.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Environment variables that override file values: INFERGATE_<SECTION>__<KEY>=value,
// e.g. INFERGATE_SERVER__PORT=9000. Variables without the double underscore are ignored.
using EnvMap = std::map<std::string, std::string>;
EnvMap environment_overrides(char** envp);

// Parses TOML text. `source` names the file in error messages. Throws ConfigError.
Config parse_config(std::string_view toml_text, std::string source, const EnvMap& env = {});

// Reads and parses a file. Throws ConfigError (also when the file cannot be read).
Config load_config(const std::string& path, const EnvMap& env = {});

}  // namespace infergate::infra
