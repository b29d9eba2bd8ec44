// Runs the real `infergate` binary for e2e tests: writes a config file, starts `serve`, waits
// for the "listening" log line to learn the port, and stops it with a signal.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "support/process.h"

namespace infergate::test {

// section -> key -> TOML value text (strings quoted by the caller).
using ConfigValues = std::map<std::string, std::map<std::string, std::string>>;

// A config on free ports against the shared test services, with small timeouts; `overrides`
// replace or add keys.
ConfigValues base_config(const ConfigValues& overrides = {});
std::string render_toml(const ConfigValues& values);

class ServerProcess {
 public:
  // `extra_toml` is appended to the rendered file as is: for what ConfigValues cannot express,
  // such as [[models]] tables.
  explicit ServerProcess(const ConfigValues& config,
                         const std::map<std::string, std::string>& env = {},
                         const std::string& extra_toml = "");
  ~ServerProcess();

  int port() const { return port_; }
  std::string log() const;
  int count_in_log(const std::string& needle) const;
  // Waits until the log contains `needle` (true) or the timeout passes (false).
  bool wait_for_log(const std::string& needle, std::chrono::milliseconds timeout) const;
  void signal(int sig) { child_.signal(sig); }
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) { return child_.wait(timeout); }

 private:
  std::string dir_;
  std::string log_path_;
  Child child_;
  int port_ = 0;
};

// Runs `infergate <args>` to completion; returns the exit code, output in *output.
int run_infergate(const std::vector<std::string>& args,
                  const std::map<std::string, std::string>& env, std::string* output,
                  std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Runs `infergate <args>` that issues a key (keys create, keys create-admin, demo-setup) and
// returns the secret it printed; throws with the output if it failed or printed none.
std::string issue_key(const std::vector<std::string>& args, const std::map<std::string, std::string>& env);

// Waits out the last 5 seconds of a wall-clock minute, so that requests a test makes next fall in
// one per-minute rate-limit window.
void wait_clear_of_minute_boundary();

}  // namespace infergate::test
