#include "infergate/gateway/api_errors.h"

#include <pqxx/except>

#include "infergate/billing/billing_error.h"
#include "infergate/gateway/accounts.h"
#include "infergate/gateway/json_input.h"
#include "infergate/infra/pg_pool.h"

namespace infergate::gateway {

namespace asio = boost::asio;

namespace {

std::optional<std::string_view> param_of(const std::string& p) {
  if (p.empty()) return std::nullopt;
  return p;
}

Response store_error(const Request& req, int kind, const char* message, const std::string& param) {
  switch (kind) {
    case 1:
      return error_response(http::status::not_found, message, "invalid_request_error",
                            "not_found", param_of(param), req.version());
    case 2:
      return error_response(http::status::conflict, message, "invalid_request_error", "conflict",
                            param_of(param), req.version());
    default:
      return error_response(http::status::bad_request, message, "invalid_request_error",
                            "invalid_request", param_of(param), req.version());
  }
}

int kind_of(accounts::AccountError::Kind k) {
  using K = accounts::AccountError::Kind;
  return k == K::not_found ? 1 : k == K::conflict ? 2 : 0;
}

int kind_of(billing::BillingError::Kind k) {
  using K = billing::BillingError::Kind;
  return k == K::not_found ? 1 : k == K::conflict ? 2 : 0;
}

}  // namespace

asio::awaitable<Response> with_error_responses(const Request& req, const ResponseBody& body) {
  std::optional<Response> error;
  try {
    Response res = co_await body();
    co_return res;
  } catch (const BadInput& e) {
    error = error_response(http::status::bad_request, e.what(), "invalid_request_error",
                           "invalid_request", param_of(e.param()), req.version());
  } catch (const accounts::AccountError& e) {
    error = store_error(req, kind_of(e.kind()), e.what(), e.field());
  } catch (const billing::BillingError& e) {
    error = store_error(req, kind_of(e.kind()), e.what(), e.param());
  } catch (const pqxx::integrity_constraint_violation& e) {
    // The database's own guard (e.g. a finalized invoice's trigger) refused the change.
    error = store_error(req, 2, e.what(), "");
  } catch (const infra::PgUnavailable& e) {
    error = error_response(http::status::service_unavailable,
                           std::string("The database is unavailable: ") + e.what() +
                               ". Nothing was changed; retry shortly.",
                           "server_error", "database_unavailable", std::nullopt, req.version());
  } catch (const infra::PgTimeout& e) {
    error = error_response(http::status::service_unavailable,
                           std::string(e.what()) +
                               ". The change may or may not have been applied; read it back "
                               "before retrying.",
                           "server_error", "database_timeout", std::nullopt, req.version());
  }
  co_return std::move(*error);
}

}  // namespace infergate::gateway
