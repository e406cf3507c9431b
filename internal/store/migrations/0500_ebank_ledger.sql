-- ebank's accounts and double-entry ledger (platform/ebank/ledger). Amounts
-- in fen, times Unix ms. Modelled on TigerBeetle: an account keeps its four
-- balance columns, every movement is an immutable transfer row that debits
-- one account and credits another with one amount, and both change in one
-- database transaction.

-- ebank_accounts: id is the 19-digit account number itself (a BIGINT:
-- 629988 + a 12-digit serial + a Luhn check digit). owner is a passport id,
-- or 'bank' for the bank's own accounts, which carry a unique label
-- (equity, clearing, suspense, fees, atm-cash). flags: 1 = debits must not
-- exceed credits (a customer's account never goes below zero), 2 = credits
-- must not exceed debits. The balance columns change only with a transfer
-- row, through a guarded UPDATE that re-checks the flags on the row itself,
-- so concurrent holds on several replicas never overdraw an account.
CREATE TABLE IF NOT EXISTS ebank_accounts (
  id BIGINT PRIMARY KEY,
  owner TEXT NOT NULL,
  kind TEXT NOT NULL,              -- current, savings, equity, clearing, suspense, fees, atm-cash
  label TEXT NOT NULL,             -- the bank's accounts: a unique name; customers' accounts: ''
  name TEXT NOT NULL,              -- shown to people
  currency TEXT NOT NULL,          -- CNY
  normal TEXT NOT NULL,            -- 'debit' or 'credit': the side its balance grows on
  flags INTEGER NOT NULL,
  status TEXT NOT NULL,            -- open, frozen, closed
  debits_posted BIGINT NOT NULL,
  credits_posted BIGINT NOT NULL,
  debits_pending BIGINT NOT NULL,
  credits_pending BIGINT NOT NULL,
  created_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS ebank_accounts_owner ON ebank_accounts (owner);
CREATE UNIQUE INDEX IF NOT EXISTS ebank_accounts_label ON ebank_accounts (label) WHERE label <> '';

-- ebank_transfers: append-only. kind 'posted' (single phase), 'pending' (a
-- hold, until timeout_ms), 'post' (captures pending_id: amount ≤ held, the
-- rest released), 'void' (releases pending_id; amount = what was held).
-- A reversal is a new 'posted' transfer the other way with reverses_id.
-- (origin, client_key) is the caller's idempotency key; the unique index on
-- pending_id lets a hold be captured or released once, on any replica; the
-- one on reverses_id lets a transfer be reversed once. The account indexes
-- carry kind and amount so that a statement and egate admin ledger check's
-- sums per account read the index alone (a covering index: a million
-- transfers summed in well under a second).
CREATE TABLE IF NOT EXISTS ebank_transfers (
  id BIGINT PRIMARY KEY,
  origin TEXT NOT NULL,            -- who asked: ebank, mall, messenger, atm, ledger (expiry), bank
  client_key TEXT NOT NULL,
  kind TEXT NOT NULL,
  debit_account BIGINT NOT NULL,
  credit_account BIGINT NOT NULL,
  amount BIGINT NOT NULL,
  pending_id BIGINT,
  reverses_id BIGINT,
  timeout_ms BIGINT NOT NULL,      -- pending: when it expires; else 0
  grant_id TEXT NOT NULL,          -- the authorization grant it executes ('' for the bank's own)
  code TEXT NOT NULL,              -- what for: transfer, checkout, refund, atm-withdrawal, opening, expiry, …
  memo TEXT NOT NULL,
  created_ms BIGINT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS ebank_transfers_key ON ebank_transfers (origin, client_key);
CREATE UNIQUE INDEX IF NOT EXISTS ebank_transfers_pending ON ebank_transfers (pending_id);
CREATE UNIQUE INDEX IF NOT EXISTS ebank_transfers_reverses ON ebank_transfers (reverses_id);
CREATE INDEX IF NOT EXISTS ebank_transfers_debit ON ebank_transfers (debit_account, created_ms, kind, amount);
CREATE INDEX IF NOT EXISTS ebank_transfers_credit ON ebank_transfers (credit_account, created_ms, kind, amount);
CREATE INDEX IF NOT EXISTS ebank_transfers_timeout ON ebank_transfers (timeout_ms) WHERE kind = 'pending';
