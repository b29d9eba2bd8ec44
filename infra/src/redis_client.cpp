#include "infergate/infra/redis_client.h"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <future>
#include <random>

#include "infergate/infra/log.h"

namespace infergate::infra {

// One hiredis connection and the Asio descriptor that waits on its socket. hiredis calls the
// ev hooks below to say when it wants to read or write; we wait for readiness and hand control
// back with redisAsyncHandleRead/Write. The object outlives the hiredis context: hiredis still
// calls the disconnect callback after the cleanup hook, so the self reference is dropped later.
struct RedisClient::Conn : std::enable_shared_from_this<RedisClient::Conn> {
  Conn(RedisClient* c, redisAsyncContext* a)
      : client(c), ac(a), sd(c->strand_, a->c.fd), watchdog(c->strand_) {}

  RedisClient* client;
  redisAsyncContext* ac;
  asio::posix::stream_descriptor sd;
  asio::steady_timer watchdog;
  std::shared_ptr<Conn> self_hold;
  bool reading = false, writing = false, read_armed = false, write_armed = false;
  bool dead = false;
  bool connected = false;  // TCP connected (hiredis' view)
  bool ready = false;      // answered our PING: only now do commands go out
  std::size_t outstanding = 0;  // commands sent, replies not yet received
  std::chrono::steady_clock::time_point last_progress{};

  void arm_read() {
    if (read_armed || dead) return;
    read_armed = true;
    sd.async_wait(asio::posix::stream_descriptor::wait_read,
                  [self = shared_from_this()](const boost::system::error_code& ec) {
                    self->read_armed = false;
                    if (ec || self->dead || !self->reading) return;
                    redisAsyncHandleRead(self->ac);
                    if (!self->dead && self->reading) self->arm_read();
                  });
  }
  void arm_write() {
    if (write_armed || dead) return;
    write_armed = true;
    sd.async_wait(asio::posix::stream_descriptor::wait_write,
                  [self = shared_from_this()](const boost::system::error_code& ec) {
                    self->write_armed = false;
                    if (ec || self->dead || !self->writing) return;
                    redisAsyncHandleWrite(self->ac);
                    if (!self->dead && self->writing) self->arm_write();
                  });
  }

  static void add_read(void* p) {
    auto* c = static_cast<Conn*>(p);
    c->reading = true;
    c->arm_read();
  }
  static void del_read(void* p) { static_cast<Conn*>(p)->reading = false; }
  static void add_write(void* p) {
    auto* c = static_cast<Conn*>(p);
    c->writing = true;
    c->arm_write();
  }
  static void del_write(void* p) { static_cast<Conn*>(p)->writing = false; }
  static void cleanup(void* p) {
    auto* c = static_cast<Conn*>(p);
    c->dead = true;
    c->reading = c->writing = false;
    boost::system::error_code ec;
    c->sd.cancel(ec);
    c->sd.release();  // hiredis owns and closes the fd
    c->watchdog.cancel();
    asio::post(c->client->strand_, [hold = std::move(c->self_hold)] {});
  }

  static void on_connect(const redisAsyncContext* ac, int status) {
    auto* c = static_cast<Conn*>(ac->data);
    c->client->on_connected(*c, status == REDIS_OK, ac->errstr ? ac->errstr : "connect failed");
  }
  // The first reply on a new connection: a live server, not just an accepting socket.
  static void on_hello(redisAsyncContext* ac, void* r, void*) {
    auto* c = static_cast<Conn*>(ac->ev.data);
    if (r == nullptr || c == nullptr || c->dead) return;
    auto* reply = static_cast<redisReply*>(r);
    if (reply->type == REDIS_REPLY_ERROR) {
      c->client->mark_down(std::string("redis refused PING: ") + reply->str);
      redisAsyncDisconnect(ac);
      return;
    }
    c->client->on_ready(*c);
  }
  // Replies on a subscribed connection: confirmations, then messages.
  static void on_subscription(redisAsyncContext* ac, void* r, void*) {
    auto* c = static_cast<Conn*>(ac->ev.data);
    auto* reply = static_cast<redisReply*>(r);
    if (reply == nullptr || c == nullptr || c->dead || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements < 3)
      return;
    std::string kind(reply->element[0]->str ? reply->element[0]->str : "",
                     reply->element[0]->len);
    RedisClient& client = *c->client;
    if (kind == "subscribe") {
      if (reply->element[2]->integer == static_cast<long long>(client.sub_channels_.size()) &&
          client.on_subscribed_)
        client.on_subscribed_();
    } else if (kind == "message" && client.on_message_) {
      client.on_message_(std::string(reply->element[1]->str, reply->element[1]->len),
                         std::string(reply->element[2]->str, reply->element[2]->len));
    }
  }
  static void on_disconnect(const redisAsyncContext* ac, int status) {
    auto* c = static_cast<Conn*>(ac->data);
    std::string why = (status == REDIS_OK || ac->errstr == nullptr || ac->err == 0)
                          ? "connection closed"
                          : std::string(ac->errstr);
    c->client->on_disconnected(*c, why);
  }

