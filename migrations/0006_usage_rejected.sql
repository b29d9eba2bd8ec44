-- Usage records that Postgres refuses for their content (a value a constraint of usage_events
-- rules out, e.g. an end before the start after the wall clock stepped back mid-request, which
-- the gateway now prevents, or a record written by a future version). The ledger writer used to
-- retry such a batch forever, and with it every later record of the instance. Now the batch is
-- inserted record by record: the good ones land in usage_events, each refused one lands here,
-- whole (the journal's JSON, exactly as written), with Postgres' error, and the writer moves on.
-- Nothing is dropped: a row here is usage that is not billed until someone corrects it and
-- inserts it into usage_events (infergate_ledger_records_total{result="rejected"} counts them,
-- and the writer logs each one as an error). A record refused twice (a replay) is kept once.
CREATE TABLE usage_rejected (
  record      text NOT NULL,
  error       text NOT NULL,
  rejected_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX usage_rejected_record_idx ON usage_rejected (md5(record));
