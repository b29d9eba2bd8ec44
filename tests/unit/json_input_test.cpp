// Strict JSON request bodies (parse_json_object, FieldReader) and query-string parsing.
#include "infergate/gateway/json_input.h"

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "infergate/gateway/http.h"

namespace infergate::gateway {
namespace {

namespace json = boost::json;

Request post(std::string body, std::optional<std::string> content_type = "application/json") {
  Request req{http::verb::post, "/admin/v1/plans", 11};
  if (content_type) req.set(http::field::content_type, *content_type);
  req.body() = std::move(body);
  req.prepare_payload();
  return req;
}

json::object obj(const std::string& text) { return json::parse(text).as_object(); }

// Runs fn, expecting BadInput; returns it (or fails the test).
template <class Fn>
std::optional<BadInput> bad_input(Fn fn) {
  try {
    fn();
  } catch (const BadInput& e) {
    return e;
  }
  ADD_FAILURE() << "expected BadInput";
  return std::nullopt;
}

// ---- parse_json_object -------------------------------------------------------------------

TEST(ParseJsonObjectTest, AcceptsObject) {
  json::object o = parse_json_object(post(R"({"name":"pro","n":3})"));
  EXPECT_EQ(o.size(), 2u);
  EXPECT_EQ(o.at("name").as_string(), "pro");
  EXPECT_EQ(o.at("n").as_int64(), 3);
}

TEST(ParseJsonObjectTest, AcceptsContentTypeWithCharset) {
  json::object o = parse_json_object(post(R"({"a":1})", "application/json; charset=utf-8"));
  EXPECT_EQ(o.at("a").as_int64(), 1);
}

// Media types are case-insensitive (RFC 9110 §8.3.1); a client sending "Application/JSON"
// sends JSON.
TEST(ParseJsonObjectTest, ContentTypeIsCaseInsensitive) {
  for (const char* ct : {"Application/JSON", "APPLICATION/JSON; charset=utf-8", "application/Json"}) {
    json::object o;
    EXPECT_NO_THROW(o = parse_json_object(post(R"({"a":1})", ct))) << ct;
    EXPECT_EQ(o.size(), 1u) << ct;
  }
}

TEST(ParseJsonObjectTest, AcceptsEmptyObject) {
  EXPECT_TRUE(parse_json_object(post("{}")).empty());
}

TEST(ParseJsonObjectTest, RejectsMissingContentType) {
  auto e = bad_input([] { parse_json_object(post(R"({"a":1})", std::nullopt)); });
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param(), "");
  EXPECT_NE(std::string(e->what()).find("application/json"), std::string::npos) << e->what();
}

TEST(ParseJsonObjectTest, RejectsWrongContentType) {
  for (const char* ct : {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                         "", "application/jso", "text/json"}) {
    auto e = bad_input([ct] { parse_json_object(post(R"({"a":1})", ct)); });
    ASSERT_TRUE(e) << ct;
    EXPECT_EQ(e->param(), "") << ct;
  }
}

TEST(ParseJsonObjectTest, RejectsInvalidJson) {
  for (const char* body : {"", "{", "{\"a\":}", "{'a':1}", "{\"a\":1,}", "{\"a\":1} x", "nul"}) {
    auto e = bad_input([body] { parse_json_object(post(body)); });
    ASSERT_TRUE(e) << body;
    EXPECT_EQ(e->param(), "") << body;
    EXPECT_NE(std::string(e->what()).find("not valid JSON"), std::string::npos) << e->what();
  }
}

TEST(ParseJsonObjectTest, RejectsNonObjects) {
  for (const char* body : {"[]", "[{\"a\":1}]", "1", "\"x\"", "null", "true"}) {
    auto e = bad_input([body] { parse_json_object(post(body)); });
    ASSERT_TRUE(e) << body;
    EXPECT_EQ(e->param(), "") << body;
    EXPECT_NE(std::string(e->what()).find("must be a JSON object"), std::string::npos)
        << e->what();
  }
}

// ---- FieldReader: strings ----------------------------------------------------------------

TEST(FieldReaderTest, StringPresent) {
  auto o = obj(R"({"name":"pro"})");
  FieldReader r(o);
  EXPECT_EQ(r.string("name"), std::optional<std::string>("pro"));
  EXPECT_EQ(r.string("name", true), std::optional<std::string>("pro"));
  EXPECT_NO_THROW(r.finish());
}

TEST(FieldReaderTest, StringAbsentOptional) {
  auto o = obj("{}");
  FieldReader r(o);
  EXPECT_EQ(r.string("name"), std::nullopt);
  EXPECT_NO_THROW(r.finish());
}

TEST(FieldReaderTest, StringRequiredMissing) {
  auto o = obj("{}");
  FieldReader r(o);
  auto e = bad_input([&] { r.string("name", true); });
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param(), "name");
  EXPECT_STREQ(e->what(), "'name' is required.");
}

