// `infergate invoices generate|finalize|export|void`: invoices straight from Postgres, for
// finance and for cron, without the server. Each invoice is its own transaction (one tenant's
// failure does not undo another's), audited as "cli".
#include <boost/json/serialize.hpp>
#include <pqxx/pqxx>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli.h"
#include "infergate/billing/billing_error.h"
#include "infergate/billing/invoice_export.h"
#include "infergate/billing/invoices.h"
#include "infergate/gateway/accounts.h"

namespace infergate::app {
namespace {

namespace json = boost::json;
const std::string kActor = "cli";

billing::BillingMonth period_flag(const Flags& f) {
  auto p = f.get("period");
  if (!p) throw UsageError("--period YYYY-MM is required");
  try {
    return billing::BillingMonth::parse(*p, "--period");
  } catch (const billing::BillingError& e) {
    throw UsageError(e.what());
  }
}

std::unique_ptr<pqxx::connection> connect(const infra::Config& cfg, const char* what) {
  try {
    return std::make_unique<pqxx::connection>(cfg.postgres.conninfo());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "infergate invoices %s: cannot connect to Postgres at %s:%u: %s\n", what,
                 cfg.postgres.host.c_str(), cfg.postgres.port, e.what());
    return nullptr;
  }
}

// Runs fn in one transaction; prints the error and returns the exit code on failure.
template <class Fn>
int in_tx(pqxx::connection& conn, const char* what, Fn fn) {
  try {
    pqxx::work tx(conn);
    fn(tx);
    tx.commit();
    return kExitOk;
  } catch (const billing::BillingError& e) {
    std::fprintf(stderr, "infergate invoices %s: %s\n", what, e.what());
    return e.kind() == billing::BillingError::Kind::invalid ? kExitUsage : kExitFailed;
  } catch (const pqxx::undefined_table&) {
    std::fprintf(stderr, "infergate invoices %s: the database has no schema yet; run "
                         "`infergate migrate`\n", what);
    return kExitFailed;
  }
}

void print_summary(const billing::Invoice& inv) {
  std::printf("%s\n", json::serialize(billing::to_json(inv, false)).c_str());
}

int generate(const Flags& f, pqxx::connection& conn) {
  const billing::BillingMonth period = period_flag(f);
  std::vector<std::string> tenants;
  if (auto t = f.get("tenant")) {
    tenants.push_back(*t);
  } else {
    int rc = in_tx(conn, "generate", [&](pqxx::work& tx) {
      tenants = billing::tenants_to_invoice(tx, period);
    });
    if (rc != kExitOk) return rc;
  }
  int rc = kExitOk;
  for (const auto& tenant : tenants) {
    int one = in_tx(conn, "generate", [&](pqxx::work& tx) {
      billing::Generated g = billing::generate_invoice(tx, tenant, period);
      gateway::accounts::audit(tx, kActor, "invoice.generate", "invoice", g.invoice.id,
                               g.before ? json::value(billing::to_json(*g.before, false))
                                        : json::value(nullptr),
                               billing::to_json(g.invoice, false));
      print_summary(g.invoice);
    });
    if (one != kExitOk) rc = one;
  }
  return rc;
}

int finalize(const Flags& f, pqxx::connection& conn) {
  billing::InvoiceFilter filter;
  filter.period = period_flag(f);
  filter.tenant = f.get("tenant");
  filter.status = "draft";
  std::vector<billing::Invoice> drafts;
  int rc = in_tx(conn, "finalize", [&](pqxx::work& tx) {
    drafts = billing::list_invoices(tx, filter, std::nullopt, 0, false).invoices;
  });
  if (rc != kExitOk) return rc;
  if (drafts.empty())
    std::fprintf(stderr, "infergate invoices finalize: no drafts for %s; run `infergate invoices "
                         "generate` first\n", filter.period->to_string().c_str());
  for (const auto& d : drafts) {
    int one = in_tx(conn, "finalize", [&](pqxx::work& tx) {
      billing::Invoice inv = billing::finalize_invoice(tx, d.id);
      gateway::accounts::audit(tx, kActor, "invoice.finalize", "invoice", inv.id, nullptr,
                               billing::to_json(inv, false));
      print_summary(inv);
    });
    if (one != kExitOk) rc = one;
  }
  return rc;
}

int void_invoice(const Flags& f, pqxx::connection& conn) {
  if (f.positional.size() != 1) throw UsageError("invoices void takes one invoice id");
  auto reason = f.get("reason");
  if (!reason) throw UsageError("--reason TEXT is required");
  return in_tx(conn, "void", [&](pqxx::work& tx) {
    billing::Invoice inv = billing::void_invoice(tx, f.positional[0], *reason);
    gateway::accounts::audit(tx, kActor, "invoice.void", "invoice", inv.id, nullptr,
                             billing::to_json(inv, false));
    print_summary(inv);
  });
}

bool write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    std::fprintf(stderr, "infergate invoices export: cannot write %s\n", path.c_str());
    return false;
  }
  std::fprintf(stderr, "wrote %s\n", path.c_str());
  return true;
}

