// Bridges work that completes elsewhere (a worker thread, a hiredis callback) back into a
// coroutine, with a deadline: whichever comes first, the result or the deadline, resumes the
// awaiting coroutine on its own executor; the loser is ignored. Used by PgPool and RedisClient.
#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

namespace infergate::infra {

namespace asio = boost::asio;

// The producer's side of a pending operation. complete() may be called from any thread, any
// number of times; only the first call (or the deadline) counts. Returns true if it counted.
template <class T>
class Completion {
 public:
  virtual ~Completion() = default;
  virtual bool complete(std::exception_ptr error, std::optional<T> value) = 0;
  virtual bool done() const = 0;
};

namespace detail {

template <class T, class Handler>
class DeadlineOp final : public Completion<T>,
                         public std::enable_shared_from_this<DeadlineOp<T, Handler>> {
 public:
  DeadlineOp(Handler h, const asio::any_io_executor& ex) : handler_(std::move(h)), timer_(ex) {}

  void arm(std::chrono::steady_clock::duration timeout,
           std::function<std::exception_ptr()> on_timeout) {
    timer_.expires_after(timeout);
    timer_.async_wait([self = this->shared_from_this(), on_timeout = std::move(on_timeout)](
                          const boost::system::error_code& ec) {
      if (!ec) self->complete(on_timeout(), std::nullopt);
    });
  }

  bool complete(std::exception_ptr error, std::optional<T> value) override {
    std::optional<Handler> h;
    {
      std::lock_guard lock(mu_);
      if (!handler_) return false;
      h.emplace(std::move(*handler_));
      handler_.reset();
    }
    auto ex = asio::get_associated_executor(*h, timer_.get_executor());
    // The timer belongs to the awaiting side's executor; cancel it there.
    asio::post(timer_.get_executor(), [self = this->shared_from_this()] { self->timer_.cancel(); });
    asio::post(ex, [h = std::move(*h), error, value = std::move(value)]() mutable {
      std::move(h)(error, std::move(value));
    });
    return true;
  }

  bool done() const override {
    std::lock_guard lock(mu_);
    return !handler_;
  }

 private:
  mutable std::mutex mu_;
  std::optional<Handler> handler_;
  asio::steady_timer timer_;
};

}  // namespace detail

// Starts an operation by calling start(completion) and waits for it, at most `timeout`; on
// timeout the coroutine resumes with the exception made by on_timeout(). Errors the producer
// passes are rethrown in the coroutine.
//
// A rule for every co_await in this code base (GCC 12 coroutine bug): no temporary with a
// destructor inside a co_await expression — no lambda with captures, no std::string built in
// the argument list. Name it first (`const auto job = [..]{..}; co_await pool.run(job);`).
// GCC 12 destroys such temporaries twice, which corrupts the heap. Coroutine parameters with
// destructors are taken by const reference for the same reason.
template <class T>
asio::awaitable<T> await_completion(
    std::chrono::steady_clock::duration timeout,
    const std::function<void(std::shared_ptr<Completion<T>>)>& start,
    const std::function<std::exception_ptr()>& on_timeout) {
  auto ex = co_await asio::this_coro::executor;
  std::optional<T> result = co_await asio::async_initiate<
      decltype(asio::use_awaitable), void(std::exception_ptr, std::optional<T>)>(
      [&ex, &start, &on_timeout, timeout](auto handler) {
        using Op = detail::DeadlineOp<T, decltype(handler)>;
        auto op = std::make_shared<Op>(std::move(handler), ex);
        op->arm(timeout, on_timeout);
        start(op);
      },
      asio::use_awaitable);
  T value = std::move(*result);
  co_return value;
}

}  // namespace infergate::infra
