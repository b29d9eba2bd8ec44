// Real Postgres and Redis for integration and e2e tests. The shared pair is started once per
// ctest run by the `services` fixture (tests/CMakeLists.txt); a test binary run by hand starts
// its own pair and stops it at exit. Tests that stop or pause a server get a private one.
#pragma once

#include <chrono>
#include <string>

#include "infergate/infra/config.h"
#include "infergate/infra/redis_client.h"

namespace infergate::test {

struct SharedServices {
  int pg_port = 0;
  int redis_port = 0;
};
const SharedServices& shared_services();

// A new, empty database on the shared Postgres; its config points at it.
infra::PostgresConfig fresh_database(const std::string& prefix);
infra::PostgresConfig postgres_config(int port, const std::string& database = "infergate");
infra::RedisConfig redis_config(int port);

// A unique prefix for Redis keys, so tests sharing one Redis never collide.
std::string unique_name(const std::string& prefix);

// Waits until the client has a live connection; false after `limit`.
bool wait_connected(const infra::RedisClient& redis,
                    std::chrono::milliseconds limit = std::chrono::seconds(5));

int free_port();
std::string test_services_script();
std::string source_dir();
std::string infergate_binary();

class PrivateRedis {
 public:
  PrivateRedis();  // started
  ~PrivateRedis();
  int port() const { return port_; }
  void stop();
  void start();   // again, on the same port
  void pause();   // SIGSTOP: connections stay open but nothing answers
  void resume();  // SIGCONT

 private:
  std::string dir_;
  int port_ = 0;
};

class PrivatePostgres {
 public:
  explicit PrivatePostgres(bool start_now = true);
  ~PrivatePostgres();
  int port() const { return port_; }
  void start();
  void stop();

 private:
  std::string dir_;
  int port_ = 0;
};

}  // namespace infergate::test
