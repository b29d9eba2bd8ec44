#include "infergate/billing/invoices.h"

#include <pqxx/pqxx>

#include <map>
#include <tuple>

#include "infergate/billing/billing_error.h"
#include "infergate/billing/currency.h"
#include "infergate/billing/timestamp.h"
#include "infergate/infra/ids.h"
#include "sql_fragments.h"

namespace infergate::billing {
namespace {

using Kind = BillingError::Kind;

struct TenantInfo {
  std::string id, name, timezone, currency;
};

TenantInfo lock_tenant(pqxx::work& tx, const std::string& ref) {
  auto r = tx.exec_params(
      "SELECT id, name, billing_timezone, currency FROM tenants WHERE id = $1 OR name = $1 "
      "ORDER BY id = $1 DESC LIMIT 1 FOR UPDATE",
      ref);
  if (r.empty()) throw BillingError(Kind::not_found, "tenant", "No tenant '" + ref + "'.");
  return {r[0][0].as<std::string>(), r[0][1].as<std::string>(), r[0][2].as<std::string>(),
          r[0][3].as<std::string>()};
}

// Usage of a tenant in [start, end) per model, token class and price version in force (in
// `currency`). Usage without a price in force is a conflict: nothing can be invoiced until an
// admin adds the price.
std::vector<PricedQuantity> priced_usage(pqxx::work& tx, const std::string& tenant_id,
                                         const std::string& currency, std::int64_t start_us,
                                         std::int64_t end_us) {
  const std::string query =
      "SELECT e.model, c.token_class, pv.id, pv.price_per_million::text, sum(c.quantity), "
      + sql::rfc3339("min(e.started_at)") +
      " FROM usage_events e LEFT JOIN LATERAL " +
      sql::price_in_force("e.model", "'cached_input'", "$2", "e.started_at", sql::has_cached("e")) +
      " pc ON true CROSS JOIN LATERAL (VALUES ('input', " + sql::billed_input_qty("e", "pc") +
      "), ('cached_input', " + sql::billed_cached_qty("e", "pc") +
      "), ('output', e.completion_tokens)) c(token_class, quantity) "
      "LEFT JOIN LATERAL " +
      sql::price_in_force("e.model", "c.token_class", "$2", "e.started_at") +
      " pv ON true WHERE e.tenant_id = $1 AND e.started_at >= " + sql::ts("$3") +
      " AND e.started_at < " + sql::ts("$4") +
      " AND c.quantity <> 0 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3";
  pqxx::result r = tx.exec_params(query, tenant_id, currency, start_us, end_us);
  std::vector<PricedQuantity> out;
  for (const auto& row : r) {
    if (row[2].is_null())
      throw BillingError(Kind::conflict, "",
                         "No " + currency + " price for model '" + row[0].as<std::string>() +
                             "', token class " + row[1].as<std::string>() +
                             " is in force at " + row[5].as<std::string>() +
                             ". Add one (POST /admin/v1/prices) and generate again.");
    PricedQuantity p;
    p.model = row[0].as<std::string>();
    p.token_class = row[1].as<std::string>();
    p.price_version_id = row[2].as<std::string>();
    p.unit_price_per_million = Decimal::parse(row[3].as<std::string>());
    p.quantity = row[4].as<std::int64_t>();
    out.push_back(std::move(p));
  }
  return out;
}

using PartKey = std::tuple<std::string, std::string, std::string>;  // model, class, version

// A period's ledger usage per part (model, token class, price version) less what finalized
// invoices in `currency` billed for it: as adjustments, and with `with_own_lines` its own
// invoice's lines too. A part billed that the ledger no longer has under its version goes
// negative.
std::map<PartKey, PricedQuantity> unbilled(pqxx::work& tx, const std::string& tenant_id, const std::string& currency,
                                           std::int64_t start_us, std::int64_t end_us, bool with_own_lines) {
  std::map<PartKey, PricedQuantity> parts;
  for (auto& u : priced_usage(tx, tenant_id, currency, start_us, end_us))
    parts[{u.model, u.token_class, u.price_version_id}] = u;
  const std::string adjustment_of_it = "(l.is_adjustment AND l.source_period_start = " + sql::ts("$3") + ")";
  pqxx::result billed = tx.exec_params(
      "SELECT l.model, l.token_class, lp.price_version_id, lp.unit_price_per_million::text, "
      "sum(lp.quantity) FROM invoice_line_prices lp "
      "JOIN invoice_lines l ON l.invoice_id = lp.invoice_id AND l.line_no = lp.line_no "
      "JOIN invoices i ON i.id = lp.invoice_id WHERE i.tenant_id = $1 AND i.status = 'finalized' "
      "AND i.currency = $2 AND (" + adjustment_of_it +
          (with_own_lines ? " OR (NOT l.is_adjustment AND i.period_start = " + sql::ts("$3") + ")" : "") +
          ") GROUP BY 1, 2, 3, 4",
      tenant_id, currency, start_us);
  for (const auto& row : billed) {
    PricedQuantity& p = parts[{row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>()}];
    if (p.model.empty()) {
      p.model = row[0].as<std::string>();
      p.token_class = row[1].as<std::string>();
      p.price_version_id = row[2].as<std::string>();
      p.unit_price_per_million = Decimal::parse(row[3].as<std::string>());
    }
    p.quantity -= row[4].as<std::int64_t>();
  }
  return parts;
}

// Late usage of earlier finalized periods: ledger now minus what finalized invoices carry.
std::vector<PricedQuantity> adjustments(pqxx::work& tx, const TenantInfo& t,
                                        const std::string& currency, std::int64_t before_us) {
  std::vector<PricedQuantity> out;
  pqxx::result periods = tx.exec_params(
      "SELECT period, " + sql::us("period_start") + ", " + sql::us("period_end") +
          " FROM invoices WHERE tenant_id = $1 AND status = 'finalized' AND currency = $2 "
          "AND period_start < " + sql::ts("$3") + " ORDER BY period_start",
      t.id, currency, before_us);
  for (const auto& p : periods) {
    const std::string period = p[0].as<std::string>();
    const auto start = p[1].as<std::int64_t>(), end = p[2].as<std::int64_t>();
    std::map<PartKey, PricedQuantity> delta = unbilled(tx, t.id, currency, start, end, /*with_own_lines=*/true);
    for (auto& [key, d] : delta) {
      if (d.quantity == 0) continue;
      d.source_period = period;
      d.source_start_us = start;
      d.source_end_us = end;
      out.push_back(std::move(d));
    }
  }
  return out;
}

// A period's own lines: its usage in the ledger, less what finalized invoices of later periods
// already billed for it as adjustments. Those exist only if the period had a finalized invoice
// that was then voided: regenerated, it bills the rest, not that usage a second time.
std::vector<PricedQuantity> billable_base(pqxx::work& tx, const std::string& tenant_id,
                                          const std::string& currency, std::int64_t start_us,
                                          std::int64_t end_us) {
  // Adjustments for it in another currency (the tenant's currency changed since) cannot be
  // netted against this one's prices: refuse rather than bill that usage twice.
  auto other = tx.exec_params(
      "SELECT i.number, i.currency FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id "
      "WHERE i.tenant_id = $1 AND i.status = 'finalized' AND i.currency <> $2 AND l.is_adjustment "
      "AND l.source_period_start = " + sql::ts("$3") + " LIMIT 1",
      tenant_id, currency, start_us);
  if (!other.empty())
    throw BillingError(Kind::conflict, "period",
                       "Invoice number " + other[0][0].as<std::string>() + " billed late usage of this period in " +
                           other[0][1].as<std::string>() + ", and the tenant now bills in " + currency +
                           ": that usage would be billed twice. Void that invoice too, or set the tenant's "
                           "currency back, and generate again.");
  std::map<PartKey, PricedQuantity> base = unbilled(tx, tenant_id, currency, start_us, end_us, /*with_own_lines=*/false);
  std::vector<PricedQuantity> out;
  for (auto& [key, b] : base)
    if (b.quantity != 0) out.push_back(std::move(b));
  return out;
}

const std::string kInvoiceColumns =
    "i.id, i.tenant_id, t.name, i.period, " + sql::us("i.period_start") + ", " +
    sql::us("i.period_end") + ", i.timezone, i.currency, i.status, i.minor_digits, i.number, "
    "i.total_minor, i.void_reason, " + sql::rfc3339("i.created_at") + ", " +
    sql::rfc3339("i.updated_at") + ", " + sql::rfc3339("i.finalized_at") + ", " +
    sql::rfc3339("i.voided_at");

std::optional<std::string> opt(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<std::string>();
}

Invoice invoice_from(const pqxx::row& r) {
  Invoice i;
  i.id = r[0].as<std::string>();
  i.tenant_id = r[1].as<std::string>();
  i.tenant_name = r[2].as<std::string>();
  i.period = r[3].as<std::string>();
  i.period_start_us = r[4].as<std::int64_t>();
  i.period_end_us = r[5].as<std::int64_t>();
  i.timezone = r[6].as<std::string>();
  i.currency = r[7].as<std::string>();
  i.status = r[8].as<std::string>();
  i.minor_digits = r[9].as<int>();
  if (!r[10].is_null()) i.number = r[10].as<std::int64_t>();
  i.total_minor = r[11].as<std::int64_t>();
  i.void_reason = opt(r[12]);
  i.created_at = r[13].as<std::string>();
  i.updated_at = r[14].as<std::string>();
  i.finalized_at = opt(r[15]);
  i.voided_at = opt(r[16]);
  return i;
}

void load_lines(pqxx::work& tx, Invoice& inv) {
  pqxx::result lines = tx.exec_params(
      "SELECT line_no, model, token_class, quantity, unit_price_per_million::text, "
      "exact_amount::text, amount_minor, is_adjustment, source_period, " +
          sql::us("source_period_start") + ", " + sql::us("source_period_end") +
          " FROM invoice_lines WHERE invoice_id = $1 ORDER BY line_no",
      inv.id);
  for (const auto& r : lines) {
    InvoiceLine l;
    l.line_no = r[0].as<int>();
    l.model = r[1].as<std::string>();
    l.token_class = r[2].as<std::string>();
    l.quantity = r[3].as<std::int64_t>();
    if (!r[4].is_null()) l.unit_price_per_million = Decimal::parse(r[4].as<std::string>());
    l.exact_amount = Decimal::parse(r[5].as<std::string>());
    l.amount_minor = r[6].as<std::int64_t>();
    l.is_adjustment = r[7].as<bool>();
    l.source_period = opt(r[8]);
    if (!r[9].is_null()) l.source_start_us = r[9].as<std::int64_t>();
    if (!r[10].is_null()) l.source_end_us = r[10].as<std::int64_t>();
    inv.lines.push_back(std::move(l));
  }
  pqxx::result prices = tx.exec_params(
      "SELECT line_no, price_version_id, unit_price_per_million::text, quantity, "
      "exact_amount::text FROM invoice_line_prices WHERE invoice_id = $1 "
      "ORDER BY line_no, price_version_id",
      inv.id);
  for (const auto& r : prices) {
    const int line_no = r[0].as<int>();
    if (line_no < 1 || line_no > static_cast<int>(inv.lines.size())) continue;
    inv.lines[line_no - 1].prices.push_back(
        {r[1].as<std::string>(), Decimal::parse(r[2].as<std::string>()),
         r[3].as<std::int64_t>(), Decimal::parse(r[4].as<std::string>())});
  }
}

Invoice load(pqxx::work& tx, const std::string& id) {
  auto r = tx.exec_params("SELECT " + kInvoiceColumns +
                              " FROM invoices i JOIN tenants t ON t.id = i.tenant_id "
                              "WHERE i.id = $1",
                          id);
  if (r.empty()) throw BillingError(Kind::not_found, "id", "No invoice '" + id + "'.");
  Invoice inv = invoice_from(r[0]);
  load_lines(tx, inv);
  return inv;
}

void insert_lines(pqxx::work& tx, const std::string& id, const std::vector<InvoiceLine>& lines) {
  for (const auto& l : lines) {
    std::optional<std::string> unit, period;
    std::optional<std::int64_t> s, e;
    if (l.unit_price_per_million) unit = l.unit_price_per_million->to_string();
    if (l.is_adjustment) {
      period = l.source_period;
      s = l.source_start_us;
      e = l.source_end_us;
    }
    tx.exec_params("INSERT INTO invoice_lines (invoice_id, line_no, model, token_class, "
                   "quantity, unit_price_per_million, exact_amount, amount_minor, is_adjustment, "
                   "source_period, source_period_start, source_period_end) VALUES ($1, $2, $3, "
                   "$4, $5, $6::numeric, $7::numeric, $8, $9, $10, " + sql::ts("$11") + ", " +
                       sql::ts("$12") + ")",
                   id, l.line_no, l.model, l.token_class, l.quantity, unit,
                   l.exact_amount.to_string(), l.amount_minor, l.is_adjustment, period, s, e);
    for (const auto& p : l.prices)
      tx.exec_params("INSERT INTO invoice_line_prices (invoice_id, line_no, price_version_id, "
                     "unit_price_per_million, quantity, exact_amount) VALUES ($1, $2, $3, "
                     "$4::numeric, $5, $6::numeric)",
                     id, l.line_no, p.price_version_id, p.unit_price_per_million.to_string(),
                     p.quantity, p.exact_amount.to_string());
  }
}

pqxx::row lock_invoice(pqxx::work& tx, const std::string& id) {
  auto r = tx.exec_params(
      "SELECT status, number, tenant_id, currency, " + sql::us("period_start") + ", " +
          sql::us("period_end") + ", period_end <= now(), " + sql::rfc3339("period_end") +
          " FROM invoices WHERE id = $1 FOR UPDATE",
      id);
  if (r.empty()) throw BillingError(Kind::not_found, "id", "No invoice '" + id + "'.");
  return r[0];
}

std::string describe(const pqxx::row& locked, const std::string& id) {
  const std::string status = locked[0].as<std::string>();
  return "Invoice " + id +
         (locked[1].is_null() ? std::string() : " (number " + locked[1].as<std::string>() + ")") +
         " is " + status;
}

}  // namespace

Generated generate_invoice(pqxx::work& tx, const std::string& tenant, const BillingMonth& month) {
  const TenantInfo t = lock_tenant(tx, tenant);
  const auto bounds = tx.exec_params1(
      "SELECT " + sql::us("($1::timestamp AT TIME ZONE $3)") + ", " +
          sql::us("($2::timestamp AT TIME ZONE $3)"),
      month.local_start(), month.local_end(), t.timezone);
  const std::int64_t start = bounds[0].as<std::int64_t>(), end = bounds[1].as<std::int64_t>();
  auto existing = tx.exec_params("SELECT id, status, number FROM invoices WHERE tenant_id = $1 "
                                 "AND period_start = " + sql::ts("$2") +
                                     " AND status <> 'void' FOR UPDATE",
                                 t.id, start);
  if (!existing.empty() && existing[0][1].as<std::string>() != "draft")
    throw BillingError(Kind::conflict, "period",
                       "The " + month.to_string() + " invoice of tenant '" + t.name +
                           "' is finalized (number " + existing[0][2].as<std::string>() +
                           ") and cannot change; usage that arrives for it later is billed as "
                           "an adjustment on the tenant's next invoice.");
  const int digits = minor_unit_digits(t.currency);
  auto base = billable_base(tx, t.id, t.currency, start, end);
  auto adj = adjustments(tx, t, t.currency, start);
  const std::vector<InvoiceLine> lines = build_lines(base, adj, digits);

  Generated g;
  std::string id;
  if (existing.empty()) {
    id = "inv_" + infra::random_hex(8);
    tx.exec_params("INSERT INTO invoices (id, tenant_id, period, period_start, period_end, "
                   "timezone, currency, minor_digits, total_minor) VALUES ($1, $2, $3, " +
                       sql::ts("$4") + ", " + sql::ts("$5") + ", $6, $7, $8, $9)",
                   id, t.id, month.to_string(), start, end, t.timezone, t.currency, digits,
                   total_minor(lines));
    g.created = true;
  } else {
    id = existing[0][0].as<std::string>();
    g.before = load(tx, id);
    tx.exec_params("DELETE FROM invoice_lines WHERE invoice_id = $1", id);
    tx.exec_params("UPDATE invoices SET period_end = " + sql::ts("$2") +
                       ", timezone = $3, currency = $4, minor_digits = $5, total_minor = $6, "
                       "updated_at = now() WHERE id = $1",
                   id, end, t.timezone, t.currency, digits, total_minor(lines));
  }
  insert_lines(tx, id, lines);
  g.invoice = load(tx, id);
  return g;
}

Invoice finalize_invoice(pqxx::work& tx, const std::string& id) {
  // The counter row first: finalizations are serialized, which also makes the adjustment
  // check below race-free.
  const std::int64_t last =
      tx.exec1("SELECT last_number FROM invoice_number_counter FOR UPDATE")[0].as<std::int64_t>();
  const pqxx::row inv = lock_invoice(tx, id);
  if (inv[0].as<std::string>() != "draft")
    throw BillingError(Kind::conflict, "id", describe(inv, id) + "; only a draft can be finalized.");
  if (!inv[6].as<bool>())
    throw BillingError(Kind::conflict, "id",
                       "The invoice's period ends at " + inv[7].as<std::string>() +
                           "; finalize it after that.");
  // The draft's adjustments must still be owed: another invoice finalized meanwhile may have
  // billed them already (then this one would bill them twice).
  Invoice draft = load(tx, id);
  auto tenant = tx.exec_params1("SELECT id, name, billing_timezone, currency FROM tenants "
                                "WHERE id = $1",
                                inv[2].as<std::string>());
  const TenantInfo t{tenant[0].as<std::string>(), tenant[1].as<std::string>(),
                     tenant[2].as<std::string>(), tenant[3].as<std::string>()};
  std::map<std::tuple<std::string, std::string, std::string, std::string>, std::int64_t> owed;
  for (const auto& a : adjustments(tx, t, draft.currency, draft.period_start_us))
    owed[{*a.source_period, a.model, a.token_class, a.price_version_id}] += a.quantity;
  for (const auto& l : draft.lines) {
    if (!l.is_adjustment) continue;
    for (const auto& p : l.prices) {
      const std::int64_t due = owed[{*l.source_period, l.model, l.token_class, p.price_version_id}];
      const bool covered = (p.quantity > 0 && p.quantity <= due) ||
                           (p.quantity < 0 && p.quantity >= due);
      if (!covered)
        throw BillingError(Kind::conflict, "id",
                           "The draft's adjustment for " + *l.source_period + " (" + l.model +
                               ", " + l.token_class +
                               ") no longer matches what is owed (another invoice was "
                               "finalized meanwhile). Generate the draft again, then finalize.");
    }
  }
  tx.exec_params("UPDATE invoice_number_counter SET last_number = $1", last + 1);
  tx.exec_params("UPDATE invoices SET status = 'finalized', number = $2, finalized_at = now(), "
                 "updated_at = now() WHERE id = $1",
                 id, last + 1);
  return load(tx, id);
}

Invoice void_invoice(pqxx::work& tx, const std::string& id, const std::string& reason) {
  if (reason.empty() || reason.size() > 500)
    throw BillingError(Kind::invalid, "reason", "'reason' must be 1 to 500 characters.");
  // Serialized with finalizations (their counter row): a finalization's check of what is owed,
  // and a regenerated period's netting of adjustments, never see a void half done.
  tx.exec("SELECT last_number FROM invoice_number_counter FOR UPDATE");
  const pqxx::row inv = lock_invoice(tx, id);
  if (inv[0].as<std::string>() != "finalized")
    throw BillingError(Kind::conflict, "id",
                       describe(inv, id) +
                           "; only a finalized invoice can be voided (a draft can simply be "
                           "generated again).");
  tx.exec_params("UPDATE invoices SET status = 'void', void_reason = $2, voided_at = now(), "
                 "updated_at = now() WHERE id = $1",
                 id, reason);
  return load(tx, id);
}

std::optional<Invoice> find_invoice(pqxx::work& tx, const std::string& id) {
  try {
    return load(tx, id);
  } catch (const BillingError& e) {
    if (e.kind() == Kind::not_found) return std::nullopt;
    throw;
  }
}

InvoicePage list_invoices(pqxx::work& tx, const InvoiceFilter& f,
                          const std::optional<std::string>& cursor, int limit, bool with_lines) {
  std::optional<std::string> tenant_id, period;
  if (f.tenant) {
    auto r = tx.exec_params("SELECT id FROM tenants WHERE id = $1 OR name = $1 ORDER BY id = $1 DESC LIMIT 1", *f.tenant);
    if (r.empty()) throw BillingError(Kind::not_found, "tenant", "No tenant '" + *f.tenant + "'.");
    tenant_id = r[0][0].as<std::string>();
  }
  if (f.period) period = f.period->to_string();
  if (cursor && tx.exec_params("SELECT 1 FROM invoices WHERE id = $1", *cursor).empty())
    throw BillingError(Kind::invalid, "cursor",
                       "'cursor' is not an invoice id from a previous page's next_cursor.");
  pqxx::result r = tx.exec_params(
      "SELECT " + kInvoiceColumns +
          " FROM invoices i JOIN tenants t ON t.id = i.tenant_id WHERE "
          "($1::text IS NULL OR i.tenant_id = $1) AND ($2::text IS NULL OR i.status = $2) AND "
          "($3::text IS NULL OR i.period = $3) AND ($4::text IS NULL OR (i.period, i.id) > "
          "(SELECT period, id FROM invoices WHERE id = $4)) ORDER BY i.period, i.id "
          "LIMIT $5",
      tenant_id, f.status, period, cursor,
      limit > 0 ? std::optional<int>(limit + 1) : std::nullopt);
  InvoicePage page;
  for (const auto& row : r) {
    if (limit > 0 && static_cast<int>(page.invoices.size()) == limit) {
      page.next_cursor = page.invoices.back().id;
      break;
    }
    page.invoices.push_back(invoice_from(row));
    if (with_lines) load_lines(tx, page.invoices.back());
  }
  return page;
}

std::vector<std::string> tenants_to_invoice(pqxx::work& tx, const BillingMonth& month) {
  pqxx::result r = tx.exec_params(
      "SELECT t.id FROM tenants t CROSS JOIN LATERAL (SELECT $1::timestamp AT TIME ZONE "
      "t.billing_timezone AS s, $2::timestamp AT TIME ZONE t.billing_timezone AS e) p WHERE "
      "EXISTS (SELECT 1 FROM usage_events u WHERE u.tenant_id = t.id AND u.started_at >= p.s "
      "AND u.started_at < p.e) OR EXISTS (SELECT 1 FROM invoices i WHERE i.tenant_id = t.id "
      "AND i.status = 'finalized' AND i.period_start < p.s) ORDER BY t.name",
      month.local_start(), month.local_end());
  std::vector<std::string> out;
  for (const auto& row : r) out.push_back(row[0].as<std::string>());
  return out;
}

}  // namespace infergate::billing
