-- ebank_transfers: the unique indexes on pending_id and reverses_id keep
-- only the rows that have one (captures, releases, reversals). Whole they
-- held an entry for every transfer, NULL for most, so each posted transfer
-- wrote two b-trees more than it needed in its commit. They stay unique
-- (a hold resolved once, a transfer reversed once), and `pending_id = ?`
-- and `reverses_id = ?` still read them: an equality implies IS NOT NULL
-- on both engines.
DROP INDEX IF EXISTS ebank_transfers_pending;
CREATE UNIQUE INDEX IF NOT EXISTS ebank_transfers_pending ON ebank_transfers (pending_id) WHERE pending_id IS NOT NULL;
DROP INDEX IF EXISTS ebank_transfers_reverses;
CREATE UNIQUE INDEX IF NOT EXISTS ebank_transfers_reverses ON ebank_transfers (reverses_id) WHERE reverses_id IS NOT NULL;
