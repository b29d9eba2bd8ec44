#include "infergate/gateway/server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <stdexcept>

#include "infergate/infra/ids.h"
#include "infergate/infra/log.h"

namespace infergate::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

namespace {
// A complete (not chunked) response as it goes on the wire: status line, fields, blank line,
// body (left out for HEAD, whose Content-Length is the GET's).
std::string serialize_response(const Response& res, bool head) {
  const std::string_view reason = res.reason().empty() ? http::obsolete_reason(res.result()) : res.reason();
  std::string out;
  out.reserve(160 + (head ? 0 : res.body().size()));
  out += res.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(res.result_int());
  out += ' ';
  out += reason;
  out += "\r\n";
  for (const auto& f : res) {
    out += f.name_string();
    out += ": ";
    out += f.value();
    out += "\r\n";
  }
  out += "\r\n";
  if (!head) out += res.body();
  return out;
}
}  // namespace

// What the server's drain needs of a connection, whatever its stream (plain or TLS).
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual asio::any_io_executor executor() = 0;
  // Run on the session's executor (a context that one thread runs): wake an idle connection so
  // it can close during a drain; close.
  virtual void cancel_if_idle() = 0;
  virtual void close() = 0;
};

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(HttpServer& server, tcp::socket socket, std::uint64_t id) requires std::is_same_v<Stream, PlainStream>
      : server_(server), stream_(std::move(socket)), id_(id) {}
  Session(HttpServer& server, tcp::socket socket, asio::ssl::context& tls, std::uint64_t id)
    requires std::is_same_v<Stream, TlsStream>
      : server_(server), stream_(std::move(socket), tls), id_(id) {}

  asio::any_io_executor executor() override { return stream_.get_executor(); }

  void cancel_if_idle() override {
    if (idle_) lowest().socket().cancel();
  }
  void close() override {
    // A request still running here (its connection cut at the shutdown grace deadline) stops as
    // if its client had gone: its engine work stops at the next step, and it is metered as
    // cancelled with what it used instead of running on to max_tokens after the deadline.
    if (active_stream_) active_stream_->client_gone();
    boost::system::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().socket().close(ec);
  }

  // `self` keeps the session alive: the coroutine starts later, on the connection's thread,
  // when the accept loop has let go of it.
  asio::awaitable<void> run(std::shared_ptr<Session> self) {
    const auto& cfg = server_.cfg_;
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      // The TLS handshake gets the read deadline; a client that fails it is just closed.
      lowest().expires_after(cfg.read_timeout);
      auto [hec] = co_await stream_.async_handshake(asio::ssl::stream_base::server, kTuple);
      if (hec) {
        infra::log::debug("tls handshake failed", {{"error", hec.message()}});
        close();
        co_return;
      }
    }
    beast::flat_buffer buffer;
    for (;;) {
      // Idle: no byte of the next request yet. This is the only state a drain interrupts.
      if (buffer.size() == 0) {
        idle_ = true;
        if (server_.draining()) break;
        lowest().expires_after(cfg.idle_timeout);
        auto [ec, n] = co_await stream_.async_read_some(buffer.prepare(8192), kTuple);
        idle_ = false;
        if (ec) break;  // closed by the peer, idle timeout, or drain
        buffer.commit(n);
      }

      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(cfg.max_header_bytes));
      parser.body_limit(cfg.max_body_bytes);
      lowest().expires_never();
      // A request almost always arrives whole in the first read: parse what is buffered here,
      // and only when more is needed read the rest under the read deadline (its timer, and an
      // asynchronous read that would complete at once, cost more than the parse). The parser
      // stops at the end of its message: a pipelined request's bytes stay in the buffer.
      boost::system::error_code rec;
      parser.eager(true);
      while (buffer.size() > 0 && !parser.is_done()) {
        const std::size_t used = parser.put(buffer.data(), rec);
        buffer.consume(used);
        if (rec == http::error::need_more) rec = {};
        if (rec || used == 0) break;
      }
      if (!rec && !parser.is_done()) {
        // The read deadline cancels the read instead of closing the socket (as the stream's own
        // timeout would), so that the client still gets a 408. Its handler may already be queued
        // when the read completes: it checks `done` (both run on this connection's executor, one
        // at a time) and owns what it touches.
        struct ReadState {
          bool done = false, timed_out = false;
        };
        auto state = std::make_shared<ReadState>();
        asio::steady_timer deadline(stream_.get_executor(), cfg.read_timeout);
        deadline.async_wait([self, state](const boost::system::error_code& ec) {
          if (ec || state->done) return;
          state->timed_out = true;
          self->lowest().socket().cancel();
        });
        auto [ec, rn] = co_await http::async_read(stream_, buffer, parser, kTuple);
        (void)rn;
        rec = ec;
        state->done = true;
        deadline.cancel();
        if (state->timed_out && rec) rec = beast::error::timeout;
      }
      const auto start = std::chrono::steady_clock::now();
      RequestContext ctx;
      ctx.request_id = infra::new_request_id();
      if (rec) {
        if (rec == http::error::end_of_stream || rec == asio::error::operation_aborted) break;
        auto res = parse_error_response(rec, parser.is_header_done() ? parser.get().version() : 11);
        if (!res) break;  // the connection itself failed: nothing to answer
        res->keep_alive(false);
        ctx.route = "invalid";
        const std::string unknown = "-";
        co_await write(*res, ctx, unknown, unknown, start);
        co_await linger_close();
        co_return;
      }

      Request req = parser.release();
      ResponseStreamImpl stream(*this, req.keep_alive(), ctx.request_id);
      ctx.stream = &stream;
      active_stream_ = &stream;
      struct Unset {  // when this request's turn ends, however it ends
        ResponseStreamImpl*& p;
        ~Unset() { p = nullptr; }
      } unset{active_stream_};
      Response res = co_await dispatch(req, ctx);
      stream.stop_watch();  // from here on a close finds nothing to tell
      if (stream.started()) {  // the handler sent its own response, in chunks
        const std::string method(req.method_string()), path(ctx.path);
        record(stream.status(), ctx, method, path, start, stream.error());
        if (!stream.complete() || !stream.keep_alive() || server_.draining()) break;
        continue;
      }
      const bool keep_alive = req.keep_alive() && !server_.draining();
      res.keep_alive(keep_alive);
      if (req.method() == http::verb::head) {
        auto len = res.body().size();
        res.body().clear();
        res.content_length(len);
      }
      const std::string method(req.method_string()), path(ctx.path);
      const bool head = req.method() == http::verb::head;
      bool ok = co_await write(res, ctx, method, path, start, head);
      if (!ok || !keep_alive) break;
    }
    close();
  }

 private:
  // A chunked response written by the handler itself (server-sent events), and the watch for
  // a client that goes away meanwhile.
  class ResponseStreamImpl final : public ResponseStream {
   public:
    ResponseStreamImpl(Session& s, bool keep_alive, std::string request_id)
        : s_(s), keep_alive_(keep_alive), request_id_(std::move(request_id)) {}
    asio::awaitable<bool> start(Response& header) override {
      status_ = header.result_int();
      header.set("x-request-id", request_id_);
      header.set(http::field::server, "infergate");
      keep_alive_ = keep_alive_ && !s_.server_.draining();
      header.keep_alive(keep_alive_);
      header.chunked(true);
      http::response<http::empty_body> head(header.result(), header.version());
      for (const auto& f : header) head.set(f.name_string(), f.value());
      head.chunked(true);
      head.keep_alive(keep_alive_);
      started_ = true;
      http::response_serializer<http::empty_body> sr(head);
      s_.lowest().expires_after(s_.server_.cfg_.write_timeout);
      auto [ec, n] = co_await http::async_write_header(s_.stream_, sr, kTuple);
      (void)n;
      co_return ok(ec);
    }
    asio::awaitable<bool> write(std::string_view data) override {
      if (failed_ || data.empty()) co_return !failed_;
      s_.lowest().expires_after(s_.server_.cfg_.write_timeout);
      auto [ec, n] = co_await asio::async_write(s_.stream_, http::make_chunk(asio::buffer(data.data(), data.size())), kTuple);
      (void)n;
      co_return ok(ec);
    }
    asio::awaitable<bool> finish() override {
      if (failed_) co_return false;
      s_.lowest().expires_after(s_.server_.cfg_.write_timeout);
      auto [ec, n] = co_await asio::async_write(s_.stream_, http::make_chunk_last(), kTuple);
      (void)n;
      complete_ = !ec;
      co_return ok(ec);
    }
    void watch_disconnect(std::function<void()> on_gone) override {
      if (watch_) return;
      watch_ = std::make_shared<Watch>();
      watch_->on_gone = std::move(on_gone);
      arm();
    }
    // The watch ends; its peek (if still pending) is left in place: the next request's read
    // queues behind it and both complete when the client's next bytes arrive, which costs less
    // than cancelling the peek and starting the read afresh.
    void stop_watch() {
      if (watch_) watch_->active = false;
    }
    // The client is gone (or its connection was cut): the watcher is told once.
    void client_gone() {
      if (watch_ && watch_->active) {
        watch_->active = false;
        if (watch_->on_gone) watch_->on_gone();
      }
    }
    unsigned status() const { return status_; }
    bool complete() const { return complete_; }
    bool keep_alive() const { return keep_alive_; }
    std::optional<std::string> error() const { return error_; }

   private:
    struct Watch {
      std::function<void()> on_gone;
      bool active = true;
      char peeked[1] = {};  // the peek's buffer, alive while the receive is pending
    };
    // Peeks at one byte without taking it: the end of the stream (or an error) then means the
    // client closed; a byte means it sent its next request (pipelined, or after the response
    // when the watch has ended), which is left for the next read, and the watch ends there.
    // An asynchronous receive rather than a wait for readability: the socket is already in the
    // event loop for reading, so a receive queues without touching it, where a wait re-arms the
    // descriptor (an epoll_ctl) each time.
    void arm() {
      auto w = watch_;
      auto self = s_.shared_from_this();
      s_.lowest().socket().async_receive(
          asio::buffer(w->peeked, 1), tcp::socket::message_peek,
          [self, w](const boost::system::error_code& ec, std::size_t n) {
            if (ec == asio::error::operation_aborted || !w->active) return;
            if (!ec && n > 0) return;  // the client's next bytes: stop watching
            w->active = false;  // end of stream or a socket error: the client is gone
            if (w->on_gone) w->on_gone();
          });
    }
    bool ok(const boost::system::error_code& ec) {
      if (ec) {
        failed_ = true;
        error_ = ec.message();
        client_gone();
      }
      return !ec;
    }
    Session& s_;
    bool keep_alive_;
    std::string request_id_;
    bool failed_ = false, complete_ = false;
    unsigned status_ = 0;
    std::optional<std::string> error_;
    std::shared_ptr<Watch> watch_;
  };

  void record(unsigned status_code, const RequestContext& ctx, const std::string& method, const std::string& path,
              std::chrono::steady_clock::time_point start, const std::optional<std::string>& write_error) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const std::string status = std::to_string(status_code);
    server_.requests_->with({ctx.route, status}).inc();
    server_.latency_->with({ctx.route, status}).observe(seconds);
    if (server_.cfg_.access_log) {
      boost::json::object line{{"request_id", ctx.request_id}, {"method", method},     {"path", path},
                               {"route", ctx.route},           {"status", status_code}, {"latency_us", static_cast<std::int64_t>(seconds * 1e6)}};
      if (write_error) line["write_error"] = *write_error;
      infra::log::info("request", std::move(line));
    }
  }

  asio::awaitable<Response> dispatch(Request& req, RequestContext& ctx) {
    std::string_view target = req.target();
    auto q = target.find('?');
    ctx.path = target.substr(0, q);
    ctx.query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
    auto m = server_.router_.match(req.method(), ctx.path, ctx);
    ctx.route = m.route;
    if (!m.handler) co_return route_miss_response(m, req);
    try {
      co_return co_await (*m.handler)(req, ctx);
    } catch (const std::exception& e) {
      infra::log::error("handler failed", {{"request_id", ctx.request_id},
                                           {"route", ctx.route},
                                           {"error", e.what()}});
    }
    co_return error_response(http::status::internal_server_error,
                             "The server failed to handle the request (request id " +
                                 ctx.request_id + "). Retry; if it persists, report the id.",
                             "server_error", "internal_error", std::nullopt, req.version());
  }

  static std::optional<Response> parse_error_response(const boost::system::error_code& ec,
                                                      unsigned version) {
    if (ec == http::error::header_limit)
      return error_response(http::status::request_header_fields_too_large,
                            "The request headers are larger than the server's limit "
                            "(server.max_header_bytes). Send fewer or smaller headers.",
                            "invalid_request_error", "request_header_fields_too_large",
                            std::nullopt, version);
    if (ec == http::error::body_limit)
      return error_response(http::status::payload_too_large,
                            "The request body is larger than the server's limit "
                            "(server.max_body_bytes). Send a smaller body.",
                            "invalid_request_error", "request_too_large", std::nullopt, version);
    if (ec == beast::error::timeout)
      return error_response(http::status::request_timeout,
                            "The request was not received completely within the server's read "
                            "timeout (server.read_timeout_ms).",
                            "invalid_request_error", "request_timeout", std::nullopt, version);
    if (ec == http::error::partial_message) return std::nullopt;  // the peer went away
    if (ec.category() == http::make_error_code(http::error::bad_target).category())
      return error_response(http::status::bad_request,
                            "Malformed HTTP request: " + ec.message() + ".",
                            "invalid_request_error", "bad_request", std::nullopt, version);
    return std::nullopt;
  }

  asio::awaitable<bool> write(Response& res, const RequestContext& ctx, const std::string& method,
                              const std::string& path, std::chrono::steady_clock::time_point start,
                              bool head = false) {
    res.set("x-request-id", ctx.request_id);
    res.set(http::field::server, "infergate");
    if (!head) res.prepare_payload();  // HEAD keeps the Content-Length of the GET
    // One buffer, one write: a whole response is small, and Beast's generic serializer costs
    // several times what copying it does.
    const std::string wire = serialize_response(res, head);
    lowest().expires_after(server_.cfg_.write_timeout);
    auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(wire), kTuple);
    (void)n;
    record(res.result_int(), ctx, method, path, start, ec ? std::optional<std::string>(ec.message()) : std::nullopt);
    co_return !ec;
  }

  // After an error response on a connection whose request we did not read to the end: stop
  // sending, then read and discard for a moment so the peer sees our response before the close
  // (closing with unread data would reset the connection and could destroy the response).
  asio::awaitable<void> linger_close() {
    boost::system::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    std::array<char, 16384> sink;
    std::size_t discarded = 0;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (discarded < (1u << 20) && std::chrono::steady_clock::now() < until) {
      lowest().expires_at(until);
      auto [rec, n] = co_await lowest().async_read_some(asio::buffer(sink), kTuple);
      if (rec) break;
      discarded += n;
    }
    close();
  }

  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  HttpServer& server_;
  Stream stream_;
  std::uint64_t id_;
  bool idle_ = false;
  ResponseStreamImpl* active_stream_ = nullptr;  // the request in progress, if any
};

