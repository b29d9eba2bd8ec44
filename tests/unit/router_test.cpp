// Router: literal and {capture} segments, precedence, HEAD, and the 404/405 responses.
#include "infergate/gateway/router.h"

#include <map>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace infergate::gateway {
namespace {

// Not a lambda coroutine: the text travels in the coroutine frame, not in a closure.
boost::asio::awaitable<Response> respond(std::string text) {
  Response res{http::status::ok, 11};
  res.body() = std::move(text);
  co_return res;
}

Handler named(std::string text) {
  return [text = std::move(text)](Request&, RequestContext&) { return respond(text); };
}

// Runs a matched handler to completion and returns its body.
std::string run(const Handler& handler) {
  boost::asio::io_context io;
  Request req{http::verb::get, "/", 11};
  RequestContext ctx;
  auto fut = boost::asio::co_spawn(io, handler(req, ctx), boost::asio::use_future);
  io.run();
  return fut.get().body();
}

TEST(RouterTest, ExactMatch) {
  Router r;
  r.add(http::verb::get, "/v1/models", named("models"));
  r.add(http::verb::post, "/v1/chat/completions", named("chat"));
  RequestContext ctx;
  auto m = r.match(http::verb::get, "/v1/models", ctx);
  ASSERT_NE(m.handler, nullptr);
  EXPECT_EQ(m.route, "/v1/models");
  EXPECT_TRUE(m.allowed.empty());
  EXPECT_TRUE(ctx.params.empty());
  EXPECT_EQ(run(*m.handler), "models");

  m = r.match(http::verb::post, "/v1/chat/completions", ctx);
  ASSERT_NE(m.handler, nullptr);
  EXPECT_EQ(m.route, "/v1/chat/completions");
  EXPECT_EQ(run(*m.handler), "chat");
}

TEST(RouterTest, PrefixOrLongerPathDoesNotMatch) {
  Router r;
  r.add(http::verb::get, "/v1/models", named("models"));
  RequestContext ctx;
  for (const char* path : {"/v1", "/v1/models/extra", "/v1/model", "/v2/models", "/"}) {
    auto m = r.match(http::verb::get, path, ctx);
    EXPECT_EQ(m.handler, nullptr) << path;
    EXPECT_EQ(m.route, "unmatched") << path;
    EXPECT_TRUE(m.allowed.empty()) << path;
  }
}

TEST(RouterTest, CaptureGoesIntoParams) {
  Router r;
  r.add(http::verb::get, "/admin/v1/tenants/{id}", named("tenant"));
  r.add(http::verb::delete_, "/admin/v1/tenants/{tenant}/keys/{key}", named("key"));
  RequestContext ctx;
  auto m = r.match(http::verb::get, "/admin/v1/tenants/t_42", ctx);
  ASSERT_NE(m.handler, nullptr);
  EXPECT_EQ(m.route, "/admin/v1/tenants/{id}");
  EXPECT_EQ(ctx.params, (std::map<std::string, std::string>{{"id", "t_42"}}));
  EXPECT_EQ(run(*m.handler), "tenant");

  RequestContext ctx2;
  m = r.match(http::verb::delete_, "/admin/v1/tenants/t_1/keys/k_2", ctx2);
  ASSERT_NE(m.handler, nullptr);
  EXPECT_EQ(m.route, "/admin/v1/tenants/{tenant}/keys/{key}");
  EXPECT_EQ(ctx2.params, (std::map<std::string, std::string>{{"tenant", "t_1"}, {"key", "k_2"}}));
}

TEST(RouterTest, LiteralBeatsCaptureRegardlessOfAddOrder) {
  for (bool capture_first : {true, false}) {
    Router r;
    if (capture_first) {
      r.add(http::verb::get, "/admin/v1/tenants/{id}", named("by-id"));
      r.add(http::verb::get, "/admin/v1/tenants/export", named("export"));
    } else {
      r.add(http::verb::get, "/admin/v1/tenants/export", named("export"));
      r.add(http::verb::get, "/admin/v1/tenants/{id}", named("by-id"));
    }
    RequestContext ctx;
    auto m = r.match(http::verb::get, "/admin/v1/tenants/export", ctx);
    ASSERT_NE(m.handler, nullptr);
    EXPECT_EQ(m.route, "/admin/v1/tenants/export") << "capture_first=" << capture_first;
    EXPECT_TRUE(ctx.params.empty());
    EXPECT_EQ(run(*m.handler), "export");

    RequestContext ctx2;
    m = r.match(http::verb::get, "/admin/v1/tenants/t_9", ctx2);
    ASSERT_NE(m.handler, nullptr);
    EXPECT_EQ(m.route, "/admin/v1/tenants/{id}");
    EXPECT_EQ(ctx2.params.at("id"), "t_9");
    EXPECT_EQ(run(*m.handler), "by-id");
  }
}

TEST(RouterTest, HeadMatchesGet) {
  Router r;
  r.add(http::verb::get, "/healthz", named("health"));
  RequestContext ctx;
  auto m = r.match(http::verb::head, "/healthz", ctx);
  ASSERT_NE(m.handler, nullptr);
  EXPECT_EQ(m.route, "/healthz");
  // Not the other way round, and not for other methods.
  r.add(http::verb::head, "/only-head", named("head"));
  EXPECT_EQ(r.match(http::verb::get, "/only-head", ctx).handler, nullptr);
  r.add(http::verb::post, "/only-post", named("post"));
  auto miss = r.match(http::verb::head, "/only-post", ctx);
  EXPECT_EQ(miss.handler, nullptr);
  EXPECT_EQ(miss.allowed, std::vector<http::verb>{http::verb::post});
}

TEST(RouterTest, WrongMethodListsAllowedMethods) {
  Router r;
  r.add(http::verb::get, "/admin/v1/tenants/{id}", named("get"));
  r.add(http::verb::patch, "/admin/v1/tenants/{id}", named("patch"));
  r.add(http::verb::get, "/v1/models", named("models"));
  RequestContext ctx;
  auto m = r.match(http::verb::post, "/admin/v1/tenants/t_1", ctx);
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_EQ(m.route, "/admin/v1/tenants/{id}");
  EXPECT_EQ(m.allowed, (std::vector<http::verb>{http::verb::get, http::verb::patch}));
  EXPECT_TRUE(ctx.params.empty());  // a miss fills no params
}

TEST(RouterTest, MethodNotAllowedResponse) {
  Router r;
  r.add(http::verb::get, "/v1/models", named("list"));
  r.add(http::verb::post, "/v1/models", named("create"));
  RequestContext ctx;
  auto m = r.match(http::verb::delete_, "/v1/models", ctx);
  ASSERT_EQ(m.handler, nullptr);
  Request req{http::verb::delete_, "/v1/models?limit=3", 11};
  Response res = route_miss_response(m, req);
  EXPECT_EQ(res.result(), http::status::method_not_allowed);
  EXPECT_EQ(res.version(), 11u);
  EXPECT_EQ(std::string(res[http::field::allow]), "GET, POST");
  EXPECT_EQ(std::string(res[http::field::content_type]), "application/json");
  EXPECT_EQ(boost::json::parse(res.body()), boost::json::parse(R"({"error":{
                "message":"Method DELETE is not allowed on /v1/models. Allowed: GET, POST.",
                "type":"invalid_request_error","param":null,"code":"method_not_allowed"}})"));
}

