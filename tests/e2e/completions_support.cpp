#include "completions_support.h"

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include <filesystem>
#include <regex>
#include <stdexcept>
#include <thread>

namespace infergate::test {

namespace json = boost::json;

namespace {

// The directory of this process's model files, removed at exit.
struct ModelDir {
  std::string path = make_temp_dir("models");
  std::map<std::string, std::string> files;
  ~ModelDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

std::string quoted(const std::string& s) { return json::serialize(json::value(s)); }

}  // namespace

const std::string& model_file(const std::string& preset, int seed, const std::string& type) {
  static ModelDir dir;
  const std::string file =
      dir.path + "/" + preset + "-" + std::to_string(seed) + (type.empty() ? "" : "-" + type) + ".gguf";
  auto it = dir.files.find(file);
  if (it != dir.files.end()) return it->second;
  std::string out;
  std::vector<std::string> args{"make-model", "--preset", preset, "--seed", std::to_string(seed), "--out", file};
  if (!type.empty()) args.insert(args.end(), {"--type", type});
  const int rc = run_infergate(args, {}, &out, std::chrono::seconds(60));
  if (rc != 0) throw std::runtime_error("infergate make-model failed (" + std::to_string(rc) + "): " + out);
  return dir.files.emplace(file, file).first->second;
}

std::string models_toml(const std::vector<ModelSpec>& models) {
  std::string out;
  for (const auto& m : models) {
    out += "\n[[models]]\nname = " + quoted(m.name) + "\nfile = " + quoted(m.file) + "\ntier = " + quoted(m.tier) +
           "\n";
    if (!m.aliases.empty()) {
      out += "aliases = [";
      for (std::size_t i = 0; i < m.aliases.size(); ++i) out += (i ? ", " : "") + quoted(m.aliases[i]);
      out += "]\n";
    }
  }
  return out;
}

Backend::Backend()
    : db_(fresh_database("cmpl")),
      env_{{"INFERGATE_POSTGRES__PORT", std::to_string(db_.port)}, {"INFERGATE_POSTGRES__DATABASE", db_.database}} {
  run({"migrate"});
}

Backend::Backend(infra::PostgresConfig db)
    : db_(std::move(db)),
      env_{{"INFERGATE_POSTGRES__PORT", std::to_string(db_.port)}, {"INFERGATE_POSTGRES__DATABASE", db_.database}} {
  run({"migrate"});
}

std::string Backend::run(const std::vector<std::string>& args) const {
  std::string out;
  if (run_infergate(args, env_, &out) != 0) {
    std::string cmd;
    for (const auto& a : args) cmd += " " + a;
    throw std::runtime_error("infergate" + cmd + " failed: " + out);
  }
  return out;
}

Tenant Backend::tenant(const std::string& name, const std::vector<std::string>& plan_flags) {
  std::vector<std::string> plan{"plans", "create", "--name", name + "-plan"};
  plan.insert(plan.end(), plan_flags.begin(), plan_flags.end());
  run(plan);
  Tenant t;
  const std::string created = run({"tenants", "create", "--name", name, "--plan", name + "-plan"});
  t.id = std::string(json::parse(created).at("id").as_string());
  t.key = issue_key({"keys", "create", "--tenant", name}, env_);
  return t;
}

ConfigValues Backend::config(const ConfigValues& more) const {
  ConfigValues v = base_config({{"engine", {{"threads", "1"}, {"kv_blocks", "256"}}}});
  v["postgres"]["database"] = quoted(db_.database);
  v["postgres"]["port"] = std::to_string(db_.port);
  for (const auto& [section, keys] : more)
    for (const auto& [k, val] : keys) v[section][k] = val;
  return v;
}

std::vector<Backend::LedgerRow> Backend::ledger_rows(const std::string& request_id) const {
  pqxx::connection c(db_.conninfo());
  pqxx::nontransaction tx(c);
  std::vector<LedgerRow> rows;
  for (const auto& r : tx.exec_params(
           "SELECT model, tier, status, coalesce(finish_reason, ''), prompt_tokens, completion_tokens, "
           "cached_tokens FROM usage_events WHERE request_id = $1",
           request_id)) {
    rows.push_back({r[0].as<std::string>(), r[1].as<std::string>(), r[2].as<std::string>(), r[3].as<std::string>(),
                    r[4].as<std::int64_t>(), r[5].as<std::int64_t>(), r[6].as<std::int64_t>()});
  }
  return rows;
}

Backend::LedgerRow Backend::wait_ledger_row(const std::string& request_id, std::chrono::milliseconds limit) const {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    auto rows = ledger_rows(request_id);
    if (!rows.empty()) {
      EXPECT_EQ(rows.size(), 1u) << "request " << request_id << " metered more than once";
      return rows[0];
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "no usage_events row for request " << request_id << " after " << limit.count() << " ms";
      return {};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Backend::LedgerRow Backend::wait_only_ledger_row(std::chrono::milliseconds limit) const {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (count("SELECT count(*) FROM usage_events") == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "no usage_events row after " << limit.count() << " ms";
      return {};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pqxx::connection c(db_.conninfo());
  pqxx::nontransaction tx(c);
  const auto ids = tx.exec("SELECT request_id FROM usage_events");
  EXPECT_EQ(ids.size(), 1u) << "more than one request metered";
  return wait_ledger_row(ids[0][0].as<std::string>(), limit);
}

std::int64_t Backend::count(const std::string& sql) const {
  pqxx::connection c(db_.conninfo());
  pqxx::nontransaction tx(c);
  return tx.exec1(sql)[0].as<std::int64_t>();
}

std::string ApiReply::error_code() const {
  const auto* e = body.is_object() ? body.as_object().if_contains("error") : nullptr;
  const auto* c = e && e->is_object() ? e->as_object().if_contains("code") : nullptr;
  return c && c->is_string() ? std::string(c->as_string()) : "";
}

std::string ApiReply::error_param() const {
  const auto* e = body.is_object() ? body.as_object().if_contains("error") : nullptr;
  const auto* p = e && e->is_object() ? e->as_object().if_contains("param") : nullptr;
  return p && p->is_string() ? std::string(p->as_string()) : "";
}

namespace {
ApiReply reply(HttpResponse r) {
  ApiReply out;
  out.status = r.status;
  if (r.header("content-type").rfind("application/json", 0) == 0) {
    json::error_code ec;
    out.body = json::parse(r.body, ec);
    if (ec) ADD_FAILURE() << "the body is not JSON: " << r.body;
  }
  out.raw = std::move(r);
  return out;
}
}  // namespace

ApiReply post_json(int port, const std::string& path, const std::string& key, const std::string& body) {
  std::map<std::string, std::string> headers{{"Content-Type", "application/json"}};
  if (!key.empty()) headers["Authorization"] = "Bearer " + key;
  return reply(http_request(port, "POST", path, body, headers));
}

ApiReply get_json(int port, const std::string& path, const std::string& key) {
  std::map<std::string, std::string> headers;
  if (!key.empty()) headers["Authorization"] = "Bearer " + key;
  return reply(http_request(port, "GET", path, "", headers));
}

std::string dechunk(const std::string& raw) {
  std::string out;
  std::size_t pos = 0;
  for (;;) {
    const auto eol = raw.find("\r\n", pos);
    if (eol == std::string::npos) throw std::runtime_error("truncated chunked body: " + raw.substr(pos));
    const std::size_t size = std::stoul(raw.substr(pos, eol - pos), nullptr, 16);
    pos = eol + 2;
    if (size == 0) return out;
    if (pos + size + 2 > raw.size()) throw std::runtime_error("truncated chunk in: " + raw);
    out.append(raw, pos, size);
    pos += size + 2;
  }
}

std::vector<std::string> sse_data(const std::string& text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find("\n\n", pos);
    if (end == std::string::npos) end = text.size();
    const std::string event = text.substr(pos, end - pos);
    if (event.rfind("data: ", 0) == 0) out.push_back(event.substr(6));
    pos = end + 2;
  }
  return out;
}

bool wait_metrics(int port, const std::vector<std::string>& lines, std::chrono::milliseconds limit,
                  std::string* last) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    const std::string text = "\n" + http_request(port, "GET", "/metrics").body;
    bool all = true;
    for (const auto& l : lines) all = all && text.find("\n" + l + "\n") != std::string::npos;
    if (last) *last = text;
    if (all) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace infergate::test
