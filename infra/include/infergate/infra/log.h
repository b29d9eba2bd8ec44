// Structured logging: one JSON object per line on stderr, e.g.
//   {"ts":"2026-11-22T01:02:03.456Z","level":"info","msg":"request","request_id":"req_…"}
// Thread-safe; a line is written with a single write so lines never interleave.
#pragma once

#include <boost/json/object.hpp>

#include <string_view>

namespace infergate::infra::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

// Parses "debug" | "info" | "warn" | "error"; anything else is info.
Level parse_level(std::string_view s);
void set_level(Level level);
bool enabled(Level level);

// Where lines go; by default stderr (fd 2). Tests point it elsewhere.
void set_fd(int fd);

void write(Level level, std::string_view msg, boost::json::object fields = {});

inline void debug(std::string_view msg, boost::json::object fields = {}) {
  if (enabled(Level::debug)) write(Level::debug, msg, std::move(fields));
}
inline void info(std::string_view msg, boost::json::object fields = {}) {
  if (enabled(Level::info)) write(Level::info, msg, std::move(fields));
}
inline void warn(std::string_view msg, boost::json::object fields = {}) {
  if (enabled(Level::warn)) write(Level::warn, msg, std::move(fields));
}
inline void error(std::string_view msg, boost::json::object fields = {}) {
  write(Level::error, msg, std::move(fields));
}

}  // namespace infergate::infra::log
