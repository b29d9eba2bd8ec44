// The whole request path under load: a keep-alive HTTP load generator against `infergate serve`
// (auth + admission + engine + durable metering all on), beside a bare Beast "hello" server
// measured with the same client in the same run. Prints requests/s at saturation (closed loop,
// C connections) and the latency p50/p99 at half that rate (open loop: requests are sent on a
// fixed schedule and latency counts from the scheduled time, so a stall is not hidden), and the
// CPU time per request at saturation of each process on the path (infergate, Postgres, Redis, the
// load generator), which holds better than rates when a shared VM's speed drifts.
//
//   gateway_bench --target URL --key KEY [--body JSON] [--connections 16] [--seconds 5] [--target-only 1 [--rate N]]
//                 [--threads 1] [--bare-threads 2]
// bench/gateway_bench.sh sets up Postgres, Redis, a toy model, a tenant and the server, and runs it.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// ---- the baseline: a bare Beast server answering a small JSON body --------------------------
asio::awaitable<void> bare_session(tcp::socket socket) {
  boost::beast::flat_buffer buffer;
  for (;;) {
    http::request<http::string_body> req;
    boost::system::error_code ec;
    co_await http::async_read(socket, buffer, req, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.body() = R"({"object":"hello","text":"hi"})";
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    co_await http::async_write(socket, res, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !req.keep_alive()) co_return;
  }
}

asio::awaitable<void> bare_accept(tcp::acceptor& acceptor) {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket s = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    asio::co_spawn(acceptor.get_executor(), bare_session(std::move(s)), asio::detached);
  }
}

// ---- the load generator ---------------------------------------------------------------------
struct Target {
  std::string host;
  std::string port;
  std::string path;
  std::string key;
  std::string body;
};

Target parse_url(const std::string& url) {
  Target t;
  std::string rest = url.substr(url.find("://") + 3);
  const auto slash = rest.find('/');
  const std::string hostport = rest.substr(0, slash);
  t.path = slash == std::string::npos ? "/" : rest.substr(slash);
  const auto colon = hostport.find(':');
  t.host = hostport.substr(0, colon);
  t.port = colon == std::string::npos ? "80" : hostport.substr(colon + 1);
  return t;
}

struct Result {
  double rps = 0;
  std::vector<double> latencies_ms;
  std::uint64_t errors = 0;
  std::uint64_t ok = 0;
  std::vector<double> slow_due_ms;  // when each request over 2 ms was due, ms into the run
};

