-- The bank's phone app (issue 13): a device key made in the app, bound to a
-- customer once (password + SMS), then a level-3 tool answering signing
-- orders by the page's animated QR. pin_key is what the app derives from
-- its PIN (argon2id over the PIN and pin_salt); the app proves the PIN with
-- an HMAC under it, so wrong PINs are counted here with the passport's
-- per-factor lockout. Times are Unix ms.
CREATE TABLE IF NOT EXISTS phone_devices (
  device_id TEXT PRIMARY KEY,      -- random, chosen by the server at binding
  passport_id TEXT NOT NULL,
  public_key BYTEA NOT NULL,       -- the device key, PKIX DER (ECDSA P-256)
  pin_salt BYTEA NOT NULL,
  pin_key BYTEA NOT NULL,
  label TEXT NOT NULL,
  status TEXT NOT NULL,            -- 'active' or 'revoked'
  bound_ms BIGINT NOT NULL,
  revoked_ms BIGINT
);
CREATE INDEX IF NOT EXISTS phone_devices_passport ON phone_devices (passport_id);
-- A binding in progress: the password was right and an SMS code was sent.
CREATE TABLE IF NOT EXISTS phone_binds (
  id TEXT PRIMARY KEY,
  passport_id TEXT NOT NULL,
  sms_challenge TEXT NOT NULL,
  expires_ms BIGINT NOT NULL,
  used_ms BIGINT
);
