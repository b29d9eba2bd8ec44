#include "cli.h"

#include <algorithm>
#include <filesystem>

extern char** environ;

namespace infergate::app {

std::optional<std::string> Flags::get(const std::string& k) const {
  auto it = values.find(k);
  if (it == values.end()) return std::nullopt;
  return it->second;
}

Flags parse_flags(const std::vector<std::string>& args, const std::vector<std::string>& allowed,
                  const std::vector<std::string>& switches) {
  Flags f;
  auto contains = [](const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0) {
      f.positional.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    bool inline_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    if (contains(switches, name)) {
      if (inline_value) throw UsageError("--" + name + " takes no value");
      f.values[name] = "true";
      continue;
    }
    if (!contains(allowed, name)) throw UsageError("unknown option --" + name);
    if (!inline_value) {
      if (i + 1 >= args.size()) throw UsageError("--" + name + " needs a value");
      value = args[++i];
    }
    f.values[name] = value;
  }
  return f;
}

infra::Config load_config_for(const Flags& flags) {
  auto env = infra::environment_overrides(environ);
  if (auto path = flags.get("config")) return infra::load_config(*path, env);
  const std::string fallback = "config/infergate.toml";
  if (std::filesystem::exists(fallback)) return infra::load_config(fallback, env);
  return infra::parse_config("", "<defaults>", env);
}

}  // namespace infergate::app