// One connection, already open: sends requests (when `pace` is set, at its scheduled times) until
// `until`. Requests over 2 ms are also noted by when they were due (ms after `start`), so that a
// run can show whether its tail is spread out or one stall.
asio::awaitable<void> client(tcp::socket socket, const Target& t, Clock::time_point until,
                             std::atomic<std::int64_t>* next_slot, Clock::time_point start,
                             std::chrono::nanoseconds pace, Result* out, std::mutex* mu) {
  auto ex = co_await asio::this_coro::executor;
  boost::system::error_code ec;
  boost::beast::flat_buffer buffer;
  http::request<http::string_body> req{t.body.empty() ? http::verb::get : http::verb::post, t.path, 11};
  req.set(http::field::host, t.host);
  if (!t.key.empty()) req.set(http::field::authorization, "Bearer " + t.key);
  if (!t.body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = t.body;
  }
  req.keep_alive(true);
  req.prepare_payload();
  std::vector<double> lat, slow_due;
  std::uint64_t ok = 0, errors = 0;
  asio::steady_timer timer(ex);
  for (;;) {
    Clock::time_point scheduled = Clock::now();
    if (pace.count() > 0) {
      const std::int64_t slot = next_slot->fetch_add(1);
      scheduled = start + pace * slot;
      if (scheduled >= until) break;
      timer.expires_at(scheduled);
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    } else if (scheduled >= until) {
      break;
    }
    co_await http::async_write(socket, req, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    http::response<http::string_body> res;
    co_await http::async_read(socket, buffer, res, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - scheduled).count();
    lat.push_back(ms);
    if (ms > 2.0) slow_due.push_back(std::chrono::duration<double, std::milli>(scheduled - start).count());
    if (res.result() == http::status::ok) {
      ++ok;
    } else {
      ++errors;
      if (errors == 1) std::fprintf(stderr, "non-200 response %u: %s\n", res.result_int(), res.body().substr(0, 300).c_str());
    }
  }
  std::lock_guard lock(*mu);
  out->latencies_ms.insert(out->latencies_ms.end(), lat.begin(), lat.end());
  out->slow_due_ms.insert(out->slow_due_ms.end(), slow_due.begin(), slow_due.end());
  out->ok += ok;
  out->errors += errors;
}

// Opens every connection first and only then starts the clock (and, open loop, the schedule):
// connecting is not part of any request's latency.
Result run_load(const Target& t, int connections, double seconds, double rate, int threads) {
  asio::io_context io(threads);
  Result r;
  std::mutex mu;
  std::atomic<std::int64_t> slot{0};
  tcp::resolver resolver(io);
  const auto endpoints = resolver.resolve(t.host, t.port);
  std::vector<tcp::socket> sockets;
  for (int i = 0; i < connections; ++i) {
    tcp::socket s(io);
    boost::system::error_code ec;
    asio::connect(s, endpoints, ec);
    if (ec) {
      std::fprintf(stderr, "cannot connect to %s:%s: %s\n", t.host.c_str(), t.port.c_str(), ec.message().c_str());
      r.errors += 1;
      return r;
    }
    s.set_option(tcp::no_delay(true));
    sockets.push_back(std::move(s));
  }
  const auto start = Clock::now() + std::chrono::milliseconds(5);
  const auto until = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  const auto pace = rate > 0 ? std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 / rate)) : std::chrono::nanoseconds(0);
  for (auto& s : sockets) asio::co_spawn(io, client(std::move(s), t, until, &slot, start, pace, &r, &mu), asio::detached);
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& th : pool) th.join();
  r.rps = static_cast<double>(r.ok + r.errors) / seconds;
  std::sort(r.latencies_ms.begin(), r.latencies_ms.end());
  std::sort(r.slow_due_ms.begin(), r.slow_due_ms.end());
  return r;
}

double pct(const std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

// The tail of an open-loop run in one line: p99.9, the worst, how many requests took over 2 ms,
// and the 100 ms windows most of those were due in (a tail made of one stall shows as one window).
std::string describe_tail(const Result& r) {
  if (r.latencies_ms.empty()) return "no requests";
  std::map<long, int> windows;
  for (const double due : r.slow_due_ms) ++windows[static_cast<long>(due / 100)];
  std::vector<std::pair<int, long>> busiest;
  for (const auto& [w, n] : windows) busiest.emplace_back(n, w);
  std::sort(busiest.rbegin(), busiest.rend());
  char head[160];
  std::snprintf(head, sizeof head, "p99.9 %.3f ms, max %.3f ms; %zu over 2 ms (%.2f%%)", pct(r.latencies_ms, 0.999),
                r.latencies_ms.back(), r.slow_due_ms.size(),
                100.0 * static_cast<double>(r.slow_due_ms.size()) / static_cast<double>(r.latencies_ms.size()));
  std::string out = head;
  for (std::size_t i = 0; i < busiest.size() && i < 3; ++i) {
    char w[64];
    std::snprintf(w, sizeof w, "%s%d due at %.1f-%.1f s", i == 0 ? ", of which " : ", ", busiest[i].first,
                  static_cast<double>(busiest[i].second) / 10, static_cast<double>(busiest[i].second + 1) / 10);
    out += w;
  }
  return out;
}

struct Figures {
  double rps, p50, p99, half_rate;
  std::uint64_t errors;
};

// CPU time the hypervisor gave to other guests (Linux /proc/stat "steal"), as a share of all CPU
// time between two readings: on a shared virtual machine, figures taken under steal are low.
struct CpuTimes {
  unsigned long long steal = 0, total = 0;
};
CpuTimes cpu_times() {
  CpuTimes t;
  std::FILE* f = std::fopen("/proc/stat", "r");
  if (!f) return t;
  unsigned long long v[8] = {};
  if (std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                  &v[7]) == 8) {
    for (unsigned long long x : v) t.total += x;
    t.steal = v[7];
  }
  std::fclose(f);
  return t;
}
double steal_share(const CpuTimes& a, const CpuTimes& b) {
  return b.total > a.total ? static_cast<double>(b.steal - a.steal) / static_cast<double>(b.total - a.total) : 0.0;
}