HttpServer::HttpServer(asio::io_context& io, std::vector<asio::io_context*> connection_contexts,
                       infra::ServerConfig cfg, const Router& router, infra::MetricsRegistry& metrics)
    : io_(io), contexts_(std::move(connection_contexts)), cfg_(std::move(cfg)), router_(router), metrics_(metrics),
      acceptor_(asio::make_strand(io)), tls_acceptor_(asio::make_strand(io)) {
  if (contexts_.empty()) throw std::invalid_argument("HttpServer needs at least one connection context");
  requests_ = &metrics.counter("infergate_http_requests_total",
                               "HTTP requests by route pattern and status", {"route", "status"});
  latency_ = &metrics.histogram("infergate_http_request_duration_seconds",
                                "HTTP request latency (read done to response written)",
                                {"route", "status"});
  connections_ = &metrics.gauge("infergate_http_connections", "Open client connections").with({});
}

HttpServer::~HttpServer() = default;

namespace {

void listen(tcp::acceptor& acceptor, const std::string& address, std::uint16_t port) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(address, ec);
  if (ec) throw std::system_error(ec, "server.listen_address '" + address + "' is not an IP address");
  tcp::endpoint ep(addr, port);
  const std::string where = address + ":" + std::to_string(port);
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::system_error(ec, "cannot listen on " + where);
}

}  // namespace

