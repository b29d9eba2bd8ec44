// Command-line plumbing shared by the subcommands: flag parsing and config loading.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "infergate/infra/config.h"

namespace infergate::app {

// Exit codes: 0 success, 1 the command failed, 2 bad usage or bad config.
constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// --name value / --name=value pairs; `allowed` lists the flag names (without --) that take a
// value, `switches` those that do not. Anything else is a UsageError.
struct Flags {
  std::map<std::string, std::string> values;
  std::vector<std::string> positional;
  std::optional<std::string> get(const std::string& k) const;
  bool has(const std::string& k) const { return values.count(k) > 0; }
};
Flags parse_flags(const std::vector<std::string>& args, const std::vector<std::string>& allowed,
                  const std::vector<std::string>& switches = {});

// --config PATH, else config/infergate.toml when it exists, else built-in defaults; the
// environment overrides either way. Throws infra::ConfigError.
infra::Config load_config_for(const Flags& flags);

int cmd_serve(const std::vector<std::string>& args);
int cmd_migrate(const std::vector<std::string>& args);
int cmd_plans(const std::vector<std::string>& args);
int cmd_tenants(const std::vector<std::string>& args);
int cmd_keys(const std::vector<std::string>& args);
int cmd_demo_setup(const std::vector<std::string>& args);
int cmd_reconcile(const std::vector<std::string>& args);
int cmd_invoices(const std::vector<std::string>& args);
int cmd_make_model(const std::vector<std::string>& args);

}  // namespace infergate::app
