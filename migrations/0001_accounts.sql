-- Plans, tenants, API keys and the admin audit log (ARCHITECTURE.md §4).
-- Limits: NULL in a plan means unlimited. Tenant and key overrides are JSON objects whose keys
-- are limit names; a number overrides, JSON null means "unlimited here", an absent key inherits.

CREATE TABLE plans (
  id                      text PRIMARY KEY,
  name                    text NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 64),
  requests_per_minute     bigint CHECK (requests_per_minute >= 0),
  tokens_per_minute       bigint CHECK (tokens_per_minute >= 0),
  max_concurrent_requests bigint CHECK (max_concurrent_requests >= 0),
  tokens_per_day          bigint CHECK (tokens_per_day >= 0),
  tokens_per_month        bigint CHECK (tokens_per_month >= 0),
  allowed_tiers           text[] NOT NULL DEFAULT '{}',
  scheduling_weight       integer NOT NULL DEFAULT 1 CHECK (scheduling_weight BETWEEN 1 AND 1000),
  created_at              timestamptz NOT NULL DEFAULT now(),
  updated_at              timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenants (
  id               text PRIMARY KEY,
  name             text NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 64),
  plan_id          text NOT NULL REFERENCES plans (id),
  limit_overrides  jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(limit_overrides) = 'object'),
  status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  billing_timezone text NOT NULL DEFAULT 'UTC',
  currency         text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenants_plan_idx ON tenants (plan_id);
CREATE INDEX tenants_status_idx ON tenants (status, id);

-- The key a client sends is ig_live_<id>_<secret>; only the SHA-256 of the secret is stored.
CREATE TABLE api_keys (
  id              text PRIMARY KEY,
  tenant_id       text REFERENCES tenants (id),
  name            text NOT NULL DEFAULT '' CHECK (char_length(name) <= 128),
  scopes          text[] NOT NULL
                  CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['inference', 'admin']::text[]),
  display_prefix  text NOT NULL,
  secret_sha256   bytea NOT NULL CHECK (octet_length(secret_sha256) = 32),
  limit_overrides jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(limit_overrides) = 'object'),
  created_at      timestamptz NOT NULL DEFAULT now(),
  expires_at      timestamptz,
  revoked_at      timestamptz,
  replaced_by     text REFERENCES api_keys (id),
  -- Inference keys belong to a tenant; admin keys belong to none.
  CHECK ((tenant_id IS NULL) = ('admin' = ANY (scopes)))
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id, created_at);

CREATE TABLE admin_audit (
  id           bigserial PRIMARY KEY,
  actor        text NOT NULL,          -- "key:<id>" for the API, "cli" for the command line
  action       text NOT NULL,          -- e.g. "tenant.create"
  target_type  text NOT NULL,
  target_id    text NOT NULL,
  before       jsonb,
  after        jsonb,
  at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX admin_audit_target_idx ON admin_audit (target_type, target_id, at);
