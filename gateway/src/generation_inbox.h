// Carries engine events (produced on the engine thread) to the request's coroutine (on the
// connection's strand): push() queues and wakes; next() waits for an event or an interrupt
// (client gone). Never blocks the engine: push takes a short lock and posts a wake-up.
// A consumer that only needs the whole result (a non-streaming response) is woken for the
// last event alone: its tokens wait in the queue, so a long generation does not cost a
// thread hand-off per token.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <deque>
#include <memory>
#include <mutex>
#include <optional>

#include "infergate/engine/generation.h"

namespace infergate::gateway {

class GenerationInbox : public std::enable_shared_from_this<GenerationInbox> {
 public:
  GenerationInbox(const boost::asio::any_io_executor& ex, bool wake_for_every_event)
      : timer_(ex, boost::asio::steady_timer::time_point::max()), every_(wake_for_every_event) {}

  // Engine thread (the journal's for a non-streaming request's last event, pushed once its
  // usage record is durable).
  void push(const engine::GenerationEvent& ev) {
    {
      std::lock_guard lock(mu_);
      events_.push_back(ev);
    }
    if (!every_ && !ev.finished) return;
    boost::asio::post(timer_.get_executor(), [self = shared_from_this()] { self->timer_.cancel(); });
  }
  // Connection strand: the client went away.
  void interrupt() {
    interrupted_ = true;
    timer_.cancel();
  }
  bool interrupted() const { return interrupted_; }

  // The next event, or nullopt when interrupted (call again after cancelling the sequence: its
  // finished event still comes).
  boost::asio::awaitable<std::optional<engine::GenerationEvent>> next() {
    for (;;) {
      {
        std::lock_guard lock(mu_);
        if (!events_.empty()) {
          engine::GenerationEvent ev = std::move(events_.front());
          events_.pop_front();
          co_return ev;
        }
      }
      if (interrupted_ && !interrupt_seen_) {
        interrupt_seen_ = true;
        co_return std::nullopt;
      }
      timer_.expires_at(boost::asio::steady_timer::time_point::max());
      auto token = boost::asio::as_tuple(boost::asio::use_awaitable);
      auto [ec] = co_await timer_.async_wait(token);
      (void)ec;
    }
  }

 private:
  std::mutex mu_;
  std::deque<engine::GenerationEvent> events_;
  boost::asio::steady_timer timer_;
  bool interrupted_ = false, interrupt_seen_ = false;
  const bool every_;
};

}  // namespace infergate::gateway
