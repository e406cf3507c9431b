-- Signing orders (issue 13): what a customer's own device (the desktop
-- helper with a U-shield or PIV token, the phone app) is asked to sign, and
-- how far it got. A page creates an order, a device opens it (by the
-- autostart link's token or a fresh animated-QR code), signs and posts; the
-- page that created it collects the result. Every state change is one
-- guarded UPDATE (… WHERE state = <from>), so across replicas one change
-- wins. Secrets are stored hashed (browser, autostart and device tokens);
-- qr_secret is the per-order HMAC key of the animated QR, never sent to the
-- page. Times are Unix ms.
CREATE TABLE IF NOT EXISTS sign_orders (
  ref TEXT PRIMARY KEY,              -- public order reference (128 random bits)
  kind TEXT NOT NULL,                -- 'login', 'transaction', 'enrol'
  passport_id TEXT NOT NULL,
  factor TEXT NOT NULL,              -- the tool asked: 'ushield', 'ushield2', 'piv', 'phone'
  challenge_id TEXT NOT NULL,        -- the factor's single-use challenge
  context TEXT NOT NULL,             -- the caller's reference (login: SHA-256 of the auth request id)
  text TEXT NOT NULL,                -- what the customer must see
  challenge BYTEA NOT NULL,          -- the challenge bound to the text
  intent_hash BYTEA,                 -- a transaction's canonical intent hash
  data BYTEA NOT NULL,               -- exactly what the device signs: text + challenge line
  browser TEXT NOT NULL,             -- SHA-256 hex of the creating browser's secret
  autostart_hash TEXT NOT NULL,      -- SHA-256 hex of the autostart link's token
  qr_secret BYTEA NOT NULL,          -- HMAC key of the animated QR
  device_hash TEXT,                  -- SHA-256 hex of the token of the device that opened it
  state TEXT NOT NULL,               -- 'pending', 'user_sign', 'complete', 'failed', 'cancelled', 'expired'
  fail_code TEXT,
  result_level INTEGER,
  result_amr TEXT,
  result_confirmed INTEGER,
  created_ms BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL,
  opened_ms BIGINT,
  done_ms BIGINT,
  collected_ms BIGINT                -- the result was used (login finished), once
);
CREATE INDEX IF NOT EXISTS sign_orders_expires ON sign_orders (expires_ms);
