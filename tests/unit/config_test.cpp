// Config parsing: defaults, every key, every kind of bad input, environment overrides, and the
// documented config/infergate.toml staying equal to the code's defaults.
#include "infergate/infra/config.h"

#include <string>

#include <gtest/gtest.h>

namespace infergate::infra {
namespace {

// The message of the ConfigError that `f` throws; a test failure (and "") when it throws none.
template <class F>
std::string config_error(F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a ConfigError";
  return {};
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Every field but `source`, one EXPECT each, so a difference names the field.
void expect_same_settings(const Config& a, const Config& b) {
  EXPECT_EQ(a.server.listen_address, b.server.listen_address);
  EXPECT_EQ(a.server.port, b.server.port);
  EXPECT_EQ(a.server.io_threads, b.server.io_threads);
  EXPECT_EQ(a.server.read_timeout, b.server.read_timeout);
  EXPECT_EQ(a.server.idle_timeout, b.server.idle_timeout);
  EXPECT_EQ(a.server.write_timeout, b.server.write_timeout);
  EXPECT_EQ(a.server.max_header_bytes, b.server.max_header_bytes);
  EXPECT_EQ(a.server.max_body_bytes, b.server.max_body_bytes);
  EXPECT_EQ(a.server.shutdown_grace, b.server.shutdown_grace);
  EXPECT_EQ(a.server.shutdown_cut, b.server.shutdown_cut);
  EXPECT_EQ(a.server.access_log, b.server.access_log);
  EXPECT_EQ(a.server.tls_enabled, b.server.tls_enabled);
  EXPECT_EQ(a.server.tls_port, b.server.tls_port);
  EXPECT_EQ(a.server.tls_cert_file, b.server.tls_cert_file);
  EXPECT_EQ(a.server.tls_key_file, b.server.tls_key_file);

  EXPECT_EQ(a.postgres.host, b.postgres.host);
  EXPECT_EQ(a.postgres.port, b.postgres.port);
  EXPECT_EQ(a.postgres.user, b.postgres.user);
  EXPECT_EQ(a.postgres.password, b.postgres.password);
  EXPECT_EQ(a.postgres.database, b.postgres.database);
  EXPECT_EQ(a.postgres.pool_size, b.postgres.pool_size);
  EXPECT_EQ(a.postgres.connect_timeout, b.postgres.connect_timeout);
  EXPECT_EQ(a.postgres.query_timeout, b.postgres.query_timeout);
  EXPECT_EQ(a.postgres.reconnect_backoff, b.postgres.reconnect_backoff);

  EXPECT_EQ(a.redis.host, b.redis.host);
  EXPECT_EQ(a.redis.port, b.redis.port);
  EXPECT_EQ(a.redis.connect_timeout, b.redis.connect_timeout);
  EXPECT_EQ(a.redis.command_timeout, b.redis.command_timeout);
  EXPECT_EQ(a.redis.reconnect_min, b.redis.reconnect_min);
  EXPECT_EQ(a.redis.reconnect_max, b.redis.reconnect_max);

  EXPECT_EQ(a.auth.cache_ttl, b.auth.cache_ttl);
  EXPECT_EQ(a.auth.cache_max_entries, b.auth.cache_max_entries);
  EXPECT_EQ(a.admission.fail_open, b.admission.fail_open);
  EXPECT_EQ(a.admission.redis_timeout, b.admission.redis_timeout);
  EXPECT_EQ(a.admission.reservation_ttl, b.admission.reservation_ttl);
  EXPECT_EQ(a.admission.default_max_tokens, b.admission.default_max_tokens);
  EXPECT_EQ(a.admission.prefetch, b.admission.prefetch);
  EXPECT_EQ(a.journal.dir, b.journal.dir);
  EXPECT_EQ(a.journal.segment_bytes, b.journal.segment_bytes);
  EXPECT_EQ(a.journal.direct_io, b.journal.direct_io);
  EXPECT_EQ(a.journal.batch_records, b.journal.batch_records);
  EXPECT_EQ(a.journal.drain_timeout, b.journal.drain_timeout);
  EXPECT_EQ(a.journal.ledger_interval, b.journal.ledger_interval);
  EXPECT_EQ(a.engine.threads, b.engine.threads);
  EXPECT_EQ(a.engine.kv_blocks, b.engine.kv_blocks);
  EXPECT_EQ(a.engine.block_size, b.engine.block_size);
  EXPECT_EQ(a.engine.max_batch_tokens, b.engine.max_batch_tokens);
  EXPECT_EQ(a.engine.max_seqs, b.engine.max_seqs);
  EXPECT_EQ(a.engine.device, b.engine.device);
  EXPECT_EQ(a.engine.kv_cache_type, b.engine.kv_cache_type);
  EXPECT_EQ(a.engine.prefix_cache, b.engine.prefix_cache);
  EXPECT_EQ(a.routing.tiers, b.routing.tiers);
  EXPECT_EQ(a.routing.fallback, b.routing.fallback);
  EXPECT_EQ(a.routing.auto_long_prompt_tokens, b.routing.auto_long_prompt_tokens);
  EXPECT_EQ(a.routing.max_queue_depth, b.routing.max_queue_depth);
  EXPECT_EQ(a.routing.max_kv_use, b.routing.max_kv_use);
  EXPECT_EQ(a.models.size(), b.models.size());
  EXPECT_EQ(a.log.level, b.log.level);
}

TEST(ConfigTest, EmptyTextGivesTheDefaults) {
  Config c = parse_config("", "empty.toml");
  EXPECT_EQ(c.source, "empty.toml");
  EXPECT_EQ(c.server.listen_address, "127.0.0.1");
  EXPECT_EQ(c.server.port, 8080);
  EXPECT_EQ(c.server.io_threads, 2);
  EXPECT_EQ(c.server.read_timeout, Millis(15000));
  EXPECT_EQ(c.server.idle_timeout, Millis(60000));
  EXPECT_EQ(c.server.write_timeout, Millis(30000));
  EXPECT_EQ(c.server.max_header_bytes, 16384u);
  EXPECT_EQ(c.server.max_body_bytes, 4194304u);
  EXPECT_EQ(c.server.shutdown_grace, Millis(10000));
  EXPECT_TRUE(c.server.access_log);
  EXPECT_EQ(c.postgres.host, "127.0.0.1");
  EXPECT_EQ(c.postgres.port, 54329);
  EXPECT_EQ(c.postgres.user, "infergate");
  EXPECT_EQ(c.postgres.password, "");
  EXPECT_EQ(c.postgres.database, "infergate");
  EXPECT_EQ(c.postgres.pool_size, 4);
  EXPECT_EQ(c.postgres.connect_timeout, Millis(2000));
  EXPECT_EQ(c.postgres.query_timeout, Millis(5000));
  EXPECT_EQ(c.postgres.reconnect_backoff, Millis(500));
  EXPECT_EQ(c.redis.host, "127.0.0.1");
  EXPECT_EQ(c.redis.port, 63799);
  EXPECT_EQ(c.redis.connect_timeout, Millis(1000));
  EXPECT_EQ(c.redis.command_timeout, Millis(500));
  EXPECT_EQ(c.redis.reconnect_min, Millis(100));
  EXPECT_EQ(c.redis.reconnect_max, Millis(5000));
  EXPECT_EQ(c.log.level, "info");
  expect_same_settings(c, Config{});
}

TEST(ConfigTest, EmptySectionsGiveTheDefaults) {
  Config c = parse_config("[server]\n[postgres]\n[redis]\n[log]\n", "sections.toml");
  expect_same_settings(c, Config{});
}

TEST(ConfigTest, FullFileSetsEveryField) {
  const char* text = R"(
[server]
listen_address = "0.0.0.0"
port = 9090
io_threads = 8
read_timeout_ms = 1001
idle_timeout_ms = 1002
write_timeout_ms = 1003
max_header_bytes = 2048
max_body_bytes = 1048576
shutdown_grace_ms = 0
access_log = false

[postgres]
host = "db.internal"
port = 5432
user = "gw"
password = "s3cret"
database = "gwdb"
pool_size = 16
connect_timeout_ms = 3000
query_timeout_ms = 7000
reconnect_backoff_ms = 250

[redis]
host = "cache.internal"
port = 6379
connect_timeout_ms = 1500
command_timeout_ms = 250
reconnect_min_ms = 50
reconnect_max_ms = 60000

[log]
level = "debug"
)";
  Config c = parse_config(text, "full.toml");
  EXPECT_EQ(c.source, "full.toml");
  EXPECT_EQ(c.server.listen_address, "0.0.0.0");
  EXPECT_EQ(c.server.port, 9090);
  EXPECT_EQ(c.server.io_threads, 8);
  EXPECT_EQ(c.server.read_timeout, Millis(1001));
  EXPECT_EQ(c.server.idle_timeout, Millis(1002));
  EXPECT_EQ(c.server.write_timeout, Millis(1003));
  EXPECT_EQ(c.server.max_header_bytes, 2048u);
  EXPECT_EQ(c.server.max_body_bytes, 1048576u);
  EXPECT_EQ(c.server.shutdown_grace, Millis(0));
  EXPECT_FALSE(c.server.access_log);
  EXPECT_EQ(c.postgres.host, "db.internal");
  EXPECT_EQ(c.postgres.port, 5432);
  EXPECT_EQ(c.postgres.user, "gw");
  EXPECT_EQ(c.postgres.password, "s3cret");
  EXPECT_EQ(c.postgres.database, "gwdb");
  EXPECT_EQ(c.postgres.pool_size, 16);
  EXPECT_EQ(c.postgres.connect_timeout, Millis(3000));
  EXPECT_EQ(c.postgres.query_timeout, Millis(7000));
  EXPECT_EQ(c.postgres.reconnect_backoff, Millis(250));
  EXPECT_EQ(c.redis.host, "cache.internal");
  EXPECT_EQ(c.redis.port, 6379);
  EXPECT_EQ(c.redis.connect_timeout, Millis(1500));
  EXPECT_EQ(c.redis.command_timeout, Millis(250));
  EXPECT_EQ(c.redis.reconnect_min, Millis(50));
  EXPECT_EQ(c.redis.reconnect_max, Millis(60000));
  EXPECT_EQ(c.log.level, "debug");
}

TEST(ConfigTest, PortZeroAndRangeEdgesAreAccepted) {
  Config c = parse_config("[server]\nport = 0\nio_threads = 256\n", "edges.toml");
  EXPECT_EQ(c.server.port, 0);
  EXPECT_EQ(c.server.io_threads, 256);
  c = parse_config("[server]\nport = 65535\nio_threads = 1\n", "edges.toml");
  EXPECT_EQ(c.server.port, 65535);
  EXPECT_EQ(c.server.io_threads, 1);
}

TEST(ConfigTest, UnknownKeyNamesTheFileAndTheKey) {
  std::string msg = config_error([] { parse_config("[server]\nbogus = 1\n", "my.toml"); });
  EXPECT_EQ(msg,
            "my.toml: unknown key 'server.bogus' (see config/infergate.toml for the valid keys)");
}

TEST(ConfigTest, UnknownKeyInEachSectionIsRejected) {
  EXPECT_TRUE(contains(config_error([] { parse_config("[postgres]\nhostname = \"x\"\n", "a"); }),
                       "'postgres.hostname'"));
  EXPECT_TRUE(contains(config_error([] { parse_config("[redis]\nreconnect_ms = 5\n", "a"); }),
                       "'redis.reconnect_ms'"));
  EXPECT_TRUE(contains(config_error([] { parse_config("[log]\nformat = \"json\"\n", "a"); }),
                       "'log.format'"));
  // A nested table is an unknown key of its section.
  EXPECT_TRUE(contains(config_error([] { parse_config("[server.tls]\ncert = \"x\"\n", "a"); }),
                       "'server.tls'"));
}

TEST(ConfigTest, UnknownSectionIsRejected) {
  std::string msg = config_error([] { parse_config("[gpu]\ndevice = \"cpu\"\n", "my.toml"); });
  EXPECT_EQ(msg,
            "my.toml: unknown section 'gpu' (valid sections: server, postgres, redis, auth, admission, journal, engine, "
            "routing, models, log)");
  // A top-level key is not a section either.
  msg = config_error([] { parse_config("port = 8080\n", "my.toml"); });
  EXPECT_TRUE(contains(msg, "unknown section 'port'")) << msg;
}

TEST(ConfigTest, SectionThatIsNotATableIsRejected) {
  std::string msg = config_error([] { parse_config("server = 1\n", "my.toml"); });
  EXPECT_EQ(msg, "my.toml: 'server' must be a table ([server])");
}

TEST(ConfigTest, WrongTypeNamesTheKeyTheFileAndTheValue) {
  std::string msg = config_error([] { parse_config("[server]\nport = \"x\"\n", "my.toml"); });
  EXPECT_EQ(msg, "my.toml: key 'server.port': expected an integer, got \"x\"");

  msg = config_error([] { parse_config("[server]\naccess_log = 1\n", "my.toml"); });
  EXPECT_EQ(msg, "my.toml: key 'server.access_log': expected true or false, got 1");

  msg = config_error([] { parse_config("[postgres]\nhost = 5\n", "my.toml"); });
  EXPECT_EQ(msg, "my.toml: key 'postgres.host': expected a string, got 5");

  msg = config_error([] { parse_config("[redis]\nport = 1.5\n", "my.toml"); });
  EXPECT_TRUE(contains(msg, "my.toml: key 'redis.port': expected an integer, got ")) << msg;

  msg = config_error([] { parse_config("[log]\nlevel = [\"info\"]\n", "my.toml"); });
  EXPECT_EQ(msg, "my.toml: key 'log.level': expected a string, got an array");
}

TEST(ConfigTest, OutOfRangeValuesAreRejected) {
  std::string msg = config_error([] { parse_config("[server]\nport = 70000\n", "my.toml"); });
  EXPECT_EQ(msg, "my.toml: key 'server.port': must be between 0 and 65535, got 70000");

  msg = config_error([] { parse_config("[server]\nport = -1\n", "my.toml"); });
  EXPECT_EQ(msg, "my.toml: key 'server.port': must be between 0 and 65535, got -1");

  msg = config_error([] { parse_config("[server]\nio_threads = 0\n", "my.toml"); });
  EXPECT_EQ(msg, "my.toml: key 'server.io_threads': must be between 1 and 256, got 0");

  msg = config_error([] { parse_config("[postgres]\nport = 0\n", "my.toml"); });
  EXPECT_EQ(msg, "my.toml: key 'postgres.port': must be between 1 and 65535, got 0");

  msg = config_error([] { parse_config("[server]\nmax_header_bytes = 1023\n", "my.toml"); });
  EXPECT_TRUE(contains(msg, "'server.max_header_bytes': must be between 1024 and 1048576")) << msg;

  msg = config_error([] { parse_config("[server]\nread_timeout_ms = 0\n", "my.toml"); });
  EXPECT_EQ(msg, "my.toml: key 'server.read_timeout_ms': must be between 1 and 86400000, got 0");

  msg = config_error([] { parse_config("[postgres]\npool_size = 257\n", "my.toml"); });
  EXPECT_EQ(msg, "my.toml: key 'postgres.pool_size': must be between 1 and 256, got 257");
}

TEST(ConfigTest, EmptyRequiredStringsAreRejected) {
  std::string msg =
      config_error([] { parse_config("[server]\nlisten_address = \"\"\n", "my.toml"); });
  EXPECT_EQ(msg, "my.toml: key 'server.listen_address': must not be empty");
  msg = config_error([] { parse_config("[postgres]\ndatabase = \"\"\n", "my.toml"); });
  EXPECT_EQ(msg, "my.toml: key 'postgres.database': must not be empty");
  // The password may be empty (no password).
  EXPECT_EQ(parse_config("[postgres]\npassword = \"\"\n", "my.toml").postgres.password, "");
}

TEST(ConfigTest, BadLogLevelIsRejected) {
  std::string msg = config_error([] { parse_config("[log]\nlevel = \"verbose\"\n", "my.toml"); });
  EXPECT_EQ(msg,
            "my.toml: key 'log.level': expected one of debug, info, warn, error, got \"verbose\"");
  EXPECT_FALSE(config_error([] { parse_config("[log]\nlevel = \"INFO\"\n", "my.toml"); }).empty());
  for (const char* level : {"debug", "info", "warn", "error"}) {
    EXPECT_EQ(parse_config(std::string("[log]\nlevel = \"") + level + "\"\n", "my.toml").log.level,
              level);
  }
}

TEST(ConfigTest, InvalidTomlNamesFileAndLine) {
  std::string msg =
      config_error([] { parse_config("[server]\nport = 8080\nio_threads = \n", "broken.toml"); });
  EXPECT_EQ(msg.rfind("broken.toml:3:", 0), 0u) << msg;
  EXPECT_TRUE(contains(msg, "not valid TOML")) << msg;

  msg = config_error([] { parse_config("[server\n", "broken.toml"); });
  EXPECT_EQ(msg.rfind("broken.toml:1:", 0), 0u) << msg;

  // A key given twice is invalid TOML, not a silent "last one wins".
  msg = config_error([] { parse_config("[server]\nport = 1\nport = 2\n", "dup.toml"); });
  EXPECT_EQ(msg.rfind("dup.toml:3:", 0), 0u) << msg;
}

TEST(ConfigTest, RedisReconnectMaxBelowMinIsRejected) {
  std::string msg = config_error(
      [] { parse_config("[redis]\nreconnect_min_ms = 200\nreconnect_max_ms = 100\n", "my.toml"); });
  EXPECT_EQ(msg,
            "my.toml (with INFERGATE_REDIS__* overrides applied): key 'redis.reconnect_max_ms' "
            "(100) must not be smaller than 'redis.reconnect_min_ms' (200)");
  // Equal is fine.
  Config c = parse_config("[redis]\nreconnect_min_ms = 200\nreconnect_max_ms = 200\n", "my.toml");
  EXPECT_EQ(c.redis.reconnect_max, Millis(200));
  // Checked against the default when only one side is set.
  EXPECT_FALSE(config_error([] { parse_config("[redis]\nreconnect_max_ms = 99\n", "x"); }).empty());
}

TEST(ConfigTest, EnvironmentOverridesWinOverTheFile) {
  EnvMap env{{"INFERGATE_SERVER__PORT", "9000"},
             {"INFERGATE_POSTGRES__PASSWORD", "from-env"},
             {"INFERGATE_REDIS__COMMAND_TIMEOUT_MS", "750"},
             {"INFERGATE_LOG__LEVEL", "warn"}};
  Config c =
      parse_config("[server]\nport = 8081\n[postgres]\npassword = \"file\"\n", "my.toml", env);
  EXPECT_EQ(c.server.port, 9000);
  EXPECT_EQ(c.postgres.password, "from-env");
  EXPECT_EQ(c.redis.command_timeout, Millis(750));
  EXPECT_EQ(c.log.level, "warn");
  // Untouched keys keep the file's value or the default.
  EXPECT_EQ(c.server.io_threads, 2);
}

TEST(ConfigTest, EnvironmentOverrideWithoutTheSectionInTheFile) {
  Config c = parse_config("", "my.toml", {{"INFERGATE_SERVER__IO_THREADS", "12"}});
  EXPECT_EQ(c.server.io_threads, 12);
}

TEST(ConfigTest, BadEnvironmentValueNamesTheVariable) {
  std::string msg = config_error([] {
    parse_config("", "my.toml", {{"INFERGATE_SERVER__PORT", "abc"}});
  });
  EXPECT_EQ(msg,
            "environment variable INFERGATE_SERVER__PORT: key 'server.port': expected an integer, "
            "got \"abc\"");

  for (const char* bad : {"", "12x", " 12", "+12", "1.5"}) {
    msg = config_error([&] { parse_config("", "my.toml", {{"INFERGATE_SERVER__PORT", bad}}); });
    EXPECT_TRUE(contains(msg, "environment variable INFERGATE_SERVER__PORT")) << bad << ": " << msg;
  }

  msg = config_error([] { parse_config("", "my.toml", {{"INFERGATE_SERVER__PORT", "70000"}}); });
  EXPECT_EQ(msg,
            "environment variable INFERGATE_SERVER__PORT: key 'server.port': must be between 0 and "
            "65535, got 70000");

  msg = config_error([] { parse_config("", "my.toml", {{"INFERGATE_LOG__LEVEL", "loud"}}); });
  EXPECT_TRUE(contains(msg, "environment variable INFERGATE_LOG__LEVEL: key 'log.level'")) << msg;
}

TEST(ConfigTest, UnknownEnvironmentKeyIsRejected) {
  std::string msg = config_error([] {
    parse_config("", "my.toml", {{"INFERGATE_SERVER__NOPE", "1"}});
  });
  EXPECT_EQ(msg,
            "environment variable INFERGATE_SERVER__NOPE: no such config key (the form is "
            "INFERGATE_<SECTION>__<KEY>, e.g. INFERGATE_SERVER__PORT)");
  msg = config_error([] { parse_config("", "my.toml", {{"INFERGATE_ENGINE__GPU", "cpu"}}); });
  EXPECT_TRUE(contains(msg, "INFERGATE_ENGINE__GPU: no such config key")) << msg;
}

TEST(ConfigTest, BoolEnvironmentValues) {
  EXPECT_TRUE(parse_config("[server]\naccess_log = false\n", "a",
                           {{"INFERGATE_SERVER__ACCESS_LOG", "true"}})
                  .server.access_log);
  EXPECT_FALSE(
      parse_config("", "a", {{"INFERGATE_SERVER__ACCESS_LOG", "false"}}).server.access_log);
  std::string msg = config_error([] {
    parse_config("", "a", {{"INFERGATE_SERVER__ACCESS_LOG", "yes"}});
  });
  EXPECT_EQ(msg,
            "environment variable INFERGATE_SERVER__ACCESS_LOG: key 'server.access_log': expected "
            "true or false, got \"yes\"");
  EXPECT_FALSE(config_error([] {
                 parse_config("", "a", {{"INFERGATE_SERVER__ACCESS_LOG", "1"}});
               }).empty());
}

TEST(ConfigTest, EnvironmentOverridesReadsOnlyDoubleUnderscoreVariables) {
  char e1[] = "INFERGATE_SERVER__PORT=9000";
  char e2[] = "INFERGATE_CONFIG=/etc/infergate.toml";  // no double underscore: not a key
  char e3[] = "PATH=/usr/bin";
  char e4[] = "INFERGATE_POSTGRES__PASSWORD=a=b";  // the value may hold '='
  char e5[] = "INFERGATE_NO_EQUALS__SIGN";
  char e6[] = "XINFERGATE_SERVER__PORT=1";
  char* envp[] = {e1, e2, e3, e4, e5, e6, nullptr};
  EnvMap env = environment_overrides(envp);
  EnvMap expected{{"INFERGATE_SERVER__PORT", "9000"}, {"INFERGATE_POSTGRES__PASSWORD", "a=b"}};
  EXPECT_EQ(env, expected);
  EXPECT_TRUE(environment_overrides(nullptr).empty());
}

TEST(ConfigTest, LoadConfigOfAMissingFileThrows) {
  std::string msg = config_error([] { load_config("/nonexistent/dir/infergate.toml"); });
  EXPECT_EQ(msg, "/nonexistent/dir/infergate.toml: cannot open config file (check --config)");
}

// The documented file lists every key with its default: it must say exactly what the code does.
TEST(ConfigTest, DocumentedConfigFileEqualsTheBuiltInDefaults) {
  const std::string path = IG_SOURCE_DIR "/config/infergate.toml";
  Config c = load_config(path);
  EXPECT_EQ(c.source, path);
  expect_same_settings(c, Config{});
}

TEST(ConfigTest, DocumentedConfigFileTakesEnvironmentOverrides) {
  Config c = load_config(IG_SOURCE_DIR "/config/infergate.toml",
                         {{"INFERGATE_SERVER__PORT", "0"}, {"INFERGATE_LOG__LEVEL", "debug"}});
  EXPECT_EQ(c.server.port, 0);
  EXPECT_EQ(c.log.level, "debug");
}

TEST(ConfigTest, ConninfoQuotesValues) {
  PostgresConfig pg;
  EXPECT_EQ(pg.conninfo(),
            "host='127.0.0.1' port=54329 user='infergate' dbname='infergate' "
            "application_name='infergate' connect_timeout=2 keepalives=1 keepalives_idle=10 "
            "keepalives_interval=5 keepalives_count=3 options='-c statement_timeout=5000'");

  pg.password = R"(it's\here)";
  pg.user = "o'brien";
  const std::string s = pg.conninfo();
  EXPECT_TRUE(contains(s, R"( user='o\'brien' )")) << s;
  EXPECT_EQ(s.substr(s.size() - std::string(R"( password='it\'s\\here')").size()),
            R"( password='it\'s\\here')")
      << s;
}

TEST(ConfigTest, ConninfoRoundsTheConnectTimeoutUpToWholeSeconds) {
  PostgresConfig pg;
  auto timeout_of = [&](long ms) {
    pg.connect_timeout = Millis(ms);
    std::string s = pg.conninfo();
    auto at = s.find("connect_timeout=");
    return s.substr(at, s.find(' ', at) - at);
  };
  EXPECT_EQ(timeout_of(1), "connect_timeout=1");
  EXPECT_EQ(timeout_of(1000), "connect_timeout=1");
  EXPECT_EQ(timeout_of(1001), "connect_timeout=2");
  EXPECT_EQ(timeout_of(2500), "connect_timeout=3");
}

TEST(ConfigTest, ModelsAndRouting) {
  Config c = parse_config(R"(
[routing]
tiers = ["s", "m"]
fallback = ["m"]
max_kv_use = 0.5
[[models]]
name = "toy"
file = "a.gguf"
tier = "s"
aliases = ["tiny", "t-1"]
[[models]]
name = "big"
file = "b.gguf"
tier = "m"
context_length = 128
chat_template = "llama3"
)", "m.toml", {{"INFERGATE_ENGINE__THREADS", "3"}, {"INFERGATE_ROUTING__TIERS", "s,m,l"}});
  ASSERT_EQ(c.models.size(), 2u);
  EXPECT_EQ(c.models[0].aliases, (std::vector<std::string>{"tiny", "t-1"}));
  EXPECT_EQ(c.models[1].context_length, 128);
  EXPECT_EQ(c.models[1].chat_template, "llama3");
  EXPECT_EQ(c.engine.threads, 3);
  EXPECT_EQ(c.routing.tiers, (std::vector<std::string>{"s", "m", "l"}));
  EXPECT_EQ(c.routing.max_kv_use, 0.5);
}

TEST(ConfigTest, BadModelsAreRefusedWithTheKeyNamed) {
  auto msg = [](const std::string& toml) { return config_error([&] { parse_config(toml, "m.toml"); }); };
  EXPECT_EQ(msg("[[models]]\nname = \"a\"\nfile = \"x\"\ntier = \"huge\"\n"),
            "m.toml: models[0].tier 'huge' is not one of routing.tiers");
  EXPECT_EQ(msg("[[models]]\nname = \"a\"\ntier = \"small\"\n"), "m.toml: models[0] needs name, file and tier");
  EXPECT_TRUE(contains(msg("[[models]]\nname = \"a\"\nfile = \"x\"\ntier = \"small\"\nbogus = 1\n"),
                       "unknown key 'models[0].bogus'"));
  EXPECT_TRUE(contains(msg("[[models]]\nname = \"a b\"\nfile = \"x\"\ntier = \"small\"\n"), "may only contain"));
  EXPECT_TRUE(contains(msg("[[models]]\nname = \"a\"\nfile = \"x\"\ntier = \"small\"\n"
                           "[[models]]\nname = \"b\"\nfile = \"y\"\ntier = \"small\"\naliases = [\"a\"]\n"),
                       "the name 'a' is used twice"));
  EXPECT_TRUE(contains(msg("[[models]]\nname = \"small\"\nfile = \"x\"\ntier = \"small\"\n"), "used twice"));
  EXPECT_TRUE(contains(msg("models = 3\n"), "must be an array of tables"));
  EXPECT_TRUE(contains(msg("[routing]\nfallback = [\"xl\"]\n"), "names tier 'xl'"));
  EXPECT_TRUE(contains(msg("[routing]\nmax_kv_use = 1.5\n"), "fraction"));
  EXPECT_TRUE(contains(msg("[routing]\ntiers = []\n"), "at least one tier"));
  EXPECT_TRUE(contains(msg("[engine]\ndevice = \"tpu\"\n"), "expected auto, cpu or cuda"));
  EXPECT_TRUE(contains(msg("[engine]\nkv_blocks = 0\n"), "must be between"));
  EXPECT_TRUE(contains(msg("[engine]\nkv_cache_type = \"f8\"\n"), "expected auto, f32 or f16, got \"f8\""));
  EXPECT_TRUE(contains(msg("[engine]\nprefix_cache = \"yes\"\n"), "expected true or false"));
  EXPECT_FALSE(parse_config("[engine]\nprefix_cache = false\n", "a", {}).engine.prefix_cache);
  EXPECT_TRUE(parse_config("", "a", {}).engine.prefix_cache);
  EXPECT_TRUE(contains(msg("[admission]\nprefetch = 1\n"), "expected true or false"));
  EXPECT_FALSE(parse_config("[admission]\nprefetch = false\n", "a", {}).admission.prefetch);
  EXPECT_TRUE(parse_config("", "a", {}).admission.prefetch);
  EXPECT_TRUE(contains(msg("[journal]\nledger_interval_ms = 0\n"), "must be between"));
  EXPECT_TRUE(contains(msg("[journal]\nledger_interval_ms = 60001\n"), "must be between"));
  EXPECT_EQ(parse_config("[journal]\nledger_interval_ms = 250\n", "a", {}).journal.ledger_interval.count(), 250);
  EXPECT_EQ(parse_config("", "a", {}).journal.ledger_interval.count(), 10);
  EXPECT_TRUE(contains(msg("[journal]\ndirect_io = \"on\"\n"), "expected true or false"));
  EXPECT_FALSE(parse_config("[journal]\ndirect_io = false\n", "a", {}).journal.direct_io);
  EXPECT_TRUE(parse_config("", "a", {}).journal.direct_io);
}

}  // namespace
}  // namespace infergate::infra
