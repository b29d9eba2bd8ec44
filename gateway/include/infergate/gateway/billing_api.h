// The billing endpoints: prices and invoices (admin keys), usage reports for admins
// (/admin/v1/usage) and for a tenant about itself (/v1/usage, inference keys, admitted like
// every /v1 request), and the finance exports. Handlers read and check the HTTP input, then
// call billing/ in one transaction on the Postgres pool (changes audited in the same one).
#pragma once

#include <optional>
#include <string>

#include "infergate/gateway/admission.h"
#include "infergate/gateway/auth.h"
#include "infergate/gateway/inference_api.h"
#include "infergate/gateway/router.h"
#include "infergate/infra/pg_pool.h"

namespace infergate::gateway {

class BillingApi {
 public:
  BillingApi(infra::PgPool& pg, Authenticator& auth, InferenceApi& inference,
             Admission& admission);
  void add_routes(Router& router);

 private:
  void add_price_routes(Router& r);
  void add_invoice_routes(Router& r);
  void add_export_routes(Router& r);
  // The report for /admin/v1/usage (forced_tenant empty) and /v1/usage (the caller's tenant).
  boost::asio::awaitable<Response> usage(const Request& req, const RequestContext& ctx,
                                         const std::optional<std::string>& forced_tenant);

  infra::PgPool& pg_;
  Authenticator& auth_;
  InferenceApi& inference_;
  Admission& admission_;
};

}  // namespace infergate::gateway
