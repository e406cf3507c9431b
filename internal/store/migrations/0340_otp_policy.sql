-- PSKC policies honoured (issue "Passport hardening", item 9).
-- pin_mode: '' (no PIN checked by the server), 'Append' (code then PIN) or
-- 'Prepend' (PIN then code), from the file's PINPolicy/PINUsageMode.
-- pin_mac: HMAC(seed, "egate-otp-pin-v1" 0x00 PIN) computed in the HSM with
-- the token's own wrapped seed and hash, so the PIN is never stored and
-- cannot be guessed offline without the HSM. pin_min/pin_max bound its length.
ALTER TABLE otp_tokens ADD COLUMN pin_mode TEXT NOT NULL DEFAULT '';
ALTER TABLE otp_tokens ADD COLUMN pin_min INTEGER NOT NULL DEFAULT 0;
ALTER TABLE otp_tokens ADD COLUMN pin_max INTEGER NOT NULL DEFAULT 0;
ALTER TABLE otp_tokens ADD COLUMN pin_mac BYTEA;
