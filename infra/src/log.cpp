#include "infergate/infra/log.h"

#include <boost/json/serialize.hpp>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "infergate/infra/time.h"

namespace infergate::infra::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::info)};
std::atomic<int> g_fd{2};

const char* level_name(Level l) {
  switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "info";
}
}  // namespace

Level parse_level(std::string_view s) {
  if (s == "debug") return Level::debug;
  if (s == "warn") return Level::warn;
  if (s == "error") return Level::error;
  return Level::info;
}

void set_level(Level level) { g_level.store(static_cast<int>(level)); }
bool enabled(Level level) { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }
void set_fd(int fd) { g_fd.store(fd); }

void write(Level level, std::string_view msg, boost::json::object fields) {
  boost::json::object line;
  line.reserve(fields.size() + 3);
  line["ts"] = format_rfc3339_millis(std::chrono::system_clock::now());
  line["level"] = level_name(level);
  line["msg"] = msg;
  for (auto& kv : fields) {
    // A field may not replace the line's own keys; keep it under another name instead.
    std::string key(kv.key());
    if (key == "ts" || key == "level" || key == "msg") key = "field_" + key;
    line[key] = std::move(kv.value());
  }
  std::string text = boost::json::serialize(line);
  text += '\n';
  // One write(2) per line: atomic for pipes up to PIPE_BUF and never interleaved mid-line for
  // regular files opened with O_APPEND; loop only on short writes.
  const char* p = text.data();
  std::size_t left = text.size();
  int fd = g_fd.load();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace infergate::infra::log
