// The errors an API handler can raise, turned into OpenAI-shaped responses in one place:
// BadInput -> 400 invalid_request (with `param`), store errors (accounts and billing) -> 400,
// 404 not_found or 409 conflict, Postgres unreachable or slow -> 503. Anything else propagates
// (the server answers 500).
#pragma once

#include <boost/asio/awaitable.hpp>

#include <functional>

#include "infergate/gateway/http.h"

namespace infergate::gateway {

using ResponseBody = std::function<boost::asio::awaitable<Response>()>;

boost::asio::awaitable<Response> with_error_responses(const Request& req,
                                                      const ResponseBody& body);

}  // namespace infergate::gateway
