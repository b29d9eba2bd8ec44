// Price versions: the price per million tokens of a model and token class in a currency, in
// force from effective_from until the next version. Adding validates strictly (exact decimal
// text, ISO 4217 code, RFC 3339 time); versions never change afterwards. Functions take an open
// transaction (the admin API and the CLI share them). Stateless.
#pragma once

#include <boost/json/object.hpp>
#include <pqxx/transaction>

#include <optional>
#include <string>
#include <vector>

#include "infergate/billing/decimal.h"

namespace infergate::billing {

struct PriceVersion {
  std::string id, model, token_class;
  Decimal price_per_million;
  std::string currency;
  std::string effective_from, created_at;  // RFC 3339 UTC
};

struct NewPrice {
  std::string model, token_class;
  std::string price_per_million;  // decimal text, e.g. "2.50"
  std::string currency;
  std::string effective_from;  // RFC 3339
};

// At most 12 digits after the point and below 10^12 per million tokens.
constexpr int kMaxPriceScale = 12;

// Throws BillingError: invalid (param = the field), conflict (a version with the same model,
// class, currency and effective_from exists).
PriceVersion add_price(pqxx::work& tx, const NewPrice& p);

struct PricePage {
  std::vector<PriceVersion> prices;
  std::optional<std::string> next_cursor;  // the last id; pass as `cursor`
};
// Ordered by model, token class, currency, effective_from. An unknown cursor is invalid.
PricePage list_prices(pqxx::work& tx, const std::optional<std::string>& model,
                      const std::optional<std::string>& currency,
                      const std::optional<std::string>& cursor, int limit);

boost::json::object to_json(const PriceVersion& p);

}  // namespace infergate::billing
