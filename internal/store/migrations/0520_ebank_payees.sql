-- ebank's saved payees (platform/ebank Payees): a customer's payees for the
-- transfer form. kind 'account' (an account at this bank) or 'bank' (an
-- account at another bank, with the bank's name). Saving the same payee
-- again updates its name.
CREATE TABLE IF NOT EXISTS ebank_payees (
  owner TEXT NOT NULL,             -- the customer's passport id
  kind TEXT NOT NULL,              -- account, bank
  account TEXT NOT NULL,
  name TEXT NOT NULL,
  bank TEXT NOT NULL,              -- kind bank: the other bank's name; else ''
  created_ms BIGINT NOT NULL,
  PRIMARY KEY (owner, kind, account)
);
