#include "infergate/billing/invoice_export.h"

#include "infergate/billing/csv.h"
#include "infergate/billing/timestamp.h"

namespace infergate::billing {
namespace {

namespace json = boost::json;

json::value opt(const std::optional<std::string>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

std::string unit_price(const InvoiceLine& l) {
  return l.unit_price_per_million ? l.unit_price_per_million->to_string() : "";
}

}  // namespace

json::object to_json(const Invoice& inv, bool with_lines) {
  json::object o{{"id", inv.id},
                 {"object", "invoice"},
                 {"number", inv.number ? json::value(*inv.number) : json::value(nullptr)},
                 {"tenant_id", inv.tenant_id},
                 {"tenant_name", inv.tenant_name},
                 {"status", inv.status},
                 {"period", inv.period},
                 {"period_start", format_rfc3339_us(inv.period_start_us)},
                 {"period_end", format_rfc3339_us(inv.period_end_us)},
                 {"timezone", inv.timezone},
                 {"currency", inv.currency},
                 {"minor_unit_digits", inv.minor_digits},
                 {"total_minor", inv.total_minor},
                 {"total", minor_to_string(inv.total_minor, inv.minor_digits)},
                 {"void_reason", opt(inv.void_reason)},
                 {"created_at", inv.created_at},
                 {"updated_at", inv.updated_at},
                 {"finalized_at", opt(inv.finalized_at)},
                 {"voided_at", opt(inv.voided_at)}};
  if (!with_lines) return o;
  json::array lines;
  for (const auto& l : inv.lines) {
    json::array prices;
    for (const auto& p : l.prices)
      prices.push_back(json::object{{"price_version_id", p.price_version_id},
                                    {"unit_price_per_million", p.unit_price_per_million.to_string()},
                                    {"quantity", p.quantity},
                                    {"exact_amount", p.exact_amount.to_string()}});
    json::object lo{{"line_no", l.line_no},
                    {"model", l.model},
                    {"token_class", l.token_class},
                    {"quantity", l.quantity},
                    {"unit_price_per_million",
                     l.unit_price_per_million ? json::value(l.unit_price_per_million->to_string())
                                              : json::value(nullptr)},
                    {"exact_amount", l.exact_amount.to_string()},
                    {"amount_minor", l.amount_minor},
                    {"amount", minor_to_string(l.amount_minor, inv.minor_digits)},
                    {"is_adjustment", l.is_adjustment},
                    {"adjustment_period", opt(l.source_period)},
                    {"prices", std::move(prices)}};
    if (l.is_adjustment) {
      lo["adjustment_period_start"] = format_rfc3339_us(l.source_start_us);
      lo["adjustment_period_end"] = format_rfc3339_us(l.source_end_us);
    }
    lines.push_back(std::move(lo));
  }
  o["lines"] = std::move(lines);
  return o;
}

std::string invoices_csv(const std::vector<Invoice>& invoices) {
  std::string out = csv_row({"invoice_id", "number", "tenant_id", "tenant_name", "status",
                             "period", "period_start", "period_end", "timezone", "currency",
                             "total_minor", "total", "line_count", "created_at", "finalized_at",
                             "voided_at", "void_reason"});
  for (const auto& i : invoices)
    out += csv_row({i.id, i.number ? std::to_string(*i.number) : "", i.tenant_id, i.tenant_name,
                    i.status, i.period, format_rfc3339_us(i.period_start_us),
                    format_rfc3339_us(i.period_end_us), i.timezone, i.currency,
                    std::to_string(i.total_minor), minor_to_string(i.total_minor, i.minor_digits),
                    std::to_string(i.lines.size()), i.created_at, i.finalized_at.value_or(""),
                    i.voided_at.value_or(""), i.void_reason.value_or("")});
  return out;
}

std::string invoice_lines_csv(const std::vector<Invoice>& invoices) {
  std::string out = csv_row({"invoice_id", "number", "tenant_id", "line_no", "model",
                             "token_class", "quantity", "unit_price_per_million", "exact_amount",
                             "amount_minor", "amount", "currency", "is_adjustment",
                             "adjustment_period"});
  for (const auto& i : invoices)
    for (const auto& l : i.lines)
      out += csv_row({i.id, i.number ? std::to_string(*i.number) : "", i.tenant_id,
                      std::to_string(l.line_no), l.model, l.token_class,
                      std::to_string(l.quantity), unit_price(l), l.exact_amount.to_string(),
                      std::to_string(l.amount_minor),
                      minor_to_string(l.amount_minor, i.minor_digits), i.currency,
                      l.is_adjustment ? "true" : "false", l.source_period.value_or("")});
  return out;
}

}  // namespace infergate::billing
