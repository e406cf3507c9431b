-- Coalesced alerts: an alert posted with a once key is stored only for the
-- first post of that key (failed-login alerts: one per customer per hour).
-- Alerts without a key (NULL) are never coalesced.
ALTER TABLE alerts_outbox ADD COLUMN once_key TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS alerts_outbox_once ON alerts_outbox (once_key);
