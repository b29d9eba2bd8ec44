// The HTTP/1.1 server: one coroutine per connection on its own strand, keep-alive, a deadline
// on every read and write, limits on header and body size, and a graceful drain: stop accepting,
// close idle keep-alive connections, let requests in progress finish, then close the rest.
// Every response carries x-request-id; each request is counted and timed in /metrics by route and
// status, and logged as one JSON line. Thread-safe.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "infergate/gateway/router.h"
#include "infergate/infra/config.h"
#include "infergate/infra/metrics.h"

namespace boost::asio::ssl {
class context;
}

namespace infergate::gateway {

class SessionBase;
template <class Stream>
class Session;

class HttpServer {
 public:
  // Connections are spread over `connection_contexts` in turn (at least one; `io` may be one of
  // them), each of which exactly one thread runs: a connection's handlers then run in order on
  // that thread without a strand, and its state stays in one core's cache. The acceptors run on
  // strands of `io`.
  HttpServer(boost::asio::io_context& io, std::vector<boost::asio::io_context*> connection_contexts,
             infra::ServerConfig cfg, const Router& router, infra::MetricsRegistry& metrics);
  ~HttpServer();

  // Binds and listens (throws std::system_error naming the address on failure; with TLS on, a
  // std::runtime_error naming an unreadable certificate or key), then accepts in the background.
  void start();
  std::uint16_t port() const { return port_; }
  std::uint16_t tls_port() const { return tls_port_; }  // 0 when TLS is off

  // Stops accepting and closes idle connections; requests in progress finish, and their
  // responses say Connection: close.
  void begin_drain();
  // Closes every connection now (after the grace period).
  void close_all();
  std::size_t active_connections() const;
  bool draining() const { return draining_.load(); }

 private:
  template <class Stream>
  friend class Session;
  boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acceptor, bool tls);
  void register_session(std::uint64_t id, const std::shared_ptr<SessionBase>& s);
  void unregister_session(std::uint64_t id);

  // The executor a new connection runs on.
  boost::asio::any_io_executor next_connection_executor();

  boost::asio::io_context& io_;
  const std::vector<boost::asio::io_context*> contexts_;
  std::atomic<std::size_t> next_context_{0};              // both accept loops take turns
  infra::ServerConfig cfg_;
  const Router& router_;
  infra::MetricsRegistry& metrics_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::ip::tcp::acceptor tls_acceptor_;
  std::unique_ptr<boost::asio::ssl::context> tls_;  // set when server.tls_enabled
  std::uint16_t port_ = 0;
  std::uint16_t tls_port_ = 0;
  std::atomic<bool> draining_{false};
  mutable std::mutex mu_;
  std::map<std::uint64_t, std::weak_ptr<SessionBase>> sessions_;
  std::uint64_t next_id_ = 0;
  infra::Family<infra::Counter>* requests_;
  infra::Family<infra::Histogram>* latency_;
  infra::Gauge* connections_;
};

}  // namespace infergate::gateway
