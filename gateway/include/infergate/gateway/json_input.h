// Strict reading of JSON request bodies: the body must be a JSON object sent as
// application/json; each field is read with its expected type; finish() refuses any field
// nobody asked for. Every failure is a BadInput naming the offending field (OpenAI's `param`).
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "infergate/gateway/http.h"

namespace infergate::gateway {

class BadInput : public std::runtime_error {
 public:
  BadInput(std::string param, const std::string& message)
      : std::runtime_error(message), param_(std::move(param)) {}
  const std::string& param() const { return param_; }

 private:
  std::string param_;
};

// Throws BadInput for a wrong Content-Type, invalid JSON, or a non-object.
boost::json::object parse_json_object(const Request& req);

// A field that may be absent, null, or set.
template <class T>
struct Nullable {
  bool present = false;
  std::optional<T> value;  // nullopt with present = explicit null
};

class FieldReader {
 public:
  explicit FieldReader(const boost::json::object& obj, std::string prefix = "");

  std::optional<std::string> string(const std::string& name, bool required = false);
  std::optional<std::int64_t> integer(const std::string& name, std::int64_t min, std::int64_t max,
                                      bool required = false);
  Nullable<std::int64_t> nullable_integer(const std::string& name, std::int64_t min,
                                          std::int64_t max);
  std::optional<std::vector<std::string>> string_array(const std::string& name);
  std::optional<boost::json::object> object(const std::string& name);
  // Refuses fields that were not read.
  void finish() const;

 private:
  const boost::json::value* get(const std::string& name);
  std::string path(const std::string& name) const { return prefix_ + name; }
  const boost::json::object& obj_;
  std::string prefix_;
  std::set<std::string> read_;
};

// The query parameters of a request; refuses a bad escape and any name not in `allowed`.
std::map<std::string, std::string> query_params(const RequestContext& ctx,
                                                const std::vector<std::string>& allowed);

}  // namespace infergate::gateway
