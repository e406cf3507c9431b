-- Authenticators (issue 4): the bank CA, U-shield bindings, grid cards, SMS
-- codes, and the single-use challenges they all share. Times are Unix ms.

-- ca_authorities: the root and issuing CA certificates; their keys live in the HSM
-- under key_label.
CREATE TABLE IF NOT EXISTS ca_authorities (
  name TEXT PRIMARY KEY,           -- 'root' or 'issuing'
  cert_der BYTEA NOT NULL,
  key_label TEXT NOT NULL,
  created_ms BIGINT NOT NULL
);

-- ca_certs: every certificate the issuing CA signed, and its revocation.
CREATE TABLE IF NOT EXISTS ca_certs (
  serial TEXT PRIMARY KEY,         -- lowercase hex of the 128-bit serial
  kind TEXT NOT NULL,              -- 'token' or 'agent'
  owner TEXT NOT NULL,             -- passport id or agent id
  subject TEXT NOT NULL,
  cert_der BYTEA NOT NULL,
  not_after_ms BIGINT NOT NULL,
  issued_ms BIGINT NOT NULL,
  revoked_ms BIGINT,
  revoke_reason INTEGER
);
CREATE INDEX IF NOT EXISTS ca_certs_owner ON ca_certs (owner);

-- auth_challenges: single-use challenges of every factor. used_ms is set by one
-- atomic UPDATE ... WHERE used_ms IS NULL.
CREATE TABLE IF NOT EXISTS auth_challenges (
  id TEXT PRIMARY KEY,
  factor TEXT NOT NULL,
  passport_id TEXT NOT NULL,
  purpose TEXT NOT NULL,
  tx_hash BYTEA,
  data BYTEA,                      -- what a device signs (U-shield)
  secret BYTEA,                    -- factor-private: grid cells, SMS code HMAC
  ref TEXT NOT NULL,               -- factor-private reference: card serial, phone
  created_ms BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL,
  used_ms BIGINT
);

-- ushield_tokens: a customer's U-shield, bound by its certificate.
CREATE TABLE IF NOT EXISTS ushield_tokens (
  cert_serial TEXT PRIMARY KEY,
  passport_id TEXT NOT NULL,
  generation INTEGER NOT NULL,     -- 1 or 2
  token_label TEXT NOT NULL,
  token_serial TEXT NOT NULL,
  key_id BYTEA NOT NULL,           -- CKA_ID of the key and certificate on the token
  status TEXT NOT NULL,            -- 'active' or 'lost'
  enrolled_ms BIGINT NOT NULL,
  lost_ms BIGINT
);
CREATE INDEX IF NOT EXISTS ushield_tokens_passport ON ushield_tokens (passport_id);

-- gridcards: printed matrix cards, the codes sealed by the HSM wrap key.
CREATE TABLE IF NOT EXISTS gridcards (
  serial TEXT PRIMARY KEY,
  passport_id TEXT NOT NULL,
  cols INTEGER NOT NULL,
  rows_n INTEGER NOT NULL,
  sealed BYTEA NOT NULL,
  uses INTEGER NOT NULL,
  max_uses INTEGER NOT NULL,
  attempts INTEGER NOT NULL,       -- failed answers since the last success (reserved before comparing)
  max_attempts INTEGER NOT NULL,
  status TEXT NOT NULL,            -- 'active' or 'revoked'
  issued_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS gridcards_passport ON gridcards (passport_id);

-- sms_rate: fixed-window send counters per customer, phone and IP.
CREATE TABLE IF NOT EXISTS sms_rate (
  k TEXT NOT NULL,
  window_ms BIGINT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (k, window_ms)
);

-- sms_attempts: failed SMS code answers per customer (lockout).
CREATE TABLE IF NOT EXISTS sms_attempts (
  passport_id TEXT PRIMARY KEY,
  n INTEGER NOT NULL,
  updated_ms BIGINT NOT NULL
);

-- sms_outbox: the development SMS sink; egate sim sms lists it.
CREATE TABLE IF NOT EXISTS sms_outbox (
  id TEXT PRIMARY KEY,
  phone TEXT NOT NULL,
  body TEXT NOT NULL,
  created_ms BIGINT NOT NULL
);
