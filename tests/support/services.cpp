#include "support/services.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pqxx/pqxx>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "infergate/infra/ids.h"
#include "support/process.h"

namespace infergate::test {
namespace {

std::map<std::string, std::string> parse_env(const std::string& text) {
  std::map<std::string, std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    auto line = text.substr(pos, nl - pos);
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
    pos = nl + 1;
  }
  return out;
}

std::string own_services_dir;
void stop_own_services() {
  if (own_services_dir.empty()) return;
  run_command(test_services_script() + " stop " + own_services_dir + " >/dev/null 2>&1");
}

std::string script(const std::string& args) {
  int rc = 0;
  std::string out = run_command(test_services_script() + " " + args + " 2>&1", &rc);
  if (rc != 0) throw std::runtime_error("test-services.sh " + args + " failed: " + out);
  return out;
}

}  // namespace

std::string test_services_script() { return IG_TEST_SERVICES_SCRIPT; }
std::string source_dir() { return IG_SOURCE_DIR; }
std::string infergate_binary() { return IG_BINARY; }

const SharedServices& shared_services() {
  static SharedServices s = [] {
    std::string env_path = IG_TEST_SERVICES_ENV;
    if (!std::filesystem::exists(env_path)) {
      // Not under ctest's fixture: start our own pair for this process.
      own_services_dir = make_temp_dir("services");
      script("start " + own_services_dir);
      std::atexit(stop_own_services);
      env_path = own_services_dir + "/env";
    }
    auto env = parse_env(read_file(env_path));
    SharedServices r;
    r.pg_port = std::stoi(env.at("PG_PORT"));
    r.redis_port = std::stoi(env.at("REDIS_PORT"));
    return r;
  }();
  return s;
}

infra::PostgresConfig postgres_config(int port, const std::string& database) {
  infra::PostgresConfig c;
  c.host = "127.0.0.1";
  c.port = static_cast<std::uint16_t>(port);
  c.user = "infergate";
  c.database = database;
  c.connect_timeout = infra::Millis(2000);
  c.query_timeout = infra::Millis(10000);
  c.reconnect_backoff = infra::Millis(50);
  c.pool_size = 2;
  return c;
}

infra::PostgresConfig fresh_database(const std::string& prefix) {
  const auto& s = shared_services();
  std::string name = prefix + "_" + infra::random_hex(6);
  for (auto& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  pqxx::connection admin(postgres_config(s.pg_port).conninfo());
  pqxx::nontransaction tx(admin);
  tx.exec("CREATE DATABASE " + tx.quote_name(name));
  return postgres_config(s.pg_port, name);
}

infra::RedisConfig redis_config(int port) {
  infra::RedisConfig c;
  c.host = "127.0.0.1";
  c.port = static_cast<std::uint16_t>(port);
  c.connect_timeout = infra::Millis(1000);
  c.command_timeout = infra::Millis(1000);
  c.reconnect_min = infra::Millis(20);
  c.reconnect_max = infra::Millis(200);
  return c;
}

bool wait_connected(const infra::RedisClient& redis, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!redis.connected() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return redis.connected();
}

std::string unique_name(const std::string& prefix) {
  return prefix + ":" + infra::random_hex(6);
}

// A port that binds now, below the kernel's ephemeral range (32768+) so that no outgoing
// connection or port-0 listener takes it before the test uses it.
int free_port() {
  static std::atomic<unsigned> salt{static_cast<unsigned>(::getpid()) * 7919u};
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int port = 20000 + static_cast<int>((salt.fetch_add(104729u) * 2654435761u) % 12000u);
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (ok) return port;
  }
  throw std::runtime_error("no free port found");
}

PrivateRedis::PrivateRedis() : dir_(make_temp_dir("redis")) {
  port_ = std::stoi(script("redis " + dir_ + " 0"));
}

PrivateRedis::~PrivateRedis() {
  try {
    resume();
    stop();
  } catch (...) {
  }
  std::filesystem::remove_all(dir_);
}

void PrivateRedis::stop() { script("stop-redis " + dir_ + " " + std::to_string(port_)); }
void PrivateRedis::start() { script("redis " + dir_ + " " + std::to_string(port_)); }

static int redis_pid(const std::string& dir) {
  auto text = read_file(dir + "/redis.pid");
  if (text.empty()) throw std::runtime_error("redis pid file missing in " + dir);
  return std::stoi(text);
}
void PrivateRedis::pause() { ::kill(redis_pid(dir_), SIGSTOP); }
void PrivateRedis::resume() {
  if (std::filesystem::exists(dir_ + "/redis.pid")) ::kill(redis_pid(dir_), SIGCONT);
}

PrivatePostgres::PrivatePostgres(bool start_now)
    : dir_(make_temp_dir("pg") + "/data"), port_(free_port()) {
  if (start_now) start();
}

PrivatePostgres::~PrivatePostgres() {
  try {
    stop();
  } catch (...) {
  }
  std::filesystem::remove_all(std::filesystem::path(dir_).parent_path());
}

void PrivatePostgres::start() { script("postgres " + dir_ + " " + std::to_string(port_)); }
void PrivatePostgres::stop() { script("stop-postgres " + dir_); }

}  // namespace infergate::test