// CPU time (user + system, seconds) of the processes the requests go through: every process
// named infergate, postgres or redis-server on this machine, and this one (the load generator,
// and in the bare phase the bare server too). Per request, these hold better than rates when a
// shared VM's speed drifts.
struct ProcessCpu {
  double infergate = 0, postgres = 0, redis = 0, self = 0;
};
// utime + stime of /proc/<pid>/stat in seconds, and the process name; -1 when unreadable.
double stat_cpu(const std::string& path, std::string* name) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return -1;
  const auto open = line.find('('), close = line.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close + 2 > line.size()) return -1;
  if (name) *name = line.substr(open + 1, close - open - 1);
  std::istringstream rest(line.substr(close + 2));  // fields 3, 4, ...
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}
ProcessCpu process_cpu() {
  ProcessCpu c;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string pid = e.path().filename().string();
    if (pid.empty() || !std::all_of(pid.begin(), pid.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); }))
      continue;
    std::string name;
    const double t = stat_cpu(e.path().string() + "/stat", &name);
    if (t < 0) continue;
    if (name == "infergate") c.infergate += t;
    else if (name == "postgres") c.postgres += t;
    else if (name == "redis-server") c.redis += t;
  }
  c.self = std::max(0.0, stat_cpu("/proc/self/stat", nullptr));
  return c;
}