  void arm_watchdog(Millis period) {
    watchdog.expires_after(period);
    watchdog.async_wait([self = shared_from_this(), period](const boost::system::error_code& ec) {
      if (ec || self->dead) return;
      auto stalled = std::chrono::steady_clock::now() - self->last_progress;
      if (self->outstanding > 0 && stalled > self->client->cfg_.command_timeout * 2) {
        self->client->mark_down("redis stopped answering (no reply for " +
                                std::to_string(std::chrono::duration_cast<Millis>(stalled).count()) +
                                " ms); reconnecting");
        redisAsyncFree(self->ac);  // fails what is pending, then on_disconnect reconnects
        return;
      }
      self->arm_watchdog(period);
    });
  }
};

namespace {

RedisReply convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::string;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::status;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::error;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::integer;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::array;
      out.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
      break;
    default:
      out.type = RedisReply::Type::nil;
  }
  return out;
}

// The replies of one pipeline() call, filled in as they arrive.
struct Batch {
  std::shared_ptr<Completion<std::vector<RedisReply>>> done;
  std::vector<RedisReply> replies;
  std::size_t remaining;
  Counter* ok;
  Counter* unavailable;
};

struct Pending {
  std::shared_ptr<Batch> batch;
  std::size_t index;
};

void on_reply(redisAsyncContext* ac, void* r, void* privdata) {
  std::unique_ptr<Pending> p(static_cast<Pending*>(privdata));
  auto& b = *p->batch;
  auto* conn = static_cast<RedisClient::Conn*>(ac->ev.data);
  if (conn && conn->outstanding > 0) {
    --conn->outstanding;
    conn->last_progress = std::chrono::steady_clock::now();
  }
  if (r == nullptr) {
    if (b.done->complete(std::make_exception_ptr(RedisUnavailable("redis connection lost")),
                         std::nullopt))
      b.unavailable->inc();
    return;
  }
  b.replies[p->index] = convert(static_cast<redisReply*>(r));
  if (--b.remaining == 0 && b.done->complete(nullptr, std::move(b.replies))) b.ok->inc();
}

}  // namespace

RedisClient::RedisClient(asio::io_context& io, RedisConfig cfg, MetricsRegistry& metrics,
                         std::string name)
    : name_(std::move(name)),
      io_(io),
      strand_(asio::make_strand(io)),
      cfg_(std::move(cfg)),
      reconnect_timer_(strand_),
      connect_timer_(strand_),
      backoff_(cfg_.reconnect_min),
      metrics_(metrics) {
  auto& cmds = metrics.counter("infergate_redis_commands_total",
                               "Redis commands (pipelines count once) by outcome", {"outcome"});
  cmd_ok_ = &cmds.with({"ok"});
  cmd_unavailable_ = &cmds.with({"unavailable"});
  cmd_timeout_ = &cmds.with({"timeout"});
  reconnects_ = &metrics.counter("infergate_redis_connect_attempts_total",
                                 "Connection attempts to Redis")
                     .with({});
  up_gauge_ = metrics.gauge_callback("infergate_redis_up", "1 if the Redis connection is established",
                         [this] { return connected() ? 1.0 : 0.0; });
}

RedisClient::~RedisClient() {
  metrics_.remove_callback("infergate_redis_up", up_gauge_);
  // hiredis state belongs to the strand. While io threads still run, close there and wait;
  // once the io_context has stopped nothing else can touch it, so close right here.
  if (!io_.stopped() && !strand_.running_in_this_thread()) {
    auto done = std::make_shared<std::promise<void>>();
    auto fut = done->get_future();
    asio::post(strand_, [this, done] {
      close_now();
      done->set_value();
    });
    if (fut.wait_for(std::chrono::seconds(2)) == std::future_status::ready) return;
    // The strand did not run it (destroyed from the only io thread?): running close_now here
    // as well would race with the queued one. Leaving the connection is the lesser harm.
    log::error(name_ + " client destroyed while its io_context was busy; connection left open");
    return;
  }
  close_now();
}

void RedisClient::close_now() {
  stopping_ = true;
  reconnect_timer_.cancel();
  connect_timer_.cancel();
  if (conn_) {
    auto c = std::move(conn_);
    connected_ = false;
    if (!c->dead) redisAsyncFree(c->ac);
  }
}

void RedisClient::start() {
  asio::dispatch(strand_, [this] {
    stopping_ = false;
    if (!conn_ && !reconnect_pending_) do_connect();
  });
}

