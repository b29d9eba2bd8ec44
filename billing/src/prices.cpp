#include "infergate/billing/prices.h"

#include <pqxx/pqxx>

#include "infergate/billing/billing_error.h"
#include "infergate/billing/currency.h"
#include "infergate/billing/invoice_lines.h"
#include "infergate/billing/timestamp.h"
#include "infergate/infra/ids.h"
#include "sql_fragments.h"

namespace infergate::billing {
namespace {

using Kind = BillingError::Kind;

const std::string kColumns = "id, model, token_class, price_per_million::text, currency, " +
                             sql::rfc3339("effective_from") + ", " + sql::rfc3339("created_at");

PriceVersion price_from(const pqxx::row& r) {
  return PriceVersion{r[0].as<std::string>(), r[1].as<std::string>(), r[2].as<std::string>(),
                      Decimal::parse(r[3].as<std::string>()), r[4].as<std::string>(),
                      r[5].as<std::string>(), r[6].as<std::string>()};
}

void check_model(const std::string& model) {
  if (model.empty() || model.size() > 128)
    throw BillingError(Kind::invalid, "model", "'model' must be 1 to 128 characters.");
  for (unsigned char c : model)
    if (c < 0x20 || c == 0x7f)
      throw BillingError(Kind::invalid, "model", "'model' must not contain control characters.");
}

Decimal check_price(const std::string& text) {
  Decimal d;
  try {
    d = Decimal::parse(text);
  } catch (const DecimalError& e) {
    throw BillingError(Kind::invalid, "price_per_million",
                       std::string("'price_per_million' must be a decimal string such as "
                                   "\"2.50\": ") +
                           e.what() + ".");
  }
  if (d.is_negative() || text[0] == '-')
    throw BillingError(Kind::invalid, "price_per_million",
                       "'price_per_million' must not be negative.");
  if (d.scale() > kMaxPriceScale)
    throw BillingError(Kind::invalid, "price_per_million",
                       "'price_per_million' has more than 12 digits after the point.");
  if (!(d < Decimal::from_integer(1'000'000'000'000)))
    throw BillingError(Kind::invalid, "price_per_million",
                       "'price_per_million' must be below 1000000000000.");
  return d;
}

}  // namespace

PriceVersion add_price(pqxx::work& tx, const NewPrice& p) {
  check_model(p.model);
  if (!is_token_class(p.token_class))
    throw BillingError(Kind::invalid, "token_class",
                       "'token_class' must be one of input, cached_input, output.");
  const Decimal price = check_price(p.price_per_million);
  if (!is_currency_code(p.currency))
    throw BillingError(Kind::invalid, "currency",
                       "'currency' must be an ISO 4217 code of three upper-case letters, such as "
                       "USD.");
  std::int64_t from_us = 0;
  try {
    from_us = parse_rfc3339_us(p.effective_from);
  } catch (const std::invalid_argument& e) {
    throw BillingError(Kind::invalid, "effective_from", e.what());
  }
  const std::string id = "price_" + infra::random_hex(8);
  pqxx::result r = tx.exec_params(
      "INSERT INTO price_versions (id, model, token_class, price_per_million, currency, "
      "effective_from) VALUES ($1, $2, $3, $4::numeric, $5, " + sql::ts("$6") +
          ") ON CONFLICT (model, token_class, currency, effective_from) DO NOTHING RETURNING " +
          kColumns,
      id, p.model, p.token_class, price.to_string(), p.currency, from_us);
  if (r.empty())
    throw BillingError(Kind::conflict, "effective_from",
                       "A price for " + p.model + " " + p.token_class + " in " + p.currency +
                           " already takes effect at " + format_rfc3339_us(from_us) +
                           "; versions never change: add one with another effective_from.");
  return price_from(r[0]);
}

PricePage list_prices(pqxx::work& tx, const std::optional<std::string>& model,
                      const std::optional<std::string>& currency,
                      const std::optional<std::string>& cursor, int limit) {
  if (cursor && tx.exec_params("SELECT 1 FROM price_versions WHERE id = $1", *cursor).empty())
    throw BillingError(Kind::invalid, "cursor",
                       "'cursor' is not a price id from a previous page's next_cursor.");
  pqxx::result r = tx.exec_params(
      "SELECT " + kColumns +
          " FROM price_versions v WHERE ($1::text IS NULL OR model = $1) AND "
          "($2::text IS NULL OR currency = $2) AND ($3::text IS NULL OR "
          "(model, token_class, currency, effective_from, id) > (SELECT model, token_class, "
          "currency, effective_from, id FROM price_versions WHERE id = $3)) "
          "ORDER BY model, token_class, currency, effective_from, id LIMIT $4",
      model, currency, cursor, limit + 1);
  PricePage page;
  for (const auto& row : r) {
    if (static_cast<int>(page.prices.size()) == limit) {
      page.next_cursor = page.prices.back().id;
      break;
    }
    page.prices.push_back(price_from(row));
  }
  return page;
}

boost::json::object to_json(const PriceVersion& p) {
  return {{"id", p.id},
          {"object", "price"},
          {"model", p.model},
          {"token_class", p.token_class},
          {"price_per_million", p.price_per_million.to_string()},
          {"currency", p.currency},
          {"effective_from", p.effective_from},
          {"created_at", p.created_at}};
}

}  // namespace infergate::billing
