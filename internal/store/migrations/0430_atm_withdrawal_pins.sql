-- The customer's withdrawal PIN (issue 15), typed on an ATM's PIN pad after
-- the phone approved a QR withdrawal. Never the PIN: only its verification
-- value, an HMAC-SHA-256 computed in the HSM (key egate-hmac) over the
-- passport id and the PIN (authsvc/wdpin). Wrong PINs are counted on the
-- passport's counter (auth_failures, factor atm-pin). Times are Unix ms.
CREATE TABLE IF NOT EXISTS atm_withdrawal_pins (
  passport_id TEXT PRIMARY KEY,
  pvv BYTEA NOT NULL,
  set_ms BIGINT NOT NULL
);