TEST(RouterTest, NotFoundResponse) {
  Router r;
  r.add(http::verb::get, "/v1/models", named("list"));
  RequestContext ctx;
  auto m = r.match(http::verb::get, "/v1/nope", ctx);
  ASSERT_EQ(m.handler, nullptr);
  EXPECT_EQ(m.route, "unmatched");
  Request req{http::verb::get, "/v1/nope?x=1", 10};
  Response res = route_miss_response(m, req);
  EXPECT_EQ(res.result(), http::status::not_found);
  EXPECT_EQ(res.version(), 10u);  // answers in the request's HTTP version
  EXPECT_EQ(res.find(http::field::allow), res.end());
  EXPECT_EQ(std::string(res[http::field::content_type]), "application/json");
  EXPECT_EQ(boost::json::parse(res.body()), boost::json::parse(R"({"error":{
                "message":"Unknown route GET /v1/nope. See docs/api.md for the available endpoints.",
                "type":"invalid_request_error","param":null,"code":"not_found"}})"));
}

// Two routes can match the same path with the same method (a literal and a capture); Allow
// must still name each method once.
TEST(RouterTest, AllowHeaderListsEachMethodOnce) {
  Router r;
  r.add(http::verb::get, "/admin/v1/tenants/export", named("export"));
  r.add(http::verb::get, "/admin/v1/tenants/{id}", named("by-id"));
  RequestContext ctx;
  auto m = r.match(http::verb::post, "/admin/v1/tenants/export", ctx);
  ASSERT_EQ(m.handler, nullptr);
  Response res = route_miss_response(m, Request{http::verb::post, "/admin/v1/tenants/export", 11});
  EXPECT_EQ(std::string(res[http::field::allow]), "GET");
}

TEST(RouterTest, EmptySegmentsAndTrailingSlashesAreIgnored) {
  Router r;
  r.add(http::verb::get, "/v1/models", named("models"));
  r.add(http::verb::get, "/t/{id}/x", named("x"));
  r.add(http::verb::get, "/", named("root"));
  RequestContext ctx;
  for (const char* path : {"/v1/models/", "//v1//models", "v1/models", "/v1/models//"}) {
    auto m = r.match(http::verb::get, path, ctx);
    ASSERT_NE(m.handler, nullptr) << path;
    EXPECT_EQ(m.route, "/v1/models") << path;
  }
  // An empty segment cannot fill a capture: "/t//x" is the two segments "t", "x".
  EXPECT_EQ(r.match(http::verb::get, "/t//x", ctx).handler, nullptr);
  EXPECT_EQ(r.match(http::verb::get, "/t//x", ctx).route, "unmatched");
  // The root pattern has no segments; so has the empty path.
  EXPECT_EQ(r.match(http::verb::get, "/", ctx).route, "/");
  EXPECT_EQ(r.match(http::verb::get, "", ctx).route, "/");
  EXPECT_EQ(r.match(http::verb::get, "//", ctx).route, "/");
}

TEST(RouterTest, BracesAloneAreALiteral) {
  Router r;
  r.add(http::verb::get, "/a/{}", named("literal"));
  RequestContext ctx;
  EXPECT_EQ(r.match(http::verb::get, "/a/x", ctx).handler, nullptr);
  EXPECT_NE(r.match(http::verb::get, "/a/{}", ctx).handler, nullptr);
}

TEST(RouterTest, CaptureTakesTheRawSegment) {
  Router r;
  r.add(http::verb::get, "/files/{name}", named("file"));
  RequestContext ctx;
  auto m = r.match(http::verb::get, "/files/a%2Fb.txt", ctx);
  ASSERT_NE(m.handler, nullptr);
  EXPECT_EQ(ctx.params.at("name"), "a%2Fb.txt");
}

}  // namespace
}  // namespace infergate::gateway
