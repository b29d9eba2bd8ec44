// HTTP message types and response helpers shared by the gateway's handlers. Error bodies use
// the OpenAI shape: {"error":{"message","type","param","code"}}.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/value.hpp>

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace infergate::gateway {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// Lets a handler send its response progressively (server-sent events) and learn that the client
// went away while it works. The server provides one per request; use it only from the
// handler's coroutine (the connection's strand).
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  // Sends the status line and headers, then the body in chunks (chunked transfer encoding).
  // Each returns false when the client is gone; the handler should stop writing then.
  virtual boost::asio::awaitable<bool> start(Response& header) = 0;
  virtual boost::asio::awaitable<bool> write(std::string_view data) = 0;
  virtual boost::asio::awaitable<bool> finish() = 0;
  // on_gone runs (on the connection's strand) if the peer closes the connection before the
  // handler returns. One watch per request; it ends when the handler returns.
  virtual void watch_disconnect(std::function<void()> on_gone) = 0;
  bool started() const { return started_; }

 protected:
  bool started_ = false;
};

// What a handler knows about the request beyond the message itself.
struct RequestContext {
  std::string request_id;
  std::string route;                          // the matched pattern, e.g. "/v1/models"
  std::map<std::string, std::string> params;  // {name} segments of the pattern
  std::string_view path;                      // target without the query string
  std::string_view query;                     // after '?', possibly empty
  ResponseStream* stream = nullptr;           // set by the server for every request
};

Response json_response(http::status status, const boost::json::value& body,
                       unsigned version = 11);
// A response whose body is JSON text already written (by the hot paths that write their JSON
// directly rather than build a boost::json value first).
Response json_text_response(http::status status, std::string body, unsigned version = 11);

// Appends `s` to `out` as a JSON string: quoted, with '"', '\\' and the control characters
// below U+0020 escaped (RFC 8259 §7), every other byte as it is (as boost::json::serialize does).
void append_json_string(std::string& out, std::string_view s);

// type: invalid_request_error | authentication_error | permission_error | not_found_error |
// rate_limit_error | server_error ... ; code: a stable machine-readable string.
Response error_response(http::status status, std::string_view message, std::string_view type,
                        std::string_view code, std::optional<std::string_view> param = std::nullopt,
                        unsigned version = 11);

// Parses "a=1&b=x%20y" (percent- and plus-decoding). Throws std::invalid_argument on a bad
// escape.
std::map<std::string, std::string> parse_query(std::string_view query);

boost::json::object error_body(std::string_view message, std::string_view type,
                               std::string_view code,
                               std::optional<std::string_view> param = std::nullopt);

}  // namespace infergate::gateway
