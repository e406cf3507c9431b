-- Dynamic-password tokens (issue 4, devices/otp, authsvc/otp). Times are Unix ms.

-- otp_tokens: one OATH key of a token. The seed is only ever stored wrapped
-- by the HSM key named wrap_label; HMACs are computed inside the HSM.
-- counter is the replay ledger's high-water mark: the next HOTP/OCRA counter
-- that may be accepted, or for TOTP the first time step that may be. It only
-- ever grows, by one atomic UPDATE ... WHERE counter <= accepted, so no code
-- or step is accepted twice, on any replica.
CREATE TABLE IF NOT EXISTS otp_tokens (
  id TEXT PRIMARY KEY,
  serial TEXT NOT NULL,
  key_id TEXT NOT NULL,
  manufacturer TEXT NOT NULL,
  kind TEXT NOT NULL,              -- 'hotp', 'totp' or 'ocra'
  hash TEXT NOT NULL,              -- 'SHA1', 'SHA256', 'SHA512'
  digits INTEGER NOT NULL,
  period_s INTEGER NOT NULL,       -- TOTP step, 0 otherwise
  t0 BIGINT NOT NULL,              -- TOTP T0 in Unix seconds
  suite TEXT NOT NULL,             -- OCRA suite, '' otherwise
  wrap_label TEXT NOT NULL,
  wrapped BYTEA NOT NULL,
  counter BIGINT NOT NULL,
  drift BIGINT NOT NULL,           -- TOTP clock drift in steps, learnt by resync
  passport_id TEXT,                -- NULL until assigned to a customer
  status TEXT NOT NULL,            -- 'active' or 'revoked'
  failures INTEGER NOT NULL,       -- failed attempts since the last success (reserved before comparing)
  locked_until_ms BIGINT NOT NULL, -- 0 not locked, -1 until an operator unlocks, else auto-unlock time
  not_before_ms BIGINT NOT NULL,
  not_after_ms BIGINT NOT NULL,    -- 0 when the file gave no expiry
  imported_ms BIGINT NOT NULL,
  assigned_ms BIGINT NOT NULL,
  UNIQUE (serial, key_id)
);
CREATE INDEX IF NOT EXISTS otp_tokens_passport ON otp_tokens (passport_id);
CREATE INDEX IF NOT EXISTS otp_tokens_serial ON otp_tokens (serial);

-- otp_challenges: single-use challenges (login prompts and OCRA questions,
-- the latter bound to a transaction hash). used_ms is set by one atomic
-- UPDATE ... WHERE used_ms IS NULL.
CREATE TABLE IF NOT EXISTS otp_challenges (
  id TEXT PRIMARY KEY,
  token_id TEXT NOT NULL,
  passport_id TEXT NOT NULL,
  purpose TEXT NOT NULL,
  question TEXT NOT NULL,          -- OCRA question, '' for HOTP/TOTP
  tx_hash BYTEA,
  created_ms BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL,
  used_ms BIGINT
);