void HttpServer::start() {
  if (cfg_.tls_enabled) {
    // Certificate and key are read before any port is bound: a bad file is a startup error.
    tls_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    tls_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                      asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                      asio::ssl::context::single_dh_use);
    boost::system::error_code ec;
    tls_->use_certificate_chain_file(cfg_.tls_cert_file, ec);
    if (ec) throw std::runtime_error("server.tls_cert_file '" + cfg_.tls_cert_file + "': cannot use it as a PEM certificate chain (" + ec.message() + ")");
    tls_->use_private_key_file(cfg_.tls_key_file, asio::ssl::context::pem, ec);
    if (ec) throw std::runtime_error("server.tls_key_file '" + cfg_.tls_key_file + "': cannot use it as a PEM private key for the certificate (" + ec.message() + ")");
  }
  listen(acceptor_, cfg_.listen_address, cfg_.port);
  port_ = acceptor_.local_endpoint().port();
  auto on_done = [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      infra::log::error("accept loop failed", {{"error", ex.what()}});
    }
  };
  asio::co_spawn(acceptor_.get_executor(), accept_loop(acceptor_, false), on_done);
  if (tls_) {
    listen(tls_acceptor_, cfg_.listen_address, cfg_.tls_port);
    tls_port_ = tls_acceptor_.local_endpoint().port();
    asio::co_spawn(tls_acceptor_.get_executor(), accept_loop(tls_acceptor_, true), on_done);
  }
}

