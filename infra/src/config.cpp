#include "infergate/infra/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>
#include <vector>

namespace infergate::infra {
namespace {

std::string describe(const toml::node& n) {
  std::ostringstream out;
  if (n.is_string()) {
    out << '"' << *n.value<std::string>() << '"';
  } else if (n.is_table()) {
    out << "a table";
  } else if (n.is_array()) {
    out << "an array";
  } else {
    n.visit([&](auto&& v) { out << v; });
  }
  return out.str();
}

// Reads one section: each read_* call consumes a key (from the environment if overridden there,
// else from the file); finish() reports any key nobody asked for.
class Section {
 public:
  Section(const toml::table* table, std::string name, const std::string& source, const EnvMap& env,
          std::set<std::string>& used_env)
      : table_(table), name_(std::move(name)), source_(source), env_(env), used_env_(used_env) {}

  void read_string(const std::string& key, std::string& out,
                   const std::function<std::string(const std::string&)>& check = {}) {
    std::string value = out;
    if (auto e = from_env(key)) {
      value = *e;
    } else if (const toml::node* n = node(key)) {
      if (!n->is_string()) fail(key, "expected a string, got " + describe(*n));
      value = *n->value<std::string>();
    } else {
      return;
    }
    if (check) {
      if (std::string why = check(value); !why.empty()) fail(key, why);
    }
    out = value;
  }

  void read_int(const std::string& key, std::int64_t& out, std::int64_t min, std::int64_t max) {
    std::int64_t value = out;
    if (auto e = from_env(key)) {
      auto [p, ec] = std::from_chars(e->data(), e->data() + e->size(), value);
      if (ec != std::errc() || p != e->data() + e->size() || e->empty())
        fail(key, "expected an integer, got \"" + *e + "\"");
    } else if (const toml::node* n = node(key)) {
      if (!n->is_integer()) fail(key, "expected an integer, got " + describe(*n));
      value = *n->value<std::int64_t>();
    } else {
      return;
    }
    if (value < min || value > max)
      fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                    ", got " + std::to_string(value));
    out = value;
  }

  template <class T>
  void read_number(const std::string& key, T& out, std::int64_t min, std::int64_t max) {
    std::int64_t v = static_cast<std::int64_t>(out);
    read_int(key, v, min, max);
    out = static_cast<T>(v);
  }

  void read_ms(const std::string& key, Millis& out, std::int64_t min, std::int64_t max) {
    std::int64_t v = out.count();
    read_int(key, v, min, max);
    out = Millis(v);
  }

