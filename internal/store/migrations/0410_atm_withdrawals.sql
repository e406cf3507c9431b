-- QR cardless withdrawals (issue 15): one row per withdrawal session, bound to
-- one ATM, moved forward only by guarded UPDATE … WHERE state = expected (see
-- atm/withdrawal). The row is written before each command that goes to the
-- ATM, so that a restarted data centre can resolve every unfinished
-- withdrawal by asking the ATM about its transaction. Times are Unix ms;
-- amounts fen.
CREATE TABLE IF NOT EXISTS atm_withdrawals (
  session TEXT PRIMARY KEY,          -- 32 hex digits, shown in the QR
  atm_id TEXT NOT NULL,
  state TEXT NOT NULL,               -- QR_SHOWN … CAPTURED, EXPIRED, NOT_DISPENSED, RETRACTED, SUSPECT
  reason TEXT NOT NULL DEFAULT '',   -- why it ended where it did (SUSPECT always has one)
  created_ms BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL,        -- the QR session's end
  updated_ms BIGINT NOT NULL,
  account TEXT NOT NULL DEFAULT '',
  amount_fen BIGINT NOT NULL DEFAULT 0,   -- requested
  grant_id TEXT NOT NULL DEFAULT '',
  hold_id TEXT NOT NULL DEFAULT '',
  txn TEXT UNIQUE,                   -- the dispense's 128-bit id (also its command id)
  notes TEXT NOT NULL DEFAULT '',    -- JSON: the mix, with denominations
  cash_out_fen BIGINT NOT NULL DEFAULT 0, -- what the ATM reports presented and taken
  captured_fen BIGINT NOT NULL DEFAULT 0,
  released_fen BIGINT NOT NULL DEFAULT 0,
  record TEXT NOT NULL DEFAULT '',   -- JSON: the ATM's last transaction record
  settled_by TEXT NOT NULL DEFAULT '' -- the operator who settled a SUSPECT one
);
CREATE INDEX IF NOT EXISTS atm_withdrawals_atm ON atm_withdrawals (atm_id, state);
CREATE INDEX IF NOT EXISTS atm_withdrawals_state ON atm_withdrawals (state);
