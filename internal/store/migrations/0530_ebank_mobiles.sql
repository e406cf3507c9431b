-- ebank's receive-by-mobile directory (platform/ebank Mobiles): a customer
-- registers a mobile number to receive transfers into one of their
-- accounts, so that a payer may give the number instead of the account.
-- A number belongs to one customer at a time.
CREATE TABLE IF NOT EXISTS ebank_mobiles (
  mobile TEXT PRIMARY KEY,         -- 11 digits, as NormalizeMobile gives it
  owner TEXT NOT NULL,             -- the customer's passport id
  account TEXT NOT NULL,           -- the account credited
  registered_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS ebank_mobiles_owner ON ebank_mobiles (owner);
