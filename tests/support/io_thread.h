// An io_context running on background threads, and a way to run a coroutine on it from a test
// and wait for its result (exceptions propagate to the test).
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <thread>
#include <vector>

namespace infergate::test {

class IoThread {
 public:
  explicit IoThread(int threads = 1) : io_(threads), guard_(io_.get_executor()) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~IoThread() { stop(); }
  void stop() {
    guard_.reset();
    io_.stop();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  boost::asio::io_context& io() { return io_; }

  template <class T>
  T run(boost::asio::awaitable<T> aw) {
    return boost::asio::co_spawn(io_, std::move(aw), boost::asio::use_future).get();
  }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::vector<std::thread> threads_;
};

}  // namespace infergate::test
