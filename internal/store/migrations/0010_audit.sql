-- Hash-chained audit log: hash = SHA-256(prev_hash || canonical record).
-- seq is the chain position; its primary key makes two replicas that race
-- for the same position conflict, and the loser retries on the new head.
CREATE TABLE IF NOT EXISTS audit_log (
  seq BIGINT PRIMARY KEY,
  at_ms BIGINT NOT NULL,
  kind TEXT NOT NULL,
  record TEXT NOT NULL,                     -- canonical JSON
  prev_hash TEXT NOT NULL,                  -- hex
  hash TEXT NOT NULL                        -- hex
);
