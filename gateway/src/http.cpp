#include "infergate/gateway/http.h"

#include <boost/json/serialize.hpp>

namespace infergate::gateway {

Response json_response(http::status status, const boost::json::value& body, unsigned version) {
  Response res{status, version};
  res.set(http::field::content_type, "application/json");
  res.body() = boost::json::serialize(body);
  return res;
}

boost::json::object error_body(std::string_view message, std::string_view type,
                               std::string_view code, std::optional<std::string_view> param) {
  boost::json::object err;
  err["message"] = message;
  err["type"] = type;
  err["param"] = param ? boost::json::value(*param) : boost::json::value(nullptr);
  err["code"] = code;
  boost::json::object body;
  body["error"] = std::move(err);
  return body;
}

Response error_response(http::status status, std::string_view message, std::string_view type,
                        std::string_view code, std::optional<std::string_view> param,
                        unsigned version) {
  return json_response(status, error_body(message, type, code, param), version);
}

}  // namespace infergate::gateway