void RedisClient::stop() {
  asio::dispatch(strand_, [this] { close_now(); });
}

std::string RedisClient::last_error() const {
  std::lock_guard lock(err_mu_);
  return last_error_;
}

void RedisClient::mark_down(const std::string& why) {
  {
    std::lock_guard lock(err_mu_);
    last_error_ = why;
  }
  if (state_.exchange(2) != 2)
    log::warn(name_ + " down", {{"host", cfg_.host}, {"port", cfg_.port}, {"error", why}});
}

void RedisClient::do_connect() {
  reconnect_pending_ = false;
  if (stopping_ || conn_) return;
  reconnects_->inc();
  redisAsyncContext* ac = redisAsyncConnect(cfg_.host.c_str(), cfg_.port);
  if (ac == nullptr || ac->err) {
    std::string why = ac ? ac->errstr : "out of memory";
    if (ac) redisAsyncFree(ac);
    mark_down(why);
    schedule_reconnect();
    return;
  }
  auto c = std::make_shared<Conn>(this, ac);
  c->self_hold = c;
  ac->data = c.get();
  ac->ev.data = c.get();
  ac->ev.addRead = &Conn::add_read;
  ac->ev.delRead = &Conn::del_read;
  ac->ev.addWrite = &Conn::add_write;
  ac->ev.delWrite = &Conn::del_write;
  ac->ev.cleanup = &Conn::cleanup;
  redisAsyncSetDisconnectCallback(ac, &Conn::on_disconnect);
  redisAsyncSetConnectCallback(ac, &Conn::on_connect);  // arms the first write wait
  conn_ = c;
  connect_timer_.expires_after(cfg_.connect_timeout);
  connect_timer_.async_wait([this, w = std::weak_ptr<Conn>(c)](const boost::system::error_code& ec) {
    auto conn = w.lock();
    if (ec || !conn || conn->dead || conn->ready) return;
    if (conn_ == conn) conn_.reset();
    mark_down("no answer within the connect timeout of " +
              std::to_string(cfg_.connect_timeout.count()) + " ms");
    redisAsyncFree(conn->ac);  // disconnect callback only if TCP was up
    schedule_reconnect();
  });
}

void RedisClient::schedule_reconnect() {
  if (stopping_ || reconnect_pending_) return;
  reconnect_pending_ = true;
  thread_local std::minstd_rand rng{std::random_device{}()};
  // Full jitter in [backoff/2, backoff], then double up to the cap.
  auto half = backoff_.count() / 2;
  auto delay = Millis(half + static_cast<long>(rng() % static_cast<unsigned>(half + 1)));
  backoff_ = std::min(backoff_ * 2, cfg_.reconnect_max);
  reconnect_timer_.expires_after(delay);
  reconnect_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    do_connect();
  });
}

void RedisClient::on_connected(Conn& c, bool ok, const std::string& err) {
  if (!ok) {
    connect_timer_.cancel();
    if (conn_.get() == &c) conn_.reset();
    mark_down(err);
    schedule_reconnect();
    return;
  }
  c.connected = true;
  // TCP keepalive: a silently dead path (no FIN, no RST) is noticed even on a subscriber,
  // which sends nothing the watchdog could time.
  redisEnableKeepAlive(&c.ac->c);
  if (redisAsyncCommand(c.ac, &Conn::on_hello, nullptr, "PING") != REDIS_OK) {
    mark_down("could not send PING");
    redisAsyncDisconnect(c.ac);
  }
}

void RedisClient::on_ready(Conn& c) {
  connect_timer_.cancel();
  c.ready = true;
  c.last_progress = std::chrono::steady_clock::now();
  connected_ = true;
  backoff_ = cfg_.reconnect_min;
  if (state_.exchange(1) != 1) log::info(name_ + " up", {{"host", cfg_.host}, {"port", cfg_.port}});
  c.arm_watchdog(std::max(Millis(50), cfg_.command_timeout / 2));
  if (!sub_channels_.empty()) {
    std::vector<const char*> argv{"SUBSCRIBE"};
    std::vector<std::size_t> lens{9};
    for (const auto& ch : sub_channels_) {
      argv.push_back(ch.data());
      lens.push_back(ch.size());
    }
    if (redisAsyncCommandArgv(c.ac, &Conn::on_subscription, nullptr, static_cast<int>(argv.size()),
                              argv.data(), lens.data()) != REDIS_OK) {
      mark_down("could not send SUBSCRIBE");
      redisAsyncDisconnect(c.ac);
    }
  }
}

void RedisClient::subscribe(std::vector<std::string> channels, MessageHandler on_message,
                            std::function<void()> on_subscribed) {
  sub_channels_ = std::move(channels);
  on_message_ = std::move(on_message);
  on_subscribed_ = std::move(on_subscribed);
}

