-- The usage ledger: one row per request (refused and cancelled ones too), append-only, token
-- counts as integers, times in UTC. Partitioned by calendar month (UTC) of started_at.
--
-- Uniqueness: a partitioned table's unique key must contain the partition key, so the key is
-- (tenant_id, request_id, started_at). A request's started_at is fixed when the request starts
-- and travels with its record, so replaying or re-sending a record hits the same key and
-- inserts nothing ("ON CONFLICT DO NOTHING"): one row per request, never two.

CREATE TABLE usage_events (
  tenant_id              text NOT NULL,
  request_id             text NOT NULL,
  api_key_id             text,
  model                  text NOT NULL,
  tier                   text NOT NULL DEFAULT '',
  prompt_tokens          bigint NOT NULL CHECK (prompt_tokens >= 0),
  completion_tokens      bigint NOT NULL CHECK (completion_tokens >= 0),
  cached_tokens          bigint NOT NULL DEFAULT 0 CHECK (cached_tokens >= 0),
  status                 text NOT NULL
                         CHECK (status IN ('completed', 'cancelled', 'failed', 'refused')),
  finish_reason          text,
  started_at             timestamptz NOT NULL,
  ended_at               timestamptz NOT NULL,
  time_to_first_token_ms integer CHECK (time_to_first_token_ms >= 0),
  price_version_id       text,
  PRIMARY KEY (tenant_id, request_id, started_at),
  CHECK (ended_at >= started_at)
) PARTITION BY RANGE (started_at);

CREATE INDEX usage_events_tenant_time_idx ON usage_events (tenant_id, started_at);
CREATE INDEX usage_events_key_time_idx ON usage_events (api_key_id, started_at);
CREATE INDEX usage_events_model_time_idx ON usage_events (model, started_at);

-- Rows outside every monthly partition land here rather than being refused.
CREATE TABLE usage_events_default PARTITION OF usage_events DEFAULT;

-- Creates the monthly partitions for `months` months starting with the month of `first`
-- (UTC), skipping those that exist. Idempotent; the server calls it at startup and daily.
CREATE FUNCTION infergate_ensure_usage_partitions(first timestamptz, months integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  m timestamptz := date_trunc('month', first AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
  name text;
BEGIN
  FOR i IN 1..months LOOP
    name := 'usage_events_' || to_char(m AT TIME ZONE 'UTC', 'YYYY_MM');
    IF to_regclass(name) IS NULL THEN
      EXECUTE format('CREATE TABLE %I PARTITION OF usage_events FOR VALUES FROM (%L) TO (%L)',
                     name, m, m + interval '1 month');
    END IF;
    m := m + interval '1 month';
  END LOOP;
END $$;

SELECT infergate_ensure_usage_partitions(now() - interval '1 month', 4);