int export_invoices(const Flags& f, pqxx::connection& conn) {
  billing::InvoiceFilter filter;
  filter.period = period_flag(f);
  filter.tenant = f.get("tenant");
  filter.status = f.get("status");
  if (filter.status && *filter.status != "draft" && *filter.status != "finalized" &&
      *filter.status != "void")
    throw UsageError("--status must be draft, finalized or void");
  const std::string format = f.get("format").value_or("");
  if (format != "csv" && format != "json") throw UsageError("--format csv|json is required");
  std::vector<billing::Invoice> invoices;
  int rc = in_tx(conn, "export", [&](pqxx::work& tx) {
    invoices = billing::list_invoices(tx, filter, std::nullopt, 0, true).invoices;
  });
  if (rc != kExitOk) return rc;
  std::string json_text;
  if (format == "json") {
    json::array data;
    for (const auto& i : invoices) data.push_back(billing::to_json(i));
    json_text = json::serialize(json::object{{"object", "list"}, {"data", std::move(data)}}) + "\n";
  }
  if (auto dir = f.get("out")) {
    std::error_code ec;
    std::filesystem::create_directories(*dir, ec);
    const std::filesystem::path d(*dir);
    bool ok = format == "json" ? write_file(d / "invoices.json", json_text)
                               : write_file(d / "invoices.csv", billing::invoices_csv(invoices)) &&
                                     write_file(d / "invoice_lines.csv",
                                                billing::invoice_lines_csv(invoices));
    return ok ? kExitOk : kExitFailed;
  }
  const std::string text = format == "json" ? json_text
                           : f.has("lines") ? billing::invoice_lines_csv(invoices)
                                            : billing::invoices_csv(invoices);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return kExitOk;
}

}  // namespace

int cmd_invoices(const std::vector<std::string>& args) {
  if (args.empty()) throw UsageError("invoices needs generate, finalize, export or void");
  const std::string sub = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  Flags f = parse_flags(rest, {"config", "period", "tenant", "status", "format", "out", "reason"},
                        {"lines"});
  if (sub != "void" && !f.positional.empty())
    throw UsageError("unexpected argument " + f.positional[0]);
  if (sub != "generate" && sub != "finalize" && sub != "export" && sub != "void")
    throw UsageError("unknown invoices command '" + sub + "'");
  const infra::Config cfg = load_config_for(f);
  auto conn = connect(cfg, sub.c_str());
  if (!conn) return kExitFailed;
  if (sub == "generate") return generate(f, *conn);
  if (sub == "finalize") return finalize(f, *conn);
  if (sub == "void") return void_invoice(f, *conn);
  return export_invoices(f, *conn);
}

}  // namespace infergate::app
