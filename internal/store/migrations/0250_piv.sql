-- PIV tokens (issue 5): a customer's PIV card key, bound by the certificate
-- the bank CA issued for it after checking the key's attestation. Like
-- ushield_tokens, but a PIV key is named by card serial and slot, and the
-- attested policies are kept. Times are Unix ms.
CREATE TABLE IF NOT EXISTS piv_tokens (
  cert_serial TEXT PRIMARY KEY,    -- ca_certs.serial (kind 'piv')
  passport_id TEXT NOT NULL,
  card_serial BIGINT NOT NULL,     -- the card's serial, as attested
  slot TEXT NOT NULL,              -- '9a', '9c', '9e', '82' …
  firmware TEXT NOT NULL,          -- attested firmware version, e.g. '5.7.1'
  pin_policy TEXT NOT NULL,        -- attested: 'once' or 'always' ('never' only if allowed)
  touch_policy TEXT NOT NULL,      -- attested: 'never', 'always', 'cached'
  status TEXT NOT NULL,            -- 'active', 'lost' or 'replaced' (slot re-enrolled)
  enrolled_ms BIGINT NOT NULL,
  lost_ms BIGINT
);
CREATE INDEX IF NOT EXISTS piv_tokens_passport ON piv_tokens (passport_id);
CREATE INDEX IF NOT EXISTS piv_tokens_card ON piv_tokens (card_serial, slot);
