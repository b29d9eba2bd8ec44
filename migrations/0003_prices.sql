-- Prices per million tokens, by model, token class and currency, as exact decimals
-- (ARCHITECTURE.md §4). A version is in force from effective_from until the next version of the
-- same (model, token_class, currency); a request is priced by the version in force when it
-- started. Versions are never updated or deleted: a price change is a new version.
--
-- Token classes: input = prompt tokens not served from the prompt cache, cached_input = prompt
-- tokens served from it, output = completion tokens.

CREATE TABLE price_versions (
  id                text PRIMARY KEY,
  model             text NOT NULL CHECK (char_length(model) BETWEEN 1 AND 128),
  token_class       text NOT NULL CHECK (token_class IN ('input', 'cached_input', 'output')),
  price_per_million numeric NOT NULL CHECK (price_per_million >= 0),
  currency          text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  effective_from    timestamptz NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  -- Also the lookup index: the latest effective_from <= t for a model, class and currency.
  UNIQUE (model, token_class, currency, effective_from)
);
CREATE INDEX price_versions_list_idx ON price_versions (model, id);