  // An array of strings in the file; a comma-separated list in the environment.
  void read_strings(const std::string& key, std::vector<std::string>& out,
                    const std::function<std::string(const std::string&)>& check = {}) {
    std::vector<std::string> value;
    if (auto e = from_env(key)) {
      std::size_t start = 0;
      while (start <= e->size() && !e->empty()) {
        const auto comma = e->find(',', start);
        value.push_back(e->substr(start, comma == std::string::npos ? std::string::npos : comma - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else if (const toml::node* n = node(key)) {
      const toml::array* arr = n->as_array();
      if (arr == nullptr) fail(key, "expected an array of strings, got " + describe(*n));
      for (const auto& item : *arr) {
        if (!item.is_string()) fail(key, "expected an array of strings, got an element " + describe(item));
        value.push_back(*item.value<std::string>());
      }
    } else {
      return;
    }
    for (const auto& v : value) {
      if (check) {
        if (std::string why = check(v); !why.empty()) fail(key, why);
      }
    }
    out = std::move(value);
  }

  void read_fraction(const std::string& key, double& out) {
    double value = out;
    if (auto e = from_env(key)) {
      const char* end = e->data() + e->size();
      auto [p, ec] = std::from_chars(e->data(), end, value);
      if (ec != std::errc() || p != end) fail(key, "expected a number, got \"" + *e + "\"");
    } else if (const toml::node* n = node(key)) {
      if (n->is_integer()) {
        value = static_cast<double>(*n->value<std::int64_t>());
      } else if (n->is_floating_point()) {
        value = *n->value<double>();
      } else {
        fail(key, "expected a number, got " + describe(*n));
      }
    } else {
      return;
    }
    if (!(value > 0.0 && value <= 1.0)) fail(key, "must be a fraction in (0, 1]");
    out = value;
  }

  void read_bool(const std::string& key, bool& out) {
    if (auto e = from_env(key)) {
      if (*e == "true") {
        out = true;
      } else if (*e == "false") {
        out = false;
      } else {
        fail(key, "expected true or false, got \"" + *e + "\"");
      }
    } else if (const toml::node* n = node(key)) {
      if (!n->is_boolean()) fail(key, "expected true or false, got " + describe(*n));
      out = *n->value<bool>();
    }
  }

  void finish() const {
    if (!table_) return;
    for (auto&& [k, v] : *table_) {
      std::string key(k.str());
      if (!seen_.count(key))
        throw ConfigError(source_ + ": unknown key '" + name_ + "." + key +
                          "' (see config/infergate.toml for the valid keys)");
    }
  }

  [[noreturn]] void fail(const std::string& key, const std::string& why) const {
    bool env = env_.count(env_name(key)) > 0;
    throw ConfigError((env ? "environment variable " + env_name(key) : source_) + ": key '" +
                      name_ + "." + key + "': " + why);
  }

 private:
  std::string env_name(const std::string& key) const {
    std::string n = "INFERGATE_" + name_ + "__" + key;
    for (auto& c : n) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return n;
  }

  std::optional<std::string> from_env(const std::string& key) {
    seen_.insert(key);
    auto it = env_.find(env_name(key));
    if (it == env_.end()) return std::nullopt;
    used_env_.insert(it->first);
    return it->second;
  }

  const toml::node* node(const std::string& key) {
    seen_.insert(key);
    return table_ ? table_->get(key) : nullptr;
  }

  const toml::table* table_;
  std::string name_;
  const std::string& source_;
  const EnvMap& env_;
  std::set<std::string>& used_env_;
  std::set<std::string> seen_;
};

std::string check_level(const std::string& v) {
  static const std::set<std::string> levels{"debug", "info", "warn", "error"};
  return levels.count(v) ? "" : "expected one of debug, info, warn, error, got \"" + v + "\"";
}

std::string check_device(const std::string& v) {
  return v == "auto" || v == "cpu" || v == "cuda" ? "" : "expected auto, cpu or cuda, got \"" + v + "\"";
}

// Model, alias and tier names: what clients send as "model".
std::string check_name(const std::string& v) {
  if (v.empty() || v.size() > 64) return "names are 1 to 64 characters";
  for (const char c : v) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.' && c != ':')
      return "\"" + v + "\" may only contain letters, digits, '-', '_', '.' and ':'";
  }
  return "";
}

const EnvMap kNoEnv;  // [[models]] entries are not overridable from the environment

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::string check_nonempty(const std::string& v) {
  return v.empty() ? "must not be empty" : "";
}

constexpr std::int64_t kMaxMs = 24LL * 3600 * 1000;

}  // namespace

std::string PostgresConfig::conninfo() const {
  auto quote = [](const std::string& v) {
    std::string out = "'";
    for (char c : v) {
      if (c == '\'' || c == '\\') out += '\\';
      out += c;
    }
    return out + "'";
  };
  std::string s = "host=" + quote(host) + " port=" + std::to_string(port) + " user=" + quote(user) +
                  " dbname=" + quote(database) + " application_name='infergate'" +
                  " connect_timeout=" +
                  std::to_string(std::max<long>(1, (connect_timeout.count() + 999) / 1000)) +
                  " keepalives=1 keepalives_idle=10 keepalives_interval=5 keepalives_count=3" +
                  " options='-c statement_timeout=" + std::to_string(query_timeout.count()) + "'";
  if (!password.empty()) s += " password=" + quote(password);
  return s;
}

EnvMap environment_overrides(char** envp) {
  EnvMap out;
  for (char** e = envp; e && *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = kv.substr(0, eq);
    if (name.rfind("INFERGATE_", 0) != 0 || name.find("__") == std::string_view::npos) continue;
    out.emplace(std::string(name), std::string(kv.substr(eq + 1)));
  }
  return out;
}

Config parse_config(std::string_view toml_text, std::string source, const EnvMap& env) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << source << ":" << e.source().begin.line << ":" << e.source().begin.column
        << ": not valid TOML: " << e.description();
    throw ConfigError(msg.str());
  }

  Config cfg;
  cfg.source = source;
  std::set<std::string> used_env;
  static const std::set<std::string> sections{"server", "postgres", "redis",  "auth",   "admission",
                                              "journal", "engine",  "routing", "models", "log"};
  for (auto&& [k, v] : root) {
    std::string name(k.str());
    if (!sections.count(name))
      throw ConfigError(source + ": unknown section '" + name +
                        "' (valid sections: server, postgres, redis, auth, admission, journal, engine, "
                        "routing, models, log)");
    if (name == "models") {
      if (!v.is_array_of_tables())
        throw ConfigError(source + ": 'models' must be an array of tables ([[models]] entries)");
      continue;
    }
    if (!v.is_table())
      throw ConfigError(source + ": '" + name + "' must be a table ([" + name + "])");
  }
  auto section = [&](const char* name) {
    return Section(root.get_as<toml::table>(name), name, cfg.source, env, used_env);
  };

