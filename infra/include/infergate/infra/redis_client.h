// Redis client on hiredis' async API, driven by Asio: no blocking call on an io thread. All
// hiredis calls happen on the client's strand. Commands issued while others are in flight share
// the connection (pipelining); pipeline() sends a batch in one write. The client connects in the
// background and reconnects with exponential backoff (reconnect_min..reconnect_max, jittered).
// While disconnected, commands fail at once with RedisUnavailable (callers decide: fail closed
// or open); a command that misses its deadline fails with RedisTimeout, and a connection that
// stops answering is dropped and reopened. Thread-safe.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <functional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "infergate/infra/async_op.h"
#include "infergate/infra/config.h"
#include "infergate/infra/metrics.h"

namespace infergate::infra {

struct RedisReply {
  enum class Type { nil, integer, string, status, error, array };
  Type type = Type::nil;
  std::int64_t integer = 0;
  std::string str;  // string, status and error replies
  std::vector<RedisReply> elements;

  bool is_error() const { return type == Type::error; }
};

class RedisUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
class RedisTimeout : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class RedisClient {
 public:
  // `name` starts its log lines ("redis up", "redis subscriber down").
  RedisClient(asio::io_context& io, RedisConfig cfg, MetricsRegistry& metrics,
              std::string name = "redis");
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Begins connecting in the background.
  void start();
  // Closes the connection and stops reconnecting; pending commands fail. Asynchronous: it runs
  // on the client's strand. The destructor closes synchronously; destroy the client from a thread
  // that is not running the io_context, or after the io_context has stopped.
  void stop();

  // Sends one command; a Redis error reply is returned as a reply of type error, not thrown.
  // Throws RedisUnavailable or RedisTimeout.
  asio::awaitable<RedisReply> command(const std::vector<std::string>& args,
                                      std::optional<Millis> timeout = std::nullopt);

  // Sends several commands in one write and returns their replies in order.
  asio::awaitable<std::vector<RedisReply>> pipeline(
      const std::vector<std::vector<std::string>>& cmds,
      std::optional<Millis> timeout = std::nullopt);

  using MessageHandler =
      std::function<void(const std::string& channel, const std::string& payload)>;
  // Makes this client a subscriber; call before start(). After every (re)connect it subscribes
  // to `channels`; on_subscribed runs when the server has confirmed them all (messages published
  // while disconnected are lost, so that is where callers resynchronize); on_message runs for
  // each message. Both run on the client's strand. A subscriber sends no other commands.
  void subscribe(std::vector<std::string> channels, MessageHandler on_message,
                 std::function<void()> on_subscribed);

  bool connected() const { return connected_.load(); }
  std::string last_error() const;

  struct Conn;  // the live hiredis connection (implementation detail)

 private:
  friend struct Conn;
  void do_connect();
  void close_now();  // strand only (or no io threads left)
  void schedule_reconnect();
  void on_connected(Conn& c, bool ok, const std::string& err);
  void on_ready(Conn& c);
  void on_disconnected(Conn& c, const std::string& err);
  void on_command_timeout(const std::shared_ptr<Conn>& c, std::uint64_t replies_at_send);
  void mark_down(const std::string& why);
  void send(std::vector<std::vector<std::string>> cmds,
            std::shared_ptr<Completion<std::vector<RedisReply>>> done);

  std::vector<std::string> sub_channels_;
  MessageHandler on_message_;
  std::function<void()> on_subscribed_;

  std::string name_;
  asio::io_context& io_;
  asio::strand<asio::io_context::executor_type> strand_;
  RedisConfig cfg_;
  std::shared_ptr<Conn> conn_;  // strand only
  asio::steady_timer reconnect_timer_;
  asio::steady_timer connect_timer_;
  Millis backoff_;
  bool stopping_ = false;  // strand only
  bool reconnect_pending_ = false;
  std::atomic<bool> connected_{false};
  std::atomic<int> state_{0};  // 0 unknown, 1 up, 2 down
  mutable std::mutex err_mu_;
  std::string last_error_;
  Counter* cmd_ok_;
  Counter* cmd_unavailable_;
  Counter* cmd_timeout_;
  Counter* reconnects_;
  MetricsRegistry& metrics_;
  std::uint64_t up_gauge_ = 0;
};

}  // namespace infergate::infra

namespace infergate::infra {

// Blocking PUBLISH on a short-lived connection, for command-line tools (never on an io thread).
// Returns false and sets *error when Redis cannot be reached within the connect timeout.
bool redis_publish_blocking(const RedisConfig& cfg, const std::string& channel,
                            const std::string& message, std::string* error);

}  // namespace infergate::infra
