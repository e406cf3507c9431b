-- Transaction authorization (authsvc/txauth). Amounts in fen, times Unix ms.

-- tx_intents: one row per intent, keyed by its hash (authsvc/intent), with
-- the decision made when it was authorized. The same intent posted again
-- finds this row and gets the same decision; the same (customer,
-- idempotency key) with other fields conflicts on the unique index.
-- state: allowed (waiting for a proof), review (waiting for staff),
-- denied, refused (staff said no), granted, executed, cancelled.
CREATE TABLE IF NOT EXISTS tx_intents (
  hash TEXT PRIMARY KEY,
  customer TEXT NOT NULL,
  idem_key TEXT NOT NULL,
  body TEXT NOT NULL,               -- the intent as JSON
  payee TEXT NOT NULL,
  amount BIGINT NOT NULL,
  device TEXT NOT NULL,
  action TEXT NOT NULL,             -- allow, review, deny: what was decided
  level INTEGER NOT NULL,           -- the level required (0 for deny)
  decision TEXT NOT NULL,           -- the decision as JSON (the API answer)
  features TEXT NOT NULL,           -- the risk features it was decided on, JSON by rule names ('{}' for a limit denial)
  state TEXT NOT NULL,
  proved_level INTEGER NOT NULL DEFAULT 0,
  proved_factor TEXT NOT NULL DEFAULT '',
  reviewer TEXT NOT NULL DEFAULT '',
  review_note TEXT NOT NULL DEFAULT '',
  created_ms BIGINT NOT NULL,
  updated_ms BIGINT NOT NULL,
  UNIQUE (customer, idem_key)
);
CREATE INDEX IF NOT EXISTS tx_intents_customer ON tx_intents (customer, created_ms);
CREATE INDEX IF NOT EXISTS tx_intents_state ON tx_intents (state, created_ms);
-- The risk features: history (executed), payee paid before, device seen.
CREATE INDEX IF NOT EXISTS tx_intents_history ON tx_intents (customer, state, created_ms);
CREATE INDEX IF NOT EXISTS tx_intents_payee ON tx_intents (customer, payee);
CREATE INDEX IF NOT EXISTS tx_intents_device ON tx_intents (customer, device);

-- tx_challenges: which tool a challenge of an intent was begun with (the
-- tool keeps the challenge itself, bound to the intent hash).
CREATE TABLE IF NOT EXISTS tx_challenges (
  id TEXT PRIMARY KEY,
  intent_hash TEXT NOT NULL,
  factor TEXT NOT NULL,
  level INTEGER NOT NULL,
  created_ms BIGINT NOT NULL
);

-- tx_grants: what a platform executes with. Only the SHA-256 of the token
-- is kept; a grant is consumed by one UPDATE … WHERE used_ms IS NULL AND
-- expires_ms > now, so one execute call wins.
CREATE TABLE IF NOT EXISTS tx_grants (
  token_hash TEXT PRIMARY KEY,
  intent_hash TEXT NOT NULL,
  created_ms BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL,
  used_ms BIGINT                    -- NULL while unused; set on execute or cancel
);
CREATE INDEX IF NOT EXISTS tx_grants_intent ON tx_grants (intent_hash);

-- tx_failures: failed proofs, for the risk feature failures.proofs_24h.
CREATE TABLE IF NOT EXISTS tx_failures (
  customer TEXT NOT NULL,
  at_ms BIGINT NOT NULL,
  intent_hash TEXT NOT NULL,
  factor TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tx_failures_customer ON tx_failures (customer, at_ms);

-- tx_alert_prefs: a customer's alert preferences; no row: every kind, SMS
-- for every amount.
CREATE TABLE IF NOT EXISTS tx_alert_prefs (
  customer TEXT PRIMARY KEY,
  risk INTEGER NOT NULL,            -- 1: risk alerts (denied, stepped up, held for review)
  balance INTEGER NOT NULL,         -- 1: balance-change alerts
  sms_min_amount BIGINT NOT NULL,   -- fen: smaller amounts go to the inbox only
  updated_ms BIGINT NOT NULL
);
