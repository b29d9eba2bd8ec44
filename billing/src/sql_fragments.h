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

// Token quantities per class of a usage_events row `e`: prompt tokens split into those served
// from the cache (cached_input) and the rest (input); output = completion tokens.
inline std::string cached_qty(std::string_view e) {
  const std::string a(e);
  return "least(" + a + ".cached_tokens, " + a + ".prompt_tokens)";
}
inline std::string input_qty(std::string_view e) {
  const std::string a(e);
  return "(" + a + ".prompt_tokens - " + cached_qty(e) + ")";
}

// The price version in force: the latest effective_from <= `at` for the model, class and
// currency. Columns id, price_per_million; use in a LEFT JOIN LATERAL.
inline std::string price_in_force(std::string_view model, std::string_view token_class,
                                  std::string_view currency, std::string_view at) {
  return "(SELECT p.id, p.price_per_million FROM price_versions p WHERE p.model = " +
         std::string(model) + " AND p.token_class = " + std::string(token_class) +
         " AND p.currency = " + std::string(currency) + " AND p.effective_from <= " +
         std::string(at) + " ORDER BY p.effective_from DESC LIMIT 1)";
}

}  // namespace infergate::billing::sql
