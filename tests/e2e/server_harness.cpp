#include "server_harness.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <stdexcept>
#include <thread>

#include "support/services.h"

namespace infergate::test {

ConfigValues base_config(const ConfigValues& overrides) {
  const auto& s = shared_services();
  ConfigValues v;
  v["server"] = {{"listen_address", "\"127.0.0.1\""}, {"port", "0"},
                 {"io_threads", "2"},                 {"read_timeout_ms", "5000"},
                 {"idle_timeout_ms", "10000"},        {"shutdown_grace_ms", "5000"}};
  v["postgres"] = {{"port", std::to_string(s.pg_port)}, {"reconnect_backoff_ms", "100"}};
  v["redis"] = {{"port", std::to_string(s.redis_port)},
                {"reconnect_min_ms", "20"},
                {"reconnect_max_ms", "200"}};
  v["log"] = {{"level", "\"info\""}};
  for (const auto& [section, keys] : overrides)
    for (const auto& [k, val] : keys) v[section][k] = val;
  return v;
}

std::string render_toml(const ConfigValues& values) {
  std::string out;
  for (const auto& [section, keys] : values) {
    out += "[" + section + "]\n";
    for (const auto& [k, v] : keys) out += k + " = " + v + "\n";
    out += "\n";
  }
  return out;
}

ServerProcess::ServerProcess(const ConfigValues& config,
                             const std::map<std::string, std::string>& env,
                             const std::string& extra_toml)
    : dir_(make_temp_dir("serve")), log_path_(dir_ + "/server.log") {
  const std::string cfg_path = dir_ + "/infergate.toml";
  ConfigValues values = config;
  if (!values["journal"].count("dir")) values["journal"]["dir"] = "\"" + dir_ + "/journal\"";
  write_file(cfg_path, render_toml(values) + extra_toml);
  child_ = Child::spawn({infergate_binary(), "serve", "--config", cfg_path}, env, log_path_);
  const std::regex listening("\"msg\":\"listening\".*\"port\":([0-9]+)");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    std::smatch m;
    std::string text = log();
    if (std::regex_search(text, m, listening)) {
      port_ = std::stoi(m[1]);
      // The server listens before its first connections to Postgres and Redis are up, and
      // answers 503 meanwhile, as a load balancer's readiness check would see. Tests send their
      // first request once both are up (a test that starts without one waits 3 s at most).
      const auto ready_by = std::chrono::steady_clock::now() + std::chrono::seconds(3);
      while (std::chrono::steady_clock::now() < ready_by) {
        const std::string now = log();
        if (now.find("\"msg\":\"postgres up\"") != std::string::npos &&
            now.find("\"msg\":\"redis up\"") != std::string::npos)
          break;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      return;
    }
    if (auto code = child_.wait(std::chrono::milliseconds(0)))
      throw std::runtime_error("infergate serve exited with " + std::to_string(*code) + ":\n" +
                               text);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  throw std::runtime_error("infergate serve did not start listening:\n" + log());
}

ServerProcess::~ServerProcess() {
  child_.signal(SIGKILL);
  child_.wait(std::chrono::seconds(5));
  if (::testing::Test::HasFailure()) std::fprintf(stderr, "--- server log ---\n%s\n", log().c_str());
  std::filesystem::remove_all(dir_);
}

std::string ServerProcess::log() const { return read_file(log_path_); }

int ServerProcess::count_in_log(const std::string& needle) const {
  std::string text = log();
  int n = 0;
  for (std::size_t pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + needle.size()))
    ++n;
  return n;
}

bool ServerProcess::wait_for_log(const std::string& needle,
                                 std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (log().find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

int run_infergate(const std::vector<std::string>& args,
                  const std::map<std::string, std::string>& env, std::string* output,
                  std::chrono::milliseconds timeout) {
  std::string dir = make_temp_dir("cli");
  std::string out_path = dir + "/out";
  std::vector<std::string> argv{infergate_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  Child c = Child::spawn(argv, env, out_path);
  auto code = c.wait(timeout);
  if (output) *output = read_file(out_path);
  std::filesystem::remove_all(dir);
  if (!code) throw std::runtime_error("infergate did not exit in time");
  return *code;
}

void wait_clear_of_minute_boundary() {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count() %
                  60000;
  if (ms > 55000) std::this_thread::sleep_for(std::chrono::milliseconds(60500 - ms));
}

std::string issue_key(const std::vector<std::string>& args, const std::map<std::string, std::string>& env) {
  std::string out;
  std::string cmd;
  for (const auto& a : args) cmd += " " + a;
  if (run_infergate(args, env, &out) != 0) throw std::runtime_error("infergate" + cmd + " failed: " + out);
  std::smatch m;
  if (!std::regex_search(out, m, std::regex("ig_live_[0-9a-f]{16}_[0-9a-f]{48}")))
    throw std::runtime_error("infergate" + cmd + " printed no key: " + out);
  return m[0];
}

}  // namespace infergate::test