Figures measure(const char* name, const Target& t, int connections, double seconds, int threads, bool bare) {
  run_load(t, connections, 0.5, 0, threads);  // warm up (connections, caches)
  const CpuTimes before = cpu_times();
  const ProcessCpu cpu0 = process_cpu();
  const Result sat = run_load(t, connections, seconds, 0, threads);
  const ProcessCpu cpu1 = process_cpu();
  const double half = sat.rps / 2;
  const Result at_half = run_load(t, connections, seconds, half, threads);
  std::printf("%-10s saturation %8.0f req/s (%llu errors) | at %6.0f req/s: p50 %6.3f ms  p99 %6.3f ms | cpu steal %4.1f%%\n",
              name, sat.rps, static_cast<unsigned long long>(sat.errors + at_half.errors), half,
              pct(at_half.latencies_ms, 0.5), pct(at_half.latencies_ms, 0.99), 100 * steal_share(before, cpu_times()));
  std::printf("%-10s   tail at half load: %s\n", "", describe_tail(at_half).c_str());
  const double n = static_cast<double>(sat.ok + sat.errors);
  if (n > 0) {
    auto us = [n](double a, double b) { return 1e6 * (b - a) / n; };
    if (bare) {
      std::printf("%-10s   cpu per request at saturation: %.1f us (load generator and bare server)\n", "",
                  us(cpu0.self, cpu1.self));
    } else {
      std::printf("%-10s   cpu per request at saturation: infergate %.1f us, postgres %.1f us, redis %.1f us, load generator %.1f us\n",
                  "", us(cpu0.infergate, cpu1.infergate), us(cpu0.postgres, cpu1.postgres), us(cpu0.redis, cpu1.redis),
                  us(cpu0.self, cpu1.self));
    }
  }
  return {sat.rps, pct(at_half.latencies_ms, 0.5), pct(at_half.latencies_ms, 0.99), half, sat.errors + at_half.errors};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string target_url, key, body;
  int connections = 16, threads = 1, bare_threads = 2;
  bool target_only = false;  // --target-only 1: skip the baseline (for profiling the gateway)
  int rounds = 3;             // --rounds N: bare and infergate measured in turn N times (medians reported)
  double fixed_rate = 0;     // --rate N (with --target-only): only the open-loop phase, at N req/s
  double seconds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--target") target_url = v;
    else if (k == "--key") key = v;
    else if (k == "--body") body = v;
    else if (k == "--connections") connections = std::stoi(v);
    else if (k == "--seconds") seconds = std::stod(v);
    else if (k == "--threads") threads = std::stoi(v);
    else if (k == "--bare-threads") bare_threads = std::stoi(v);
    else if (k == "--target-only") target_only = v == "1";
    else if (k == "--rate") fixed_rate = std::stod(v);
    else if (k == "--rounds") rounds = std::max(1, std::stoi(v));
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (target_url.empty()) {
    std::fprintf(stderr, "usage: gateway_bench --target URL --key KEY [--body JSON] ... (see bench/gateway_bench.sh)\n");
    return 2;
  }
  if (target_only) {
    Target ig = parse_url(target_url);
    ig.key = key;
    ig.body = body;
    if (fixed_rate > 0) {
      run_load(ig, connections, 0.5, 0, threads);  // warm up
      const Result r = run_load(ig, connections, seconds, fixed_rate, threads);
      std::printf("infergate  at %6.0f req/s: %.0f req/s done, p50 %6.3f ms  p90 %6.3f ms  p99 %6.3f ms (%llu errors)\n",
                  fixed_rate, r.rps, pct(r.latencies_ms, 0.5), pct(r.latencies_ms, 0.9), pct(r.latencies_ms, 0.99),
                  static_cast<unsigned long long>(r.errors));
      std::printf("           tail: %s\n", describe_tail(r).c_str());
      return r.errors > 0 ? 1 : 0;
    }
    const Figures g = measure("infergate", ig, connections, seconds, threads, false);
    return g.errors > 0 ? 1 : 0;
  }
  // The baseline server, on its own threads.
  asio::io_context bare_io(bare_threads);
  tcp::acceptor acceptor(bare_io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  asio::co_spawn(bare_io, bare_accept(acceptor), asio::detached);
  std::vector<std::thread> bare_pool;
  for (int i = 0; i < bare_threads; ++i) bare_pool.emplace_back([&bare_io] { bare_io.run(); });

  std::printf("gateway_bench: %d connections, %.0f s per phase, client threads %d, %d rounds (bare and infergate in turn)\n",
              connections, seconds, threads, rounds);
  Target bare{"127.0.0.1", std::to_string(acceptor.local_endpoint().port()), "/", "", ""};
  Target ig = parse_url(target_url);
  ig.key = key;
  ig.body = body;
  // In turn, so that both see the same machine: a shared VM's speed drifts over minutes.
  std::vector<double> ratios, p99s, bare_rps, ig_rps;
  std::uint64_t errors = 0;
  for (int r = 0; r < rounds; ++r) {
    const Figures b = measure("bare beast", bare, connections, seconds, threads, true);
    const Figures g = measure("infergate", ig, connections, seconds, threads, false);
    std::printf("round %d: ratio %.3fx, infergate p99 at half load %.3f ms\n", r + 1, g.rps / b.rps, g.p99);
    ratios.push_back(g.rps / b.rps);
    p99s.push_back(g.p99);
    bare_rps.push_back(b.rps);
    ig_rps.push_back(g.rps);
    errors += g.errors;
  }
  bare_io.stop();
  for (auto& th : bare_pool) th.join();
  std::printf("medians of %d rounds: bare %.0f req/s, infergate %.0f req/s\n", rounds, median(bare_rps), median(ig_rps));
  std::printf("ratio: infergate / bare = %.3fx requests/s (goal >= 0.25x); infergate p99 at half load %.3f ms (goal <= 2 ms)\n",
              median(ratios), median(p99s));
  return errors > 0 ? 1 : 0;
}
