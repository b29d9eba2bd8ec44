-- Invoices per tenant and calendar month (in the tenant's billing time zone, stored as the UTC
-- half-open range [period_start, period_end)), with one line per model and token class.
-- Money: exact amounts as numeric, each line rounded once to the currency's minor units (half
-- away from zero); the total is the sum of the rounded lines. Lifecycle draft -> finalized ->
-- void: a number is assigned at finalization from a counter row (sequential, no gaps), and
-- finalized invoices never change except to become void (enforced below, not only by the code).

-- The last invoice number issued. Finalization locks this row, so numbers are consecutive and
-- a rolled-back finalization leaves no gap (a sequence would).
CREATE TABLE invoice_number_counter (
  singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  last_number bigint NOT NULL CHECK (last_number >= 0)
);
INSERT INTO invoice_number_counter (singleton, last_number) VALUES (true, 0);

CREATE TABLE invoices (
  id                text PRIMARY KEY,
  tenant_id         text NOT NULL REFERENCES tenants (id),
  period            text NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
  period_start      timestamptz NOT NULL,
  period_end        timestamptz NOT NULL CHECK (period_end > period_start),
  timezone          text NOT NULL,
  currency          text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  minor_digits      smallint NOT NULL CHECK (minor_digits BETWEEN 0 AND 4),
  status            text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'finalized', 'void')),
  number            bigint UNIQUE,
  total_minor       bigint NOT NULL DEFAULT 0,
  void_reason       text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  finalized_at      timestamptz,
  voided_at         timestamptz,
  CHECK ((status = 'draft') = (number IS NULL)),
  CHECK ((status = 'draft') = (finalized_at IS NULL)),
  CHECK ((status = 'void') = (void_reason IS NOT NULL AND voided_at IS NOT NULL))
);
-- At most one invoice per tenant and period that is not void.
CREATE UNIQUE INDEX invoices_live_period_idx ON invoices (tenant_id, period_start)
  WHERE status <> 'void';
CREATE INDEX invoices_period_idx ON invoices (period, id);

-- One line per model and token class. Adjustment lines carry usage of an earlier, already
-- finalized period that reached the ledger after that period was invoiced (source_period*).
CREATE TABLE invoice_lines (
  invoice_id             text NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
  line_no                integer NOT NULL CHECK (line_no >= 1),
  model                  text NOT NULL,
  token_class            text NOT NULL CHECK (token_class IN ('input', 'cached_input', 'output')),
  quantity               bigint NOT NULL,
  -- NULL when the line spans several price versions (see invoice_line_prices).
  unit_price_per_million numeric,
  exact_amount           numeric NOT NULL,
  amount_minor           bigint NOT NULL,
  is_adjustment          boolean NOT NULL DEFAULT false,
  source_period          text,
  source_period_start    timestamptz,
  source_period_end      timestamptz,
  PRIMARY KEY (invoice_id, line_no),
  CHECK (is_adjustment = (source_period IS NOT NULL))
);

-- What each line was priced from: quantity per price version. Also the record of what has
-- been invoiced for a period, from which later adjustments are computed (never twice).
CREATE TABLE invoice_line_prices (
  invoice_id             text NOT NULL,
  line_no                integer NOT NULL,
  price_version_id       text NOT NULL REFERENCES price_versions (id),
  unit_price_per_million numeric NOT NULL,
  quantity               bigint NOT NULL,
  exact_amount           numeric NOT NULL,
  PRIMARY KEY (invoice_id, line_no, price_version_id),
  FOREIGN KEY (invoice_id, line_no) REFERENCES invoice_lines (invoice_id, line_no)
    ON DELETE CASCADE
);

-- Finalized and void invoices are immutable, apart from finalized -> void.
CREATE FUNCTION infergate_invoice_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.status = 'finalized' AND NEW.status = 'void'
     AND NEW.number = OLD.number AND NEW.total_minor = OLD.total_minor
     AND NEW.period_start = OLD.period_start AND NEW.period_end = OLD.period_end
     AND NEW.tenant_id = OLD.tenant_id AND NEW.currency = OLD.currency THEN
    RETURN NEW;
  END IF;
  IF OLD.status <> 'draft' THEN
    RAISE EXCEPTION 'invoice % is %, and cannot change', OLD.id, OLD.status
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER invoices_immutable BEFORE UPDATE OR DELETE ON invoices
  FOR EACH ROW EXECUTE FUNCTION infergate_invoice_immutable();

CREATE FUNCTION infergate_invoice_lines_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  s text;
BEGIN
  SELECT status INTO s FROM invoices
   WHERE id = (CASE WHEN TG_OP = 'INSERT' THEN NEW.invoice_id ELSE OLD.invoice_id END);
  IF TG_OP = 'DELETE' AND s IS NULL THEN RETURN OLD; END IF;  -- a draft deleted with its lines
  IF s IS DISTINCT FROM 'draft' THEN
    RAISE EXCEPTION 'the lines of a % invoice cannot change', coalesce(s, 'missing')
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER invoice_lines_immutable BEFORE INSERT OR UPDATE OR DELETE ON invoice_lines
  FOR EACH ROW EXECUTE FUNCTION infergate_invoice_lines_immutable();
CREATE TRIGGER invoice_line_prices_immutable BEFORE INSERT OR UPDATE OR DELETE ON invoice_line_prices
  FOR EACH ROW EXECUTE FUNCTION infergate_invoice_lines_immutable();
