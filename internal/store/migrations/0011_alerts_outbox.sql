-- Alerts outbox: login and balance alerts waiting for the messenger inbox and
-- the SMS sink. Each consumer acknowledges what it delivered, so consumers
-- read independently and an alert committed late is never skipped.
CREATE TABLE IF NOT EXISTS alerts_outbox (
  id TEXT PRIMARY KEY,
  passport_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  at_ms BIGINT NOT NULL,
  body TEXT NOT NULL                        -- JSON
);
CREATE INDEX IF NOT EXISTS alerts_outbox_pid ON alerts_outbox (passport_id, at_ms);
CREATE TABLE IF NOT EXISTS alerts_delivered (
  alert_id TEXT NOT NULL,
  consumer TEXT NOT NULL,
  at_ms BIGINT NOT NULL,
  PRIMARY KEY (alert_id, consumer)
);