TEST(FieldReaderTest, StringWrongType) {
  for (const char* text : {R"({"name":1})", R"({"name":null})", R"({"name":["a"]})",
                           R"({"name":{"a":"b"}})", R"({"name":true})"}) {
    auto o = obj(text);
    FieldReader r(o);
    auto e = bad_input([&] { r.string("name"); });
    ASSERT_TRUE(e) << text;
    EXPECT_EQ(e->param(), "name");
    EXPECT_STREQ(e->what(), "'name' must be a string.");
  }
}

// ---- FieldReader: integers ---------------------------------------------------------------

TEST(FieldReaderTest, IntegerWithinBounds) {
  auto o = obj(R"({"a":0,"b":100,"c":-5})");
  FieldReader r(o);
  EXPECT_EQ(r.integer("a", 0, 100), std::optional<std::int64_t>(0));
  EXPECT_EQ(r.integer("b", 0, 100), std::optional<std::int64_t>(100));
  EXPECT_EQ(r.integer("c", -5, 5), std::optional<std::int64_t>(-5));
  EXPECT_EQ(r.integer("missing", 0, 1), std::nullopt);
  EXPECT_NO_THROW(r.finish());
}

TEST(FieldReaderTest, IntegerFullInt64Range) {
  auto o = obj(R"({"max":9223372036854775807,"min":-9223372036854775808})");
  FieldReader r(o);
  constexpr auto lo = std::numeric_limits<std::int64_t>::min();
  constexpr auto hi = std::numeric_limits<std::int64_t>::max();
  EXPECT_EQ(r.integer("max", lo, hi), std::optional<std::int64_t>(hi));
  EXPECT_EQ(r.integer("min", lo, hi), std::optional<std::int64_t>(lo));
}

TEST(FieldReaderTest, IntegerAboveMax) {
  auto o = obj(R"({"n":101})");
  FieldReader r(o);
  auto e = bad_input([&] { r.integer("n", 0, 100); });
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param(), "n");
  EXPECT_STREQ(e->what(), "'n' must be between 0 and 100, got 101.");
}

TEST(FieldReaderTest, IntegerBelowMin) {
  auto o = obj(R"({"n":-1})");
  FieldReader r(o);
  auto e = bad_input([&] { r.integer("n", 0, 100); });
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param(), "n");
  EXPECT_STREQ(e->what(), "'n' must be between 0 and 100, got -1.");
}

TEST(FieldReaderTest, IntegerRejectsDoubles) {
  for (const char* text : {R"({"n":1.5})", R"({"n":2.0})", R"({"n":1e2})", R"({"n":-0.5})"}) {
    auto o = obj(text);
    FieldReader r(o);
    auto e = bad_input([&] { r.integer("n", -1000, 1000); });
    ASSERT_TRUE(e) << text;
    EXPECT_EQ(e->param(), "n");
    EXPECT_STREQ(e->what(), "'n' must be an integer.");
  }
}

TEST(FieldReaderTest, IntegerRejectsOtherTypes) {
  for (const char* text : {R"({"n":"5"})", R"({"n":null})", R"({"n":true})", R"({"n":[5]})"}) {
    auto o = obj(text);
    FieldReader r(o);
    auto e = bad_input([&] { r.integer("n", 0, 10); });
    ASSERT_TRUE(e) << text;
    EXPECT_EQ(e->param(), "n");
    EXPECT_STREQ(e->what(), "'n' must be an integer.");
  }
}

TEST(FieldReaderTest, IntegerRejectsHugeValues) {
  // Beyond int64: uint64 range, and beyond uint64 (parsed as a double).
  for (const char* text : {R"({"n":9223372036854775808})", R"({"n":18446744073709551615})",
                           R"({"n":100000000000000000000})", R"({"n":-100000000000000000000})"}) {
    auto o = obj(text);
    FieldReader r(o);
    auto e = bad_input([&] {
      r.integer("n", std::numeric_limits<std::int64_t>::min(),
                std::numeric_limits<std::int64_t>::max());
    });
    ASSERT_TRUE(e) << text;
    EXPECT_EQ(e->param(), "n") << text;
  }
}

