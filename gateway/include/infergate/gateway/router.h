// Maps method + path to a handler. Patterns are literal segments or {name} captures
// ("/admin/v1/tenants/{id}"); literal segments win over captures. A path that matches no
// pattern is a 404; a path that matches with another method is a 405 listing the allowed ones.
// Built at startup, then read-only and shared by all io threads.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <string>
#include <vector>

#include "infergate/gateway/http.h"

namespace infergate::gateway {

using Handler = std::function<boost::asio::awaitable<Response>(Request&, RequestContext&)>;

class Router {
 public:
  void add(http::verb method, std::string pattern, Handler handler);

  struct Match {
    const Handler* handler = nullptr;  // null: see allowed
    std::string route;                 // the pattern; "unmatched" when none
    std::vector<http::verb> allowed;   // methods the path supports (for 405)
  };
  Match match(http::verb method, std::string_view path, RequestContext& ctx) const;

 private:
  struct Route {
    http::verb method;
    std::string pattern;
    std::vector<std::string> segments;
    Handler handler;
  };
  static bool matches(const Route& r, const std::vector<std::string_view>& segs,
                      RequestContext* ctx);
  std::vector<Route> routes_;
};

// Turns a router miss into the response: 404 or 405 (with Allow), OpenAI error shape.
Response route_miss_response(const Router::Match& m, const Request& req);

}  // namespace infergate::gateway
