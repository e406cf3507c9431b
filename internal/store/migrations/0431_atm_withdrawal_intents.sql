-- The transaction intent that authorized each QR withdrawal (issue 15),
-- recorded by the withdrawal's authorizer (internal/app) once its grant is
-- executed, so that a withdrawal that paid nothing out (NOT_DISPENSED,
-- RETRACTED) cancels its intent and gives the customer's limit usage back.
CREATE TABLE IF NOT EXISTS atm_withdrawal_intents (
  session TEXT PRIMARY KEY,        -- atm_withdrawals.session
  intent_hash TEXT NOT NULL,       -- tx_intents' hash (hex)
  created_ms BIGINT NOT NULL
);