TEST(FieldReaderTest, IntegerRequiredMissing) {
  auto o = obj("{}");
  FieldReader r(o);
  auto e = bad_input([&] { r.integer("n", 0, 10, true); });
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param(), "n");
  EXPECT_STREQ(e->what(), "'n' is required.");
}

TEST(FieldReaderTest, NullableInteger) {
  auto o = obj(R"({"set":7,"cleared":null})");
  FieldReader r(o);
  Nullable<std::int64_t> absent = r.nullable_integer("absent", 0, 10);
  EXPECT_FALSE(absent.present);
  EXPECT_FALSE(absent.value.has_value());
  Nullable<std::int64_t> cleared = r.nullable_integer("cleared", 0, 10);
  EXPECT_TRUE(cleared.present);
  EXPECT_FALSE(cleared.value.has_value());
  Nullable<std::int64_t> set = r.nullable_integer("set", 0, 10);
  EXPECT_TRUE(set.present);
  EXPECT_EQ(set.value, std::optional<std::int64_t>(7));
  EXPECT_NO_THROW(r.finish());  // all three count as read
}

TEST(FieldReaderTest, NullableIntegerChecksBoundsAndType) {
  auto o = obj(R"({"big":11,"frac":0.5,"text":"1"})");
  FieldReader r(o, "limits.");
  auto big = bad_input([&] { r.nullable_integer("big", 0, 10); });
  ASSERT_TRUE(big);
  EXPECT_EQ(big->param(), "limits.big");
  EXPECT_STREQ(big->what(), "'limits.big' must be between 0 and 10, got 11.");
  auto frac = bad_input([&] { r.nullable_integer("frac", 0, 10); });
  ASSERT_TRUE(frac);
  EXPECT_EQ(frac->param(), "limits.frac");
  auto text = bad_input([&] { r.nullable_integer("text", 0, 10); });
  ASSERT_TRUE(text);
  EXPECT_EQ(text->param(), "limits.text");
}

// ---- FieldReader: arrays and objects -----------------------------------------------------

TEST(FieldReaderTest, StringArray) {
  auto o = obj(R"({"tiers":["standard","premium"],"none":[]})");
  FieldReader r(o);
  EXPECT_EQ(r.string_array("tiers"), (std::optional<std::vector<std::string>>(
                                         std::vector<std::string>{"standard", "premium"})));
  EXPECT_EQ(r.string_array("none"),
            (std::optional<std::vector<std::string>>(std::vector<std::string>{})));
  EXPECT_EQ(r.string_array("absent"), std::nullopt);
  EXPECT_NO_THROW(r.finish());
}

TEST(FieldReaderTest, StringArrayWrongTypes) {
  for (const char* text : {R"({"tiers":["a",1]})", R"({"tiers":[null]})", R"({"tiers":[["a"]]})",
                           R"({"tiers":"a"})", R"({"tiers":null})", R"({"tiers":{"a":"b"}})"}) {
    auto o = obj(text);
    FieldReader r(o);
    auto e = bad_input([&] { r.string_array("tiers"); });
    ASSERT_TRUE(e) << text;
    EXPECT_EQ(e->param(), "tiers");
    EXPECT_STREQ(e->what(), "'tiers' must be an array of strings.");
  }
}

TEST(FieldReaderTest, Object) {
  auto o = obj(R"({"limits":{"rpm":10},"bad":[1]})");
  FieldReader r(o);
  auto limits = r.object("limits");
  ASSERT_TRUE(limits.has_value());
  EXPECT_EQ(limits->at("rpm").as_int64(), 10);
  EXPECT_EQ(r.object("absent"), std::nullopt);
  auto e = bad_input([&] { r.object("bad"); });
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param(), "bad");
  EXPECT_STREQ(e->what(), "'bad' must be an object.");
}

// ---- FieldReader: finish() and prefixes --------------------------------------------------

TEST(FieldReaderTest, FinishReportsFirstUnknownField) {
  auto o = obj(R"({"name":"x","extra":1,"more":2})");
  FieldReader r(o);
  r.string("name");
  auto e = bad_input([&] { r.finish(); });
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param(), "extra");
  EXPECT_STREQ(e->what(), "Unknown field 'extra'.");
}

TEST(FieldReaderTest, FinishCountsAbsentFieldsAsRead) {
  auto o = obj(R"({"a":"x"})");
  FieldReader r(o);
  r.string("a");
  r.string("b");
  r.integer("c", 0, 1);
  EXPECT_NO_THROW(r.finish());
}

TEST(FieldReaderTest, FinishRefusesFieldsNobodyAskedFor) {
  auto o = obj(R"({"a":"x"})");
  FieldReader r(o);
  auto e = bad_input([&] { r.finish(); });
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param(), "a");
}

