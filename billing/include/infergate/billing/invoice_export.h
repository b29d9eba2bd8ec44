// Invoices for finance: JSON objects and the two CSV exports, invoices.csv and
// invoice_lines.csv (columns documented in docs/api.md; times RFC 3339 UTC; money as minor
// units and as decimal strings, always with the currency). Pure.
#pragma once

#include <boost/json/object.hpp>

#include <string>
#include <vector>

#include "infergate/billing/invoices.h"

namespace infergate::billing {

// With "lines" when `with_lines`.
boost::json::object to_json(const Invoice& inv, bool with_lines = true);

std::string invoices_csv(const std::vector<Invoice>& invoices);
std::string invoice_lines_csv(const std::vector<Invoice>& invoices);

}  // namespace infergate::billing
