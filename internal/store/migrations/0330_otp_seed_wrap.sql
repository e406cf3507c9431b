-- OTP seeds move under the HSM's seed-wrap key (egate-otp-seed-wrap;
-- devices/hsm KeySeedWrap). Every authsvc start, and egate admin hsm
-- rewrap-seeds, looks for rows still wrapped by another key
-- (WHERE wrap_label <> the seed-wrap key) and moves them inside the HSM
-- (authsvc/otp RewrapSeeds); this index keeps that look cheap once none
-- is left. No row changes here: rewrapping needs the HSM.
CREATE INDEX IF NOT EXISTS otp_tokens_wrap_label ON otp_tokens (wrap_label);