TEST(FieldReaderTest, PrefixAppliesToParams) {
  auto outer = obj(R"({"limits":{"tokens_per_day":-1,"requests_per_minute":"x","junk":true}})");
  FieldReader top(outer);
  auto limits = top.object("limits");
  ASSERT_TRUE(limits.has_value());
  EXPECT_NO_THROW(top.finish());

  FieldReader r(*limits, "limits.");
  auto tokens = bad_input([&] { r.integer("tokens_per_day", 0, 1000000); });
  ASSERT_TRUE(tokens);
  EXPECT_EQ(tokens->param(), "limits.tokens_per_day");
  EXPECT_STREQ(tokens->what(), "'limits.tokens_per_day' must be between 0 and 1000000, got -1.");
  auto rpm = bad_input([&] { r.integer("requests_per_minute", 0, 100); });
  ASSERT_TRUE(rpm);
  EXPECT_EQ(rpm->param(), "limits.requests_per_minute");
  auto missing = bad_input([&] { r.string("name", true); });
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->param(), "limits.name");
  EXPECT_STREQ(missing->what(), "'limits.name' is required.");
  auto unknown = bad_input([&] { r.finish(); });
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->param(), "limits.junk");
  EXPECT_STREQ(unknown->what(), "Unknown field 'limits.junk'.");
}

// ---- parse_query -------------------------------------------------------------------------

using Query = std::map<std::string, std::string>;

TEST(ParseQueryTest, DecodesPercentAndPlus) {
  EXPECT_EQ(parse_query("a=1&b=x%20y&c=d+e"), (Query{{"a", "1"}, {"b", "x y"}, {"c", "d e"}}));
}

TEST(ParseQueryTest, DecodesKeysAndMixedCaseEscapes) {
  EXPECT_EQ(parse_query("na%6De=%2f%2F%3d"), (Query{{"name", "//="}}));
  EXPECT_EQ(parse_query("q=a%2Bb"), (Query{{"q", "a+b"}}));  // an escaped plus stays a plus
}

TEST(ParseQueryTest, Empty) {
  EXPECT_TRUE(parse_query("").empty());
  EXPECT_TRUE(parse_query("&").empty());
  EXPECT_TRUE(parse_query("&&").empty());
}

TEST(ParseQueryTest, FlagWithoutValue) {
  EXPECT_EQ(parse_query("flag"), (Query{{"flag", ""}}));
  EXPECT_EQ(parse_query("flag&a=1"), (Query{{"flag", ""}, {"a", "1"}}));
  EXPECT_EQ(parse_query("a="), (Query{{"a", ""}}));
}

TEST(ParseQueryTest, ValueMayContainEquals) {
  EXPECT_EQ(parse_query("a=b=c"), (Query{{"a", "b=c"}}));
}

TEST(ParseQueryTest, SkipsEmptyPartsAndLastValueWins) {
  EXPECT_EQ(parse_query("a=1&&b=2&"), (Query{{"a", "1"}, {"b", "2"}}));
  EXPECT_EQ(parse_query("a=1&a=2"), (Query{{"a", "2"}}));
}

TEST(ParseQueryTest, BadEscapesThrow) {
  for (const char* q : {"a=%zz", "a=%4", "a=%", "a=%g0", "a=%0g", "%zz=1", "a=1&b=%4"})
    EXPECT_THROW(parse_query(q), std::invalid_argument) << q;
}

// The response writers' string escaping: what boost::json::serialize writes, byte for byte, and
// what a JSON parser reads back as the same bytes.
TEST(AppendJsonString, EveryByteAsBoostJsonWritesIt) {
  for (int c = 0; c < 256; ++c) {
    const std::string s = std::string("a") + static_cast<char>(c) + "b";
    std::string out = "x";
    append_json_string(out, s);
    ASSERT_EQ(out, "x" + json::serialize(json::string_view(s))) << "byte " << c;
  }
}

TEST(AppendJsonString, RoundTripsTextWithEscapesAtTheEdges) {
  for (const std::string& s : {std::string(), std::string("\""), std::string("\\"), std::string("\n\nend"),
                              std::string("start\t"), std::string("caf\xc3\xa9 \xe2\x82\xac \"q\" \\ / \x01\x1f\x7f"),
                              std::string("nul\0inside", 11)}) {
    std::string out;
    append_json_string(out, s);
    const json::value v = json::parse(out);
    ASSERT_TRUE(v.is_string()) << out;
    EXPECT_EQ(std::string(v.as_string()), s) << out;
  }
}

}  // namespace
}  // namespace infergate::gateway