asio::any_io_executor HttpServer::next_connection_executor() {
  return contexts_[next_context_.fetch_add(1, std::memory_order_relaxed) % contexts_.size()]->get_executor();
}

asio::awaitable<void> HttpServer::accept_loop(tcp::acceptor& acceptor, bool tls) {
  for (;;) {
    const asio::any_io_executor conn_ex = next_connection_executor();
    auto [ec, socket] = co_await acceptor.async_accept(conn_ex, kTuple);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      // Out of descriptors or similar: back off briefly instead of spinning.
      infra::log::warn("accept failed", {{"error", ec.message()}});
      asio::steady_timer t(acceptor.get_executor(), std::chrono::milliseconds(50));
      co_await t.async_wait(kTuple);
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    std::uint64_t id;
    {
      std::lock_guard lock(mu_);
      id = next_id_++;
    }
    auto on_done = [this, id](std::exception_ptr e) {
      unregister_session(id);
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        infra::log::error("connection failed", {{"error", ex.what()}});
      }
    };
    if (tls) {
      auto session = std::make_shared<Session<TlsStream>>(*this, std::move(socket), *tls_, id);
      register_session(id, session);
      asio::co_spawn(session->executor(), session->run(session), on_done);
    } else {
      auto session = std::make_shared<Session<PlainStream>>(*this, std::move(socket), id);
      register_session(id, session);
      asio::co_spawn(session->executor(), session->run(session), on_done);
    }
  }
}

void HttpServer::register_session(std::uint64_t id, const std::shared_ptr<SessionBase>& s) {
  std::lock_guard lock(mu_);
  sessions_[id] = s;
  connections_->add(1);
}

void HttpServer::unregister_session(std::uint64_t id) {
  std::lock_guard lock(mu_);
  if (sessions_.erase(id)) connections_->add(-1);
}

std::size_t HttpServer::active_connections() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

void HttpServer::begin_drain() {
  if (draining_.exchange(true)) return;
  asio::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
  });
  asio::post(tls_acceptor_.get_executor(), [this] {
    boost::system::error_code ec;
    tls_acceptor_.close(ec);
  });
  std::lock_guard lock(mu_);
  for (auto& [id, w] : sessions_) {
    if (auto s = w.lock()) asio::post(s->executor(), [s] { s->cancel_if_idle(); });
  }
}

void HttpServer::close_all() {
  std::lock_guard lock(mu_);
  for (auto& [id, w] : sessions_) {
    if (auto s = w.lock()) asio::post(s->executor(), [s] { s->close(); });
  }
}

}  // namespace infergate::gateway
