// HTTP message types and response helpers shared by the gateway's handlers. Error bodies use
// the OpenAI shape: {"error":{"message","type","param","code"}}.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/value.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace infergate::gateway {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// What a handler knows about the request beyond the message itself.
struct RequestContext {
  std::string request_id;
  std::string route;                          // the matched pattern, e.g. "/v1/models"
  std::map<std::string, std::string> params;  // {name} segments of the pattern
  std::string_view path;                      // target without the query string
  std::string_view query;                     // after '?', possibly empty
};

Response json_response(http::status status, const boost::json::value& body,
                       unsigned version = 11);

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