  {
    auto s = section("server");
    auto& c = cfg.server;
    s.read_string("listen_address", c.listen_address, check_nonempty);
    s.read_number("port", c.port, 0, 65535);
    s.read_number("io_threads", c.io_threads, 1, 256);
    s.read_ms("read_timeout_ms", c.read_timeout, 1, kMaxMs);
    s.read_ms("idle_timeout_ms", c.idle_timeout, 1, kMaxMs);
    s.read_ms("write_timeout_ms", c.write_timeout, 1, kMaxMs);
    s.read_number("max_header_bytes", c.max_header_bytes, 1024, 1 << 20);
    s.read_number("max_body_bytes", c.max_body_bytes, 1024, std::int64_t{1} << 30);
    s.read_ms("shutdown_grace_ms", c.shutdown_grace, 0, kMaxMs);
    s.read_ms("shutdown_cut_ms", c.shutdown_cut, 0, kMaxMs);
    s.read_bool("access_log", c.access_log);
    s.read_bool("tls_enabled", c.tls_enabled);
    s.read_number("tls_port", c.tls_port, 0, 65535);
    s.read_string("tls_cert_file", c.tls_cert_file);
    s.read_string("tls_key_file", c.tls_key_file);
    if (c.tls_enabled && (c.tls_cert_file.empty() || c.tls_key_file.empty()))
      throw ConfigError(cfg.source + ": server.tls_enabled is true, so server.tls_cert_file and "
                        "server.tls_key_file must name the PEM certificate chain and private key");
    s.finish();
  }
  {
    auto s = section("postgres");
    auto& c = cfg.postgres;
    s.read_string("host", c.host, check_nonempty);
    s.read_number("port", c.port, 1, 65535);
    s.read_string("user", c.user, check_nonempty);
    s.read_string("password", c.password);
    s.read_string("database", c.database, check_nonempty);
    s.read_number("pool_size", c.pool_size, 1, 256);
    s.read_ms("connect_timeout_ms", c.connect_timeout, 1, kMaxMs);
    s.read_ms("query_timeout_ms", c.query_timeout, 1, kMaxMs);
    s.read_ms("reconnect_backoff_ms", c.reconnect_backoff, 0, kMaxMs);
    s.finish();
  }
  {
    auto s = section("redis");
    auto& c = cfg.redis;
    s.read_string("host", c.host, check_nonempty);
    s.read_number("port", c.port, 1, 65535);
    s.read_ms("connect_timeout_ms", c.connect_timeout, 1, kMaxMs);
    s.read_ms("command_timeout_ms", c.command_timeout, 1, kMaxMs);
    s.read_ms("reconnect_min_ms", c.reconnect_min, 1, kMaxMs);
    s.read_ms("reconnect_max_ms", c.reconnect_max, 1, kMaxMs);
    if (c.reconnect_max < c.reconnect_min)
      throw ConfigError(cfg.source + " (with INFERGATE_REDIS__* overrides applied): key "
                        "'redis.reconnect_max_ms' (" + std::to_string(c.reconnect_max.count()) +
                        ") must not be smaller than 'redis.reconnect_min_ms' (" +
                        std::to_string(c.reconnect_min.count()) + ")");
    s.finish();
  }
  {
    auto s = section("auth");
    s.read_ms("cache_ttl_ms", cfg.auth.cache_ttl, 0, kMaxMs);
    s.read_number("cache_max_entries", cfg.auth.cache_max_entries, 1, 100000000);
    s.finish();
  }
  {
    auto s = section("admission");
    s.read_bool("fail_open", cfg.admission.fail_open);
    s.read_ms("redis_timeout_ms", cfg.admission.redis_timeout, 1, kMaxMs);
    s.read_ms("reservation_ttl_ms", cfg.admission.reservation_ttl, 1000, kMaxMs);
    s.read_int("default_max_tokens", cfg.admission.default_max_tokens, 1, 10000000);
    s.read_bool("prefetch", cfg.admission.prefetch);
    s.finish();
  }
  {
    auto s = section("journal");
    s.read_string("dir", cfg.journal.dir, check_nonempty);
    s.read_number("segment_bytes", cfg.journal.segment_bytes, 4096, std::int64_t{1} << 40);
    s.read_bool("direct_io", cfg.journal.direct_io);
    s.read_number("batch_records", cfg.journal.batch_records, 1, 100000);
    s.read_ms("drain_timeout_ms", cfg.journal.drain_timeout, 0, kMaxMs);
    s.read_ms("ledger_interval_ms", cfg.journal.ledger_interval, 1, 60000);
    s.finish();
  }
  {
    auto s = section("engine");
    auto& c = cfg.engine;
    s.read_number("threads", c.threads, 0, 1024);
    s.read_number("kv_blocks", c.kv_blocks, 1, 1 << 24);
    s.read_number("block_size", c.block_size, 1, 1024);
    s.read_int("max_batch_tokens", c.max_batch_tokens, 1, 1 << 20);
    s.read_number("max_seqs", c.max_seqs, 1, 4096);
    s.read_string("device", c.device, check_device);
    s.read_string("kv_cache_type", c.kv_cache_type, [](const std::string& v) {
      return v == "auto" || v == "f32" || v == "f16" ? "" : "expected auto, f32 or f16, got \"" + v + "\"";
    });
    s.read_bool("prefix_cache", c.prefix_cache);
    s.finish();
  }
  {
    auto s = section("routing");
    auto& c = cfg.routing;
    s.read_strings("tiers", c.tiers, check_name);
    s.read_strings("fallback", c.fallback, check_name);
    s.read_int("auto_long_prompt_tokens", c.auto_long_prompt_tokens, 1, std::int64_t{1} << 30);
    s.read_int("max_queue_depth", c.max_queue_depth, 0, std::int64_t{1} << 30);
    s.read_fraction("max_kv_use", c.max_kv_use);
    if (c.tiers.empty()) throw ConfigError(cfg.source + ": key 'routing.tiers' must name at least one tier");
    for (const auto& t : c.fallback) {
      if (std::find(c.tiers.begin(), c.tiers.end(), t) == c.tiers.end())
        throw ConfigError(cfg.source + ": key 'routing.fallback' names tier '" + t + "', which is not in routing.tiers");
    }
    s.finish();
  }
  if (const toml::array* models = root.get_as<toml::array>("models")) {
    std::set<std::string> names;
    for (std::size_t i = 0; i < models->size(); ++i) {
      const std::string where = "models[" + std::to_string(i) + "]";
      Section s((*models)[i].as_table(), where, cfg.source, kNoEnv, used_env);
      ModelConfig m;
      s.read_string("name", m.name, check_name);
      s.read_string("file", m.file, check_nonempty);
      s.read_string("tier", m.tier, check_nonempty);
      s.read_strings("aliases", m.aliases, check_name);
      s.read_int("context_length", m.context_length, 0, std::int64_t{1} << 24);
      s.read_string("device", m.device, [](const std::string& v) { return v.empty() ? "" : check_device(v); });
      s.read_string("chat_template", m.chat_template, [](const std::string& v) {
        return v.empty() || v == "chatml" || v == "llama3" || v == "llama2"
                   ? ""
                   : "expected chatml, llama3 or llama2 (or leave it out to use the model's), got \"" + v + "\"";
      });
      s.finish();
      if (m.name.empty() || m.file.empty() || m.tier.empty())
        throw ConfigError(cfg.source + ": " + where + " needs name, file and tier");
      if (std::find(cfg.routing.tiers.begin(), cfg.routing.tiers.end(), m.tier) == cfg.routing.tiers.end())
        throw ConfigError(cfg.source + ": " + where + ".tier '" + m.tier + "' is not one of routing.tiers");
      for (const auto& n : std::vector<std::string>{m.name} + m.aliases) {
        if (!names.insert(n).second || n == "auto" ||
            std::find(cfg.routing.tiers.begin(), cfg.routing.tiers.end(), n) != cfg.routing.tiers.end())
          throw ConfigError(cfg.source + ": " + where + ": the name '" + n +
                            "' is used twice (models, aliases, tier names and 'auto' must all differ)");
      }
      cfg.models.push_back(std::move(m));
    }
  }
  {
    auto s = section("log");
    s.read_string("level", cfg.log.level, check_level);
    s.finish();
  }

  for (const auto& [name, value] : env) {
    if (!used_env.count(name))
      throw ConfigError("environment variable " + name +
                        ": no such config key (the form is INFERGATE_<SECTION>__<KEY>, e.g. "
                        "INFERGATE_SERVER__PORT)");
  }
  return cfg;
}

Config load_config(const std::string& path, const EnvMap& env) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open config file (check --config)");
  std::stringstream buf;
  buf << in.rdbuf();
  return parse_config(buf.str(), path, env);
}

}  // namespace infergate::infra
