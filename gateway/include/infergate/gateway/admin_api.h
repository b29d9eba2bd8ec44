// The admin REST API (/admin/v1, admin-scoped keys only) over plans, tenants and API keys,
// and the authenticated /v1 routes that exist so far. Handlers validate strictly (400 naming
// the field), run their change and its audit row in one transaction on the Postgres pool, and
// then tell every instance to drop affected cached keys (Redis pub/sub).
#pragma once

#include "infergate/gateway/auth.h"
#include "infergate/gateway/router.h"
#include "infergate/infra/pg_pool.h"
#include "infergate/infra/redis_client.h"

namespace infergate::gateway {

// The response for a failed authentication (OpenAI error shape).
Response auth_failure_response(AuthOutcome outcome, const Request& req);

// An /admin route: authenticates an admin-scoped key, then runs `body` with the acting key
// ("key:<id>", for the audit log) and turns its errors into responses (api_errors.h).
using AdminBody = std::function<boost::asio::awaitable<Response>(Request&, RequestContext&,
                                                                 const std::string& actor)>;
Handler admin_route(Authenticator& auth, AdminBody body);

class AdminApi {
 public:
  // `redis` publishes invalidations; it may be null (single instance, tests).
  AdminApi(infra::PgPool& pg, infra::RedisClient* redis, Authenticator& auth);
  void add_routes(Router& router);

 private:
  Handler admin(AdminBody body);
  boost::asio::awaitable<void> invalidate(const std::string& message);

  infra::PgPool& pg_;
  infra::RedisClient* redis_;
  Authenticator& auth_;
};

}  // namespace infergate::gateway
