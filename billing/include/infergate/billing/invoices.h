// Invoices per tenant and calendar month in the tenant's billing time zone: generate a draft
// (again and again: regenerating replaces its lines), finalize it (a number from a locked
// counter row: sequential, no gaps; immutable from then on), void it with a reason.
//
// Late usage: what has been invoiced for a period is recorded per model, token class and price
// version (invoice_line_prices). When an invoice is generated, every earlier period of the
// tenant with a finalized invoice is compared with the ledger; the difference (usage that
// reached the ledger after that invoice was finalized) becomes adjustment lines. Once those are
// on a finalized invoice they count as invoiced, so nothing is billed twice or lost.
// Finalizing re-checks the adjustments, so two drafts cannot both bill the same late usage.
//
// Functions take an open transaction (admin API and CLI share them). Stateless.
#pragma once

#include <pqxx/transaction>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "infergate/billing/invoice_lines.h"
#include "infergate/billing/period.h"

namespace infergate::billing {

struct Invoice {
  std::string id, tenant_id, tenant_name, period;
  std::int64_t period_start_us = 0, period_end_us = 0;  // [start, end) UTC
  std::string timezone, currency, status;               // draft | finalized | void
  int minor_digits = 2;
  std::optional<std::int64_t> number;
  std::int64_t total_minor = 0;
  std::optional<std::string> void_reason;
  std::string created_at, updated_at;  // RFC 3339 UTC
  std::optional<std::string> finalized_at, voided_at;
  std::vector<InvoiceLine> lines;
};

struct Generated {
  Invoice invoice;
  bool created = false;           // false: an existing draft was regenerated
  std::optional<Invoice> before;  // the draft as it was
};

// Throws BillingError: not_found (tenant), conflict (the period's invoice is finalized; usage
// without a price in force).
Generated generate_invoice(pqxx::work& tx, const std::string& tenant, const BillingMonth& period);

// Throws BillingError: not_found (id), conflict (not a draft; the period has not ended; the
// draft's adjustments are stale: regenerate it).
Invoice finalize_invoice(pqxx::work& tx, const std::string& id);

// Finalized -> void; keeps its number. Throws BillingError: not_found, conflict (a draft or
// already void), invalid (reason empty or over 500 characters).
Invoice void_invoice(pqxx::work& tx, const std::string& id, const std::string& reason);

std::optional<Invoice> find_invoice(pqxx::work& tx, const std::string& id);

struct InvoiceFilter {
  std::optional<std::string> tenant;  // id or name; unknown -> BillingError not_found
  std::optional<std::string> status;  // draft | finalized | void
  std::optional<BillingMonth> period;
};
struct InvoicePage {
  std::vector<Invoice> invoices;
  std::optional<std::string> next_cursor;
};
// Ordered by period, then id. Lines are loaded when `with_lines`. limit 0 = all.
InvoicePage list_invoices(pqxx::work& tx, const InvoiceFilter& filter,
                          const std::optional<std::string>& cursor, int limit, bool with_lines);

// Tenants for `invoices generate` without --tenant: those with usage in the period or with a
// finalized invoice before it (they may have late usage to adjust).
std::vector<std::string> tenants_to_invoice(pqxx::work& tx, const BillingMonth& period);

}  // namespace infergate::billing
