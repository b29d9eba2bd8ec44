#include "infergate/gateway/billing_api.h"

#include <pqxx/pqxx>

#include "infergate/billing/billing_error.h"
#include "infergate/billing/currency.h"
#include "infergate/billing/invoice_export.h"
#include "infergate/billing/invoices.h"
#include "infergate/billing/prices.h"
#include "infergate/billing/timestamp.h"
#include "infergate/billing/usage_report.h"
#include "infergate/gateway/accounts.h"
#include "infergate/gateway/admin_api.h"
#include "infergate/gateway/api_errors.h"
#include "infergate/gateway/json_input.h"

namespace infergate::gateway {

namespace asio = boost::asio;
namespace json = boost::json;
using Query = std::map<std::string, std::string>;

namespace {

Response text_response(const std::string& content_type, std::string body, unsigned version) {
  Response res{http::status::ok, version};
  res.set(http::field::content_type, content_type);
  res.body() = std::move(body);
  return res;
}

std::optional<std::string> get(const Query& q, const std::string& name) {
  auto it = q.find(name);
  if (it == q.end()) return std::nullopt;
  if (it->second.empty()) throw BadInput(name, "'" + name + "' must not be empty.");
  return it->second;
}

int limit_param(const Query& q, int fallback, int max) {
  auto v = get(q, "limit");
  if (!v) return fallback;
  const std::string message =
      "'limit' must be an integer between 1 and " + std::to_string(max) + ".";
  int n = 0;
  try {
    std::size_t used = 0;
    n = std::stoi(*v, &used);
    if (used != v->size()) throw BadInput("limit", message);
  } catch (const std::logic_error&) {
    throw BadInput("limit", message);
  }
  if (n < 1 || n > max) throw BadInput("limit", message);
  return n;
}

std::int64_t time_param(const Query& q, const std::string& name) {
  auto v = get(q, name);
  if (!v) throw BadInput(name, "'" + name + "' is required: an RFC 3339 time such as "
                                            "2026-03-01T00:00:00Z.");
  try {
    return billing::parse_rfc3339_us(*v);
  } catch (const std::invalid_argument& e) {
    throw BadInput(name, "'" + name + "': " + e.what() + ".");
  }
}

std::optional<std::string> status_param(const Query& q) {
  auto s = get(q, "status");
  if (s && *s != "draft" && *s != "finalized" && *s != "void")
    throw BadInput("status", "'status' must be draft, finalized or void.");
  return s;
}

// format=csv|json wins; else Accept: text/csv asks for CSV.
bool wants_csv(const Request& req, const Query& q) {
  if (auto f = get(q, "format")) {
    if (*f == "csv") return true;
    if (*f == "json") return false;
    throw BadInput("format", "'format' must be csv or json.");
  }
  std::string accept(req[http::field::accept]);
  for (auto& c : accept) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return accept.find("text/csv") != std::string::npos;
}

json::object list_of(json::array data, const std::optional<std::string>& next) {
  return {{"object", "list"},
          {"data", std::move(data)},
          {"has_more", next.has_value()},
          {"next_cursor", next ? json::value(*next) : json::value(nullptr)}};
}

json::object invoice_summary(const billing::Invoice& inv) { return billing::to_json(inv, false); }

}  // namespace

BillingApi::BillingApi(infra::PgPool& pg, Authenticator& auth, InferenceApi& inference,
                       Admission& admission)
    : pg_(pg), auth_(auth), inference_(inference), admission_(admission) {}

asio::awaitable<Response> BillingApi::usage(const Request& req, const RequestContext& ctx,
                                            const std::optional<std::string>& forced_tenant) {
  std::vector<std::string> allowed{"key",      "model", "start", "end",    "bucket",
                                   "tz",       "group_by", "limit", "cursor", "format"};
  if (!forced_tenant) allowed.push_back("tenant");
  const Query q = query_params(ctx, allowed);
  billing::UsageQuery uq;
  uq.tenant = forced_tenant ? forced_tenant : get(q, "tenant");
  uq.api_key_id = get(q, "key");
  uq.model = get(q, "model");
  uq.start_us = time_param(q, "start");
  uq.end_us = time_param(q, "end");
  uq.bucket = get(q, "bucket");
  uq.timezone = get(q, "tz");
  if (auto g = get(q, "group_by")) billing::parse_group_by(*g, uq);
  uq.limit = limit_param(q, 100, 10000);
  uq.cursor = get(q, "cursor");
  const bool csv = wants_csv(req, q);
  const auto job = [uq](pqxx::connection& c) {
    pqxx::work tx(c);
    return billing::usage_report(tx, uq);
  };
  billing::UsagePage page = co_await pg_.run(job);
  if (csv) {
    Response res = text_response("text/csv; charset=utf-8", billing::usage_csv(page.rows),
                                 req.version());
    res.set("x-has-more", page.next_cursor ? "true" : "false");
    if (page.next_cursor) res.set("x-next-cursor", *page.next_cursor);
    co_return res;
  }
  json::array data;
  for (const auto& r : page.rows) data.push_back(billing::to_json(r));
  json::object out = list_of(std::move(data), page.next_cursor);
  out["timezone"] = page.timezone;
  co_return json_response(http::status::ok, out, req.version());
}

void BillingApi::add_routes(Router& r) {
  add_price_routes(r);
  add_invoice_routes(r);
  add_export_routes(r);

  r.add(http::verb::get, "/admin/v1/usage",
        admin_route(auth_, [this](Request& req, RequestContext& ctx,
                                  const std::string&) -> asio::awaitable<Response> {
          const std::optional<std::string> none;
          Response res = co_await usage(req, ctx, none);
          co_return res;
        }));

  r.add(http::verb::get, "/v1/usage",
        [this](Request& req, RequestContext& ctx) -> asio::awaitable<Response> {
          std::variant<Response, InferenceApi::Admitted> started =
              co_await inference_.begin(req, 0);
          if (auto* refused = std::get_if<Response>(&started)) co_return std::move(*refused);
          auto& ok = std::get<InferenceApi::Admitted>(started);
          const std::optional<std::string> tenant = ok.auth.principal().tenant_id;
          const ResponseBody run = [&]() -> asio::awaitable<Response> {
            Response res = co_await usage(req, ctx, tenant);
            co_return res;
          };
          Response res = co_await with_error_responses(req, run);
          set_rate_limit_headers(res, ok.decision.rate);
          co_await admission_.settle(*ok.decision.reservation, 0);
          co_return res;
        });
}

void BillingApi::add_price_routes(Router& r) {
  r.add(http::verb::post, "/admin/v1/prices",
        admin_route(auth_, [this](Request& req, RequestContext&,
                                  const std::string& actor) -> asio::awaitable<Response> {
          json::object body = parse_json_object(req);
          if (auto it = body.find("price_per_million");
              it != body.end() && it->value().is_number())
            throw BadInput("price_per_million",
                           "'price_per_million' must be a decimal string such as \"2.50\", not "
                           "a JSON number (which may lose precision).");
          FieldReader f(body);
          billing::NewPrice p;
          p.model = *f.string("model", true);
          p.token_class = *f.string("token_class", true);
          p.price_per_million = *f.string("price_per_million", true);
          p.currency = *f.string("currency", true);
          p.effective_from = *f.string("effective_from", true);
          f.finish();
          const auto job = [p, actor](pqxx::connection& c) {
            pqxx::work tx(c);
            billing::PriceVersion v = billing::add_price(tx, p);
            accounts::audit(tx, actor, "price.create", "price", v.id, nullptr,
                            billing::to_json(v));
            tx.commit();
            return v;
          };
          billing::PriceVersion v = co_await pg_.run(job);
          co_return json_response(http::status::created, billing::to_json(v), req.version());
        }));

  r.add(http::verb::get, "/admin/v1/prices",
        admin_route(auth_, [this](Request& req, RequestContext& ctx,
                                  const std::string&) -> asio::awaitable<Response> {
          const Query q = query_params(ctx, {"model", "currency", "limit", "cursor"});
          const auto model = get(q, "model"), currency = get(q, "currency"),
                     cursor = get(q, "cursor");
          if (currency && !billing::is_currency_code(*currency))
            throw BadInput("currency", "'currency' must be an ISO 4217 code such as USD.");
          const int limit = limit_param(q, 100, 1000);
          const auto job = [=](pqxx::connection& c) {
            pqxx::work tx(c);
            return billing::list_prices(tx, model, currency, cursor, limit);
          };
          billing::PricePage page = co_await pg_.run(job);
          json::array data;
          for (const auto& p : page.prices) data.push_back(billing::to_json(p));
          co_return json_response(http::status::ok, list_of(std::move(data), page.next_cursor),
                                  req.version());
        }));
}

void BillingApi::add_invoice_routes(Router& r) {
  r.add(http::verb::post, "/admin/v1/invoices",
        admin_route(auth_, [this](Request& req, RequestContext&,
                                  const std::string& actor) -> asio::awaitable<Response> {
          json::object body = parse_json_object(req);
          FieldReader f(body);
          const std::string tenant = *f.string("tenant", true);
          const std::string period_text = *f.string("period", true);
          f.finish();
          const billing::BillingMonth period = billing::BillingMonth::parse(period_text);
          const auto job = [tenant, period, actor](pqxx::connection& c) {
            pqxx::work tx(c);
            billing::Generated g = billing::generate_invoice(tx, tenant, period);
            accounts::audit(tx, actor, "invoice.generate", "invoice", g.invoice.id,
                            g.before ? json::value(invoice_summary(*g.before)) : nullptr,
                            invoice_summary(g.invoice));
            tx.commit();
            return g;
          };
          billing::Generated g = co_await pg_.run(job);
          co_return json_response(g.created ? http::status::created : http::status::ok,
                                  billing::to_json(g.invoice), req.version());
        }));

  r.add(http::verb::get, "/admin/v1/invoices",
        admin_route(auth_, [this](Request& req, RequestContext& ctx,
                                  const std::string&) -> asio::awaitable<Response> {
          const Query q = query_params(ctx, {"tenant", "status", "period", "limit", "cursor"});
          billing::InvoiceFilter filter;
          filter.tenant = get(q, "tenant");
          filter.status = status_param(q);
          if (auto p = get(q, "period")) filter.period = billing::BillingMonth::parse(*p);
          const auto cursor = get(q, "cursor");
          const int limit = limit_param(q, 50, 500);
          const auto job = [=](pqxx::connection& c) {
            pqxx::work tx(c);
            return billing::list_invoices(tx, filter, cursor, limit, false);
          };
          billing::InvoicePage page = co_await pg_.run(job);
          json::array data;
          for (const auto& i : page.invoices) data.push_back(invoice_summary(i));
          co_return json_response(http::status::ok, list_of(std::move(data), page.next_cursor),
                                  req.version());
        }));

  r.add(http::verb::get, "/admin/v1/invoices/{id}",
        admin_route(auth_, [this](Request& req, RequestContext& ctx,
                                  const std::string&) -> asio::awaitable<Response> {
          const std::string id = ctx.params["id"];
          const auto job = [id](pqxx::connection& c) {
            pqxx::work tx(c);
            return billing::find_invoice(tx, id);
          };
          std::optional<billing::Invoice> inv = co_await pg_.run(job);
          if (!inv)
            throw billing::BillingError(billing::BillingError::Kind::not_found, "id",
                                        "No invoice '" + id + "'.");
          co_return json_response(http::status::ok, billing::to_json(*inv), req.version());
        }));

  r.add(http::verb::post, "/admin/v1/invoices/{id}/finalize",
        admin_route(auth_, [this](Request& req, RequestContext& ctx,
                                  const std::string& actor) -> asio::awaitable<Response> {
          if (!req.body().empty()) {
            json::object body = parse_json_object(req);
            FieldReader(body).finish();
          }
          const std::string id = ctx.params["id"];
          const auto job = [id, actor](pqxx::connection& c) {
            pqxx::work tx(c);
            billing::Invoice inv = billing::finalize_invoice(tx, id);
            accounts::audit(tx, actor, "invoice.finalize", "invoice", id, nullptr,
                            invoice_summary(inv));
            tx.commit();
            return inv;
          };
          billing::Invoice inv = co_await pg_.run(job);
          co_return json_response(http::status::ok, billing::to_json(inv), req.version());
        }));

  r.add(http::verb::post, "/admin/v1/invoices/{id}/void",
        admin_route(auth_, [this](Request& req, RequestContext& ctx,
                                  const std::string& actor) -> asio::awaitable<Response> {
          json::object body = parse_json_object(req);
          FieldReader f(body);
          const std::string reason = *f.string("reason", true);
          f.finish();
          const std::string id = ctx.params["id"];
          const auto job = [id, reason, actor](pqxx::connection& c) {
            pqxx::work tx(c);
            billing::Invoice inv = billing::void_invoice(tx, id, reason);
            accounts::audit(tx, actor, "invoice.void", "invoice", id, nullptr,
                            invoice_summary(inv));
            tx.commit();
            return inv;
          };
          billing::Invoice inv = co_await pg_.run(job);
          co_return json_response(http::status::ok, billing::to_json(inv), req.version());
        }));
}

void BillingApi::add_export_routes(Router& r) {
  for (const char* file : {"invoices.csv", "invoice_lines.csv", "invoices.json"}) {
    const std::string name = file;
    r.add(http::verb::get, "/admin/v1/exports/" + name,
          admin_route(auth_, [this, name](Request& req, RequestContext& ctx,
                                          const std::string&) -> asio::awaitable<Response> {
            const Query q = query_params(ctx, {"period", "tenant", "status"});
            billing::InvoiceFilter filter;
            auto period = get(q, "period");
            if (!period) throw BadInput("period", "'period' is required: a month as YYYY-MM.");
            filter.period = billing::BillingMonth::parse(*period);
            filter.tenant = get(q, "tenant");
            filter.status = status_param(q);
            const auto job = [filter](pqxx::connection& c) {
              pqxx::work tx(c);
              return billing::list_invoices(tx, filter, std::nullopt, 0, true);
            };
            billing::InvoicePage page = co_await pg_.run(job);
            const std::string stem = name.substr(0, name.find('.'));
            if (name == "invoices.json") {
              json::array data;
              for (const auto& i : page.invoices) data.push_back(billing::to_json(i));
              co_return json_response(http::status::ok,
                                      json::object{{"object", "list"}, {"data", std::move(data)}},
                                      req.version());
            }
            Response res = text_response(
                "text/csv; charset=utf-8",
                stem == "invoices" ? billing::invoices_csv(page.invoices)
                                   : billing::invoice_lines_csv(page.invoices),
                req.version());
            res.set(http::field::content_disposition,
                    "attachment; filename=\"" + stem + "-" + *period + ".csv\"");
            co_return res;
          }));
  }
}

}  // namespace infergate::gateway