void RedisClient::on_disconnected(Conn& c, const std::string& err) {
  c.connected = false;
  c.ready = false;
  if (conn_.get() == &c) {
    conn_.reset();
    connected_ = false;
  }
  if (stopping_) return;
  mark_down(err);
  schedule_reconnect();
}

void RedisClient::send(std::vector<std::vector<std::string>> cmds,
                       std::shared_ptr<Completion<std::vector<RedisReply>>> done) {
  if (done->done()) return;  // timed out while queued on the strand
  if (!conn_ || !conn_->ready || conn_->dead) {
    cmd_unavailable_->inc();
    std::string why = last_error();
    done->complete(std::make_exception_ptr(RedisUnavailable(
                       "redis unavailable" + (why.empty() ? std::string() : ": " + why))),
                   std::nullopt);
    return;
  }
  auto batch = std::make_shared<Batch>();
  batch->done = std::move(done);
  batch->replies.resize(cmds.size());
  batch->remaining = cmds.size();
  batch->ok = cmd_ok_;
  batch->unavailable = cmd_unavailable_;
  if (cmds.empty()) {
    batch->done->complete(nullptr, std::vector<RedisReply>{});
    return;
  }
  auto conn = conn_;
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (std::size_t i = 0; i < cmds.size(); ++i) {
    argv.clear();
    lens.clear();
    for (const auto& a : cmds[i]) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* pending = new Pending{batch, i};
    if (conn->outstanding == 0) conn->last_progress = std::chrono::steady_clock::now();
    if (redisAsyncCommandArgv(conn->ac, &on_reply, pending, static_cast<int>(argv.size()),
                              argv.data(), lens.data()) != REDIS_OK) {
      delete pending;
      if (batch->done->complete(
              std::make_exception_ptr(RedisUnavailable("redis connection is closing")),
              std::nullopt))
        cmd_unavailable_->inc();
      return;
    }
    ++conn->outstanding;
  }
}

asio::awaitable<std::vector<RedisReply>> RedisClient::pipeline(
    const std::vector<std::vector<std::string>>& cmds, std::optional<Millis> timeout) {
  const Millis limit = timeout.value_or(cfg_.command_timeout);
  auto shared_cmds = std::make_shared<std::vector<std::vector<std::string>>>(cmds);
  const std::function<void(std::shared_ptr<Completion<std::vector<RedisReply>>>)> start =
      [this, shared_cmds](std::shared_ptr<Completion<std::vector<RedisReply>>> done) {
        asio::dispatch(strand_, [this, shared_cmds, done = std::move(done)]() mutable {
          send(std::move(*shared_cmds), std::move(done));
        });
      };
  const std::function<std::exception_ptr()> on_timeout = [this, limit] {
    cmd_timeout_->inc();
    return std::make_exception_ptr(
        RedisTimeout("redis command timed out after " + std::to_string(limit.count()) + " ms"));
  };
  std::vector<RedisReply> replies =
      co_await await_completion<std::vector<RedisReply>>(limit, start, on_timeout);
  co_return replies;
}

asio::awaitable<RedisReply> RedisClient::command(const std::vector<std::string>& args,
                                                 std::optional<Millis> timeout) {
  const std::vector<std::vector<std::string>> cmds{args};
  std::vector<RedisReply> replies = co_await pipeline(cmds, timeout);
  RedisReply first = std::move(replies.front());
  co_return first;
}

}  // namespace infergate::infra

namespace infergate::infra {

bool redis_publish_blocking(const RedisConfig& cfg, const std::string& channel,
                            const std::string& message, std::string* error) {
  timeval tv{};
  tv.tv_sec = cfg.connect_timeout.count() / 1000;
  tv.tv_usec = static_cast<suseconds_t>((cfg.connect_timeout.count() % 1000) * 1000);
  std::unique_ptr<redisContext, void (*)(redisContext*)> c(
      redisConnectWithTimeout(cfg.host.c_str(), cfg.port, tv), &redisFree);
  if (!c || c->err) {
    if (error) *error = c ? c->errstr : "out of memory";
    return false;
  }
  redisSetTimeout(c.get(), tv);
  const char* argv[] = {"PUBLISH", channel.c_str(), message.c_str()};
  const std::size_t lens[] = {7, channel.size(), message.size()};
  auto* reply = static_cast<redisReply*>(redisCommandArgv(c.get(), 3, argv, lens));
  if (!reply) {
    if (error) *error = c->errstr;
    return false;
  }
  const bool ok = reply->type != REDIS_REPLY_ERROR;
  if (!ok && error) *error = reply->str;
  freeReplyObject(reply);
  return ok;
}

}  // namespace infergate::infra
