// RedisClient against real Redis servers: replies, pipelining, concurrency, deadlines, outages,
// a stalled server, and reconnecting by itself.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>

#include "infergate/infra/redis_client.h"
#include "support/io_thread.h"
#include "support/services.h"

namespace infergate {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
using Args = std::vector<std::string>;

// Runs one command from a test thread.
infra::RedisReply cmd(test::IoThread& io, infra::RedisClient& r, Args args,
                      std::optional<infra::Millis> timeout = std::nullopt) {
  return io.run([&r, args = std::move(args), timeout]() mutable -> asio::awaitable<infra::RedisReply> {
    infra::RedisReply reply = co_await r.command(std::move(args), timeout);
    co_return reply;
  }());
}

class RedisClientTest : public ::testing::Test {
 protected:
  test::IoThread io{2};
  infra::MetricsRegistry metrics;
  infra::RedisClient redis{io.io(), test::redis_config(test::shared_services().redis_port), metrics};
  std::string key = test::unique_name("ig:test");

  void SetUp() override {
    redis.start();
    ASSERT_TRUE(test::wait_connected(redis));
  }
  void TearDown() override {
    redis.stop();
    std::this_thread::sleep_for(20ms);
  }
};

TEST_F(RedisClientTest, RepliesOfEveryType) {
  auto ok = cmd(io, redis, {"SET", key, "hello world"});
  EXPECT_EQ(ok.type, infra::RedisReply::Type::status);
  EXPECT_EQ(ok.str, "OK");
  auto s = cmd(io, redis, {"GET", key});
  EXPECT_EQ(s.type, infra::RedisReply::Type::string);
  EXPECT_EQ(s.str, "hello world");
  auto n = cmd(io, redis, {"INCRBY", key + ":n", "41"});
  EXPECT_EQ(n.type, infra::RedisReply::Type::integer);
  EXPECT_EQ(n.integer, 41);
  auto nil = cmd(io, redis, {"GET", key + ":missing"});
  EXPECT_EQ(nil.type, infra::RedisReply::Type::nil);
  cmd(io, redis, {"RPUSH", key + ":l", "a", "b"});
  auto arr = cmd(io, redis, {"LRANGE", key + ":l", "0", "-1"});
  ASSERT_EQ(arr.type, infra::RedisReply::Type::array);
  ASSERT_EQ(arr.elements.size(), 2u);
  EXPECT_EQ(arr.elements[1].str, "b");
  // Binary-safe arguments.
  std::string bin("a\0b\r\nc", 6);
  cmd(io, redis, {"SET", key + ":bin", bin});
  EXPECT_EQ(cmd(io, redis, {"GET", key + ":bin"}).str, bin);
}

TEST_F(RedisClientTest, ErrorRepliesAreValuesNotExceptions) {
  cmd(io, redis, {"SET", key, "text"});
  auto e = cmd(io, redis, {"INCR", key});
  EXPECT_TRUE(e.is_error());
  EXPECT_NE(e.str.find("not an integer"), std::string::npos) << e.str;
  auto unknown = cmd(io, redis, {"NOSUCHCOMMAND"});
  EXPECT_TRUE(unknown.is_error());
}

TEST_F(RedisClientTest, PipelineReturnsRepliesInOrder) {
  std::vector<Args> cmds;
  for (int i = 0; i < 200; ++i) cmds.push_back({"INCR", key});
  auto replies = io.run([&]() -> asio::awaitable<std::vector<infra::RedisReply>> {
    auto r = co_await redis.pipeline(cmds);
    co_return r;
  }());
  ASSERT_EQ(replies.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(replies[i].integer, i + 1);
}

TEST_F(RedisClientTest, ManyConcurrentCommandsShareTheConnection) {
  constexpr int kN = 2000;
  std::atomic<int> done{0}, failed{0};
  for (int i = 0; i < kN; ++i) {
    asio::co_spawn(
        io.io(),
        [&]() -> asio::awaitable<void> {
          try {
            std::vector<std::string> args{"INCR", key};
            auto r = co_await redis.command(std::move(args), 5s);
            if (r.type != infra::RedisReply::Type::integer) ++failed;
          } catch (...) {
            ++failed;
          }
          ++done;
        },
        asio::detached);
  }
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (done < kN && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(done.load(), kN);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(cmd(io, redis, {"GET", key}).str, std::to_string(kN));
}

TEST(RedisClientOutage, UnavailableFailsFastThenReconnectsByItself) {
  test::PrivateRedis server;
  test::IoThread io{1};
  infra::MetricsRegistry metrics;
  infra::RedisClient redis(io.io(), test::redis_config(server.port()), metrics);
  redis.start();
  ASSERT_TRUE(test::wait_connected(redis));
  EXPECT_EQ(cmd(io, redis, {"PING"}).str, "PONG");

  server.stop();
  auto deadline = std::chrono::steady_clock::now() + 3s;
  while (redis.connected() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(redis.connected());
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(cmd(io, redis, {"PING"}), infra::RedisUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 100ms);  // no waiting while down
  EXPECT_FALSE(redis.last_error().empty());

  server.start();
  ASSERT_TRUE(test::wait_connected(redis, 5s));
  EXPECT_EQ(cmd(io, redis, {"PING"}).str, "PONG");
  redis.stop();
}

TEST(RedisClientOutage, CommandDeadlineAndALateReplyIsIgnored) {
  test::PrivateRedis server;  // DEBUG SLEEP blocks the whole server: not the shared one
  test::IoThread io{1};
  infra::MetricsRegistry metrics;
  infra::RedisClient redis(io.io(), test::redis_config(server.port()), metrics);
  redis.start();
  ASSERT_TRUE(test::wait_connected(redis));
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(cmd(io, redis, {"DEBUG", "SLEEP", "0.6"}, 100ms), infra::RedisTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);
  std::this_thread::sleep_for(700ms);
  // The late reply to DEBUG SLEEP went to nobody; the next reply goes to the next command.
  cmd(io, redis, {"SET", "k", "v"});
  EXPECT_EQ(cmd(io, redis, {"GET", "k"}).str, "v");
  EXPECT_NE(metrics.render().find("infergate_redis_commands_total{outcome=\"timeout\"} 1"),
            std::string::npos);
  redis.stop();
}

TEST(RedisClientOutage, StalledServerTimesOutAndTheConnectionIsReplaced) {
  test::PrivateRedis server;
  test::IoThread io{1};
  infra::MetricsRegistry metrics;
  auto cfg = test::redis_config(server.port());
  cfg.command_timeout = 100ms;
  infra::RedisClient redis(io.io(), cfg, metrics);
  redis.start();
  ASSERT_TRUE(test::wait_connected(redis));

  server.pause();  // TCP stays up, nothing answers
  EXPECT_THROW(cmd(io, redis, {"PING"}), infra::RedisTimeout);
  // The watchdog drops the silent connection; reconnecting fails while the server is stopped.
  auto deadline = std::chrono::steady_clock::now() + 3s;
  while (redis.connected() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(redis.connected());

  server.resume();
  ASSERT_TRUE(test::wait_connected(redis, 5s));
  EXPECT_EQ(cmd(io, redis, {"PING"}).str, "PONG");
  redis.stop();
}

TEST(RedisClientOutage, StartsWithServerDownAndConnectsWhenItAppears) {
  test::PrivateRedis server;
  server.stop();
  test::IoThread io{1};
  infra::MetricsRegistry metrics;
  infra::RedisClient redis(io.io(), test::redis_config(server.port()), metrics);
  redis.start();
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(redis.connected());
  EXPECT_THROW(cmd(io, redis, {"PING"}), infra::RedisUnavailable);
  server.start();
  ASSERT_TRUE(test::wait_connected(redis, 5s));
  EXPECT_EQ(cmd(io, redis, {"PING"}).str, "PONG");
  EXPECT_NE(metrics.render().find("infergate_redis_up 1"), std::string::npos);
  redis.stop();
}

}  // namespace
}  // namespace infergate
