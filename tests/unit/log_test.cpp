// Structured logging: one JSON object per line, level filtering, and lines that never interleave.
#include "infergate/infra/log.h"

#include <cstdio>
#include <fcntl.h>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <gtest/gtest.h>

namespace infergate::infra {
namespace {

// Points the log at a fresh temporary file; restores stderr and level info afterwards.
class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/infergate_log_test_XXXXXX";
    fd_ = ::mkstemp(tmpl);
    ASSERT_GE(fd_, 0);
    path_ = tmpl;
    ::close(fd_);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND);
    ASSERT_GE(fd_, 0);
    log::set_fd(fd_);
    log::set_level(log::Level::debug);
  }

  void TearDown() override {
    log::set_fd(2);
    log::set_level(log::Level::info);
    if (fd_ >= 0) ::close(fd_);
    std::remove(path_.c_str());
  }

  std::vector<std::string> lines() const {
    std::ifstream in(path_);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);)
      out.push_back(line);
    return out;
  }

  std::string contents() const {
    std::ifstream in(path_);
    std::stringstream buf;
    buf << in.rdbuf();
    return buf.str();
  }

  std::vector<boost::json::object> objects() const {
    std::vector<boost::json::object> out;
    for (const auto& line : lines())
      out.push_back(boost::json::parse(line).as_object());
    return out;
  }

  int fd_ = -1;
  std::string path_;
};

TEST_F(LogTest, OneJsonObjectPerLine) {
  log::info("request done", {{"request_id", "req_0123"}, {"status", 200}, {"ok", true}});
  log::warn("slow");
  const std::string text = contents();
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  auto objs = objects();
  ASSERT_EQ(objs.size(), 2u);

  const std::regex ts("^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z$");
  EXPECT_TRUE(std::regex_match(std::string(objs[0].at("ts").as_string()), ts)) << objs[0].at("ts");
  EXPECT_EQ(objs[0].at("level"), "info");
  EXPECT_EQ(objs[0].at("msg"), "request done");
  EXPECT_EQ(objs[0].at("request_id"), "req_0123");
  EXPECT_EQ(objs[0].at("status"), 200);
  EXPECT_EQ(objs[0].at("ok"), true);
  EXPECT_EQ(objs[0].size(), 6u);

  EXPECT_EQ(objs[1].at("level"), "warn");
  EXPECT_EQ(objs[1].at("msg"), "slow");
  EXPECT_EQ(objs[1].size(), 3u);
}

TEST_F(LogTest, TimestampLevelAndMessageComeFirst) {
  log::error("boom", {{"a", 1}});
  auto l = lines();
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].rfind("{\"ts\":\"", 0), 0u) << l[0];
  EXPECT_NE(l[0].find("\",\"level\":\"error\",\"msg\":\"boom\",\"a\":1}"), std::string::npos)
      << l[0];
}

TEST_F(LogTest, EveryLevelHasItsName) {
  log::debug("d");
  log::info("i");
  log::warn("w");
  log::error("e");
  log::write(log::Level::warn, "direct");
  auto objs = objects();
  ASSERT_EQ(objs.size(), 5u);
  EXPECT_EQ(objs[0].at("level"), "debug");
  EXPECT_EQ(objs[1].at("level"), "info");
  EXPECT_EQ(objs[2].at("level"), "warn");
  EXPECT_EQ(objs[3].at("level"), "error");
  EXPECT_EQ(objs[4].at("level"), "warn");
  EXPECT_EQ(objs[4].at("msg"), "direct");
}

TEST_F(LogTest, SpecialCharactersStayOnOneLine) {
  const std::string msg = "quote \" backslash \\ newline \n tab \t end";
  log::info(msg, {{"path", "/v1/x\r\n"}});
  auto l = lines();
  ASSERT_EQ(l.size(), 1u);
  auto obj = boost::json::parse(l[0]).as_object();
  EXPECT_EQ(obj.at("msg"), msg.c_str());
  EXPECT_EQ(obj.at("path"), "/v1/x\r\n");
}

TEST_F(LogTest, LevelFiltering) {
  log::set_level(log::Level::warn);
  EXPECT_FALSE(log::enabled(log::Level::debug));
  EXPECT_FALSE(log::enabled(log::Level::info));
  EXPECT_TRUE(log::enabled(log::Level::warn));
  EXPECT_TRUE(log::enabled(log::Level::error));
  log::debug("dropped debug");
  log::info("dropped info");
  log::warn("kept warn");
  log::error("kept error");
  auto objs = objects();
  ASSERT_EQ(objs.size(), 2u);
  EXPECT_EQ(objs[0].at("msg"), "kept warn");
  EXPECT_EQ(objs[1].at("msg"), "kept error");

  log::set_level(log::Level::error);
  log::warn("dropped warn");
  log::error("kept error 2");
  objs = objects();
  ASSERT_EQ(objs.size(), 3u);
  EXPECT_EQ(objs[2].at("msg"), "kept error 2");

  log::set_level(log::Level::info);
  EXPECT_FALSE(log::enabled(log::Level::debug));
  EXPECT_TRUE(log::enabled(log::Level::info));
}

TEST_F(LogTest, ParseLevel) {
  EXPECT_EQ(log::parse_level("debug"), log::Level::debug);
  EXPECT_EQ(log::parse_level("info"), log::Level::info);
  EXPECT_EQ(log::parse_level("warn"), log::Level::warn);
  EXPECT_EQ(log::parse_level("error"), log::Level::error);
  EXPECT_EQ(log::parse_level("WARN"), log::Level::info);
  EXPECT_EQ(log::parse_level("warning"), log::Level::info);
  EXPECT_EQ(log::parse_level(""), log::Level::info);
}

TEST_F(LogTest, ConcurrentLinesNeverInterleave) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      const std::string padding(200, static_cast<char>('a' + t));
      for (int i = 0; i < kPerThread; ++i)
        log::info("line", {{"t", t}, {"i", i}, {"pad", padding}});
    });
  }
  for (auto& th : threads)
    th.join();
  auto l = lines();
  ASSERT_EQ(l.size(), std::size_t{kThreads} * kPerThread);
  std::vector<int> next(kThreads, 0);
  for (const auto& line : l) {
    auto obj = boost::json::parse(line).as_object();
    auto t = static_cast<int>(obj.at("t").as_int64());
    ASSERT_GE(t, 0);
    ASSERT_LT(t, kThreads);
    EXPECT_EQ(obj.at("i").as_int64(), next[t]++);  // each thread's lines in its order
    EXPECT_EQ(obj.at("pad").as_string().size(), 200u);
  }
}

}  // namespace
}  // namespace infergate::infra
