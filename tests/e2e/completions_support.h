// Shared by the e2e tests of the OpenAI-compatible API: model files made with `infergate
// make-model`, a database with tenants and keys, a served-models config, HTTP calls with a key,
// chunked/SSE decoding, and the usage ledger read back from Postgres.
#pragma once

#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "server_harness.h"
#include "support/http_client.h"
#include "support/services.h"

namespace infergate::test {

// A model file of `preset` ("toy", "small") with weights from `seed`, made once per test process
// into a temporary directory that is removed at exit.
// `type`: the weights' type (make-model --type), its default when empty.
const std::string& model_file(const std::string& preset, int seed = 1, const std::string& type = "");

struct ModelSpec {
  std::string name;
  std::string file;
  std::string tier;
  std::vector<std::string> aliases = {};
};
// [[models]] tables for ServerProcess's extra TOML.
std::string models_toml(const std::vector<ModelSpec>& models);

struct Tenant {
  std::string id;
  std::string key;
};

// A fresh database with the schema; tenants made through the CLI.
class Backend {
 public:
  Backend();
  // The same on an existing database (e.g. a PrivatePostgres the test stops and starts).
  explicit Backend(infra::PostgresConfig db);
  // A plan named after the tenant with `plan_flags` (e.g. {"--tiers", "medium"}), the tenant, and
  // an inference key.
  Tenant tenant(const std::string& name, const std::vector<std::string>& plan_flags = {});
  // base_config on this database, one engine thread per model, a small KV cache.
  ConfigValues config(const ConfigValues& more = {}) const;
  const infra::PostgresConfig& db() const { return db_; }

  struct LedgerRow {
    std::string model, tier, status, finish_reason;
    std::int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
  };
  std::vector<LedgerRow> ledger_rows(const std::string& request_id) const;
  // Polls until the request's row is in the ledger (the writer moves journal records in
  // batches); fails the test and returns an empty row after `limit`. Checks there is exactly one.
  LedgerRow wait_ledger_row(const std::string& request_id,
                            std::chrono::milliseconds limit = std::chrono::seconds(10)) const;
  // The one row of a ledger that will hold exactly one (polled like wait_ledger_row).
  LedgerRow wait_only_ledger_row(std::chrono::milliseconds limit = std::chrono::seconds(10)) const;
  std::int64_t count(const std::string& sql) const;

 private:
  std::string run(const std::vector<std::string>& args) const;
  infra::PostgresConfig db_;
  std::map<std::string, std::string> env_;
};

// A reply from the /v1 API: status, headers, and the body parsed as JSON when it is JSON.
struct ApiReply {
  int status = 0;
  HttpResponse raw;
  boost::json::value body;
  std::string header(const std::string& name) const { return raw.header(name); }
  std::string error_code() const;   // error.code, "" when absent
  std::string error_param() const;  // error.param, "" when null or absent
};

// POST `body` to `path` with `key` (none when empty) as application/json.
ApiReply post_json(int port, const std::string& path, const std::string& key, const std::string& body);
ApiReply get_json(int port, const std::string& path, const std::string& key);

// The body of a chunked HTTP/1.1 response (as read until the connection closed).
std::string dechunk(const std::string& raw);
// The `data:` payloads of a server-sent-events stream, in order.
std::vector<std::string> sse_data(const std::string& text);

// Polls GET /metrics until every line in `lines` is present; false after `limit`.
bool wait_metrics(int port, const std::vector<std::string>& lines, std::chrono::milliseconds limit,
                  std::string* last = nullptr);

}  // namespace infergate::test
