#include "infergate/gateway/json_input.h"

#include <boost/json/parse.hpp>

#include <algorithm>

namespace infergate::gateway {

namespace json = boost::json;

json::object parse_json_object(const Request& req) {
  // The media type, case-insensitively, without parameters (RFC 9110 §8.3.1).
  std::string_view ct = req[http::field::content_type];
  std::string type(ct.substr(0, ct.find(';')));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.pop_back();
  for (auto& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (type != "application/json")
    throw BadInput("", "Send the body as JSON with 'Content-Type: application/json'.");
  json::error_code ec;
  json::value v = json::parse(req.body(), ec);
  if (ec) throw BadInput("", "The body is not valid JSON: " + ec.message() + ".");
  if (!v.is_object()) throw BadInput("", "The body must be a JSON object.");
  return std::move(v.as_object());
}

FieldReader::FieldReader(const json::object& obj, std::string prefix)
    : obj_(obj), prefix_(std::move(prefix)) {}

const json::value* FieldReader::get(const std::string& name) {
  read_.insert(name);
  auto it = obj_.find(name);
  return it == obj_.end() ? nullptr : &it->value();
}

std::optional<std::string> FieldReader::string(const std::string& name, bool required) {
  const json::value* v = get(name);
  if (!v) {
    if (required) throw BadInput(path(name), "'" + path(name) + "' is required.");
    return std::nullopt;
  }
  if (!v->is_string()) throw BadInput(path(name), "'" + path(name) + "' must be a string.");
  return std::string(v->as_string());
}

std::optional<std::int64_t> FieldReader::integer(const std::string& name, std::int64_t min,
                                                 std::int64_t max, bool required) {
  const json::value* v = get(name);
  if (!v) {
    if (required) throw BadInput(path(name), "'" + path(name) + "' is required.");
    return std::nullopt;
  }
  // Boost.JSON keeps every integer that fits in int64 as int64; uint64 means larger.
  if (v->is_uint64())
    throw BadInput(path(name), "'" + path(name) + "' must be at most " + std::to_string(max) + ".");
  if (!v->is_int64()) throw BadInput(path(name), "'" + path(name) + "' must be an integer.");
  const std::int64_t n = v->as_int64();
  if (n < min || n > max)
    throw BadInput(path(name), "'" + path(name) + "' must be between " + std::to_string(min) +
                                   " and " + std::to_string(max) + ", got " + std::to_string(n) +
                                   ".");
  return n;
}

Nullable<std::int64_t> FieldReader::nullable_integer(const std::string& name, std::int64_t min,
                                                     std::int64_t max) {
  Nullable<std::int64_t> out;
  const json::value* v = get(name);
  if (!v) return out;
  out.present = true;
  if (v->is_null()) return out;
  read_.erase(name);  // integer() records it again
  out.value = integer(name, min, max);
  return out;
}

std::optional<std::vector<std::string>> FieldReader::string_array(const std::string& name) {
  const json::value* v = get(name);
  if (!v) return std::nullopt;
  if (!v->is_array())
    throw BadInput(path(name), "'" + path(name) + "' must be an array of strings.");
  std::vector<std::string> out;
  for (const auto& e : v->as_array()) {
    if (!e.is_string())
      throw BadInput(path(name), "'" + path(name) + "' must be an array of strings.");
    out.emplace_back(e.as_string());
  }
  return out;
}

std::optional<json::object> FieldReader::object(const std::string& name) {
  const json::value* v = get(name);
  if (!v) return std::nullopt;
  if (!v->is_object()) throw BadInput(path(name), "'" + path(name) + "' must be an object.");
  return v->as_object();
}

std::map<std::string, std::string> query_params(const RequestContext& ctx,
                                                const std::vector<std::string>& allowed) {
  std::map<std::string, std::string> q;
  try {
    q = parse_query(ctx.query);
  } catch (const std::invalid_argument& e) {
    throw BadInput("", e.what());
  }
  for (const auto& [k, v] : q)
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end())
      throw BadInput(k, "Unknown query parameter '" + k + "'.");
  return q;
}

void FieldReader::finish() const {
  for (const auto& kv : obj_) {
    std::string key(kv.key());
    if (!read_.count(key))
      throw BadInput(path(key), "Unknown field '" + path(key) + "'.");
  }
}

}  // namespace infergate::gateway
