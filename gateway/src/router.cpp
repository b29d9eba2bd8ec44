#include "infergate/gateway/router.h"

#include <algorithm>

namespace infergate::gateway {
namespace {

std::vector<std::string_view> split(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

bool is_capture(std::string_view s) { return s.size() > 2 && s.front() == '{' && s.back() == '}'; }

}  // namespace

void Router::add(http::verb method, std::string pattern, Handler handler) {
  Route r{method, pattern, {}, std::move(handler)};
  for (auto s : split(pattern)) r.segments.emplace_back(s);
  routes_.push_back(std::move(r));
  // Literal segments before captures, so /tenants/export beats /tenants/{id}.
  std::stable_sort(routes_.begin(), routes_.end(), [](const Route& a, const Route& b) {
    auto caps = [](const Route& route) {
      return std::count_if(route.segments.begin(), route.segments.end(),
                           [](const std::string& s) { return is_capture(s); });
    };
    return caps(a) < caps(b);
  });
}

bool Router::matches(const Route& r, const std::vector<std::string_view>& segs,
                     RequestContext* ctx) {
  if (r.segments.size() != segs.size()) return false;
  for (std::size_t i = 0; i < segs.size(); ++i) {
    const auto& p = r.segments[i];
    if (is_capture(p)) {
      if (segs[i].empty()) return false;
    } else if (p != segs[i]) {
      return false;
    }
  }
  if (ctx) {
    for (std::size_t i = 0; i < segs.size(); ++i)
      if (is_capture(r.segments[i]))
        ctx->params[r.segments[i].substr(1, r.segments[i].size() - 2)] = std::string(segs[i]);
  }
  return true;
}

Router::Match Router::match(http::verb method, std::string_view path, RequestContext& ctx) const {
  Match m;
  auto segs = split(path);
  for (const auto& r : routes_) {
    if (!matches(r, segs, nullptr)) continue;
    if (r.method == method || (method == http::verb::head && r.method == http::verb::get)) {
      matches(r, segs, &ctx);
      m.handler = &r.handler;
      m.route = r.pattern;
      m.allowed.clear();
      return m;
    }
    if (m.route.empty()) m.route = r.pattern;
    if (std::find(m.allowed.begin(), m.allowed.end(), r.method) == m.allowed.end())
      m.allowed.push_back(r.method);
  }
  if (m.route.empty()) m.route = "unmatched";
  return m;
}

Response route_miss_response(const Router::Match& m, const Request& req) {
  std::string method(req.method_string());
  std::string path(req.target().substr(0, req.target().find('?')));
  if (m.allowed.empty()) {
    return error_response(http::status::not_found,
                          "Unknown route " + method + " " + path +
                              ". See docs/api.md for the available endpoints.",
                          "invalid_request_error", "not_found", std::nullopt, req.version());
  }
  std::string allow;
  for (auto v : m.allowed) {
    if (!allow.empty()) allow += ", ";
    allow += std::string(http::to_string(v));
  }
  auto res = error_response(
      http::status::method_not_allowed,
      "Method " + method + " is not allowed on " + path + ". Allowed: " + allow + ".",
      "invalid_request_error", "method_not_allowed", std::nullopt, req.version());
  res.set(http::field::allow, allow);
  return res;
}

}  // namespace infergate::gateway
