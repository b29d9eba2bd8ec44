// SQL text shared by the billing queries (private to billing/src). Only fixed fragments and
// placeholders are spliced together; values always travel as parameters.
#pragma once

#include <string>
#include <string_view>

namespace infergate::billing::sql {

// A timestamptz from Unix microseconds in placeholder `p` (exact below 2^53 us).
inline std::string ts(std::string_view p) {
  return "(timestamptz 'epoch' + (" + std::string(p) + ")::bigint * interval '1 microsecond')";
}
// Unix microseconds of a timestamptz expression (extract returns exact numeric).
inline std::string us(std::string_view e) {
  return "(extract(epoch FROM " + std::string(e) + ") * 1000000)::bigint";
}
// RFC 3339 UTC text with milliseconds of a timestamptz expression.
inline std::string rfc3339(std::string_view e) {
  return "to_char((" + std::string(e) + ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";
}

// Prompt tokens of a usage_events row `e` served from the prefix cache (never more than its
// prompt tokens).
inline std::string cached_qty(std::string_view e) {
  const std::string a(e);
  return "least(" + a + ".cached_tokens, " + a + ".prompt_tokens)";
}

// The price version in force: the latest effective_from <= `at` for the model, class and
// currency. Columns id, price_per_million; use in a LEFT JOIN LATERAL. `when`, if given, is a
// condition on the outer row under which to look at all (a row that fails it finds no price).
inline std::string price_in_force(std::string_view model, std::string_view token_class,
                                  std::string_view currency, std::string_view at,
                                  std::string_view when = {}) {
  return "(SELECT p.id, p.price_per_million FROM price_versions p WHERE " +
         (when.empty() ? std::string() : std::string(when) + " AND ") + "p.model = " +
         std::string(model) + " AND p.token_class = " + std::string(token_class) +
         " AND p.currency = " + std::string(currency) + " AND p.effective_from <= " +
         std::string(at) + " ORDER BY p.effective_from DESC LIMIT 1)";
}

// Cached prompt tokens are billed as cached_input only where a cached_input price is in force
// for the request (a discount is something an admin sets); without one they are billed as input,
// at the input price, as if the cache had not served them. `pc` is the LEFT JOIN LATERAL of the
// cached_input price in force (price_in_force with when = has_cached(e)).
inline std::string has_cached(std::string_view e) { return std::string(e) + ".cached_tokens > 0"; }
inline std::string billed_cached_qty(std::string_view e, std::string_view pc) {
  return "CASE WHEN " + std::string(pc) + ".id IS NULL THEN 0 ELSE " + cached_qty(e) + " END";
}
inline std::string billed_input_qty(std::string_view e, std::string_view pc) {
  return "(" + std::string(e) + ".prompt_tokens - " + billed_cached_qty(e, pc) + ")";
}

}  // namespace infergate::billing::sql
