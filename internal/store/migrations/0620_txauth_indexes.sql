-- A leaner index set for the money path (issue 11): every index is one
-- more b-tree that an insert or a state change writes into, and on SQLite
-- each page written is a WAL frame at commit.
--
-- tx_intents had 7 indexes. The risk features read the customer's intents
-- of 90 days (customer, created_ms >= ?) for their state and amount: one
-- covering index (customer, created_ms, state, amount) replaces
-- tx_intents_customer and tx_intents_history, and the read no longer
-- visits the table. The review queue (state = 'review' ORDER BY
-- created_ms, hash) gets a partial index, so intents that never wait for
-- review (allowed, granted, executed: nearly all) are not in it and their
-- state changes write nothing there. Kept: the hash (primary key), the
-- idempotency key (unique), payee and device (the features' "paid
-- before" and "device seen" ask the customer's whole history).
DROP INDEX IF EXISTS tx_intents_customer;
DROP INDEX IF EXISTS tx_intents_history;
DROP INDEX IF EXISTS tx_intents_state;
CREATE INDEX IF NOT EXISTS tx_intents_recent ON tx_intents (customer, created_ms, state, amount);
CREATE INDEX IF NOT EXISTS tx_intents_review ON tx_intents (created_ms, hash) WHERE state = 'review';

-- limit_counts is read and changed by its key only (authsvc/limits).
DROP INDEX IF EXISTS limit_counts_customer;
