-- Hash-chained audit log: hash = SHA-256(prev_hash || canonical record).
-- seq is the chain position. Appenders serialise on a lock (authsvc/audit:
-- PostgreSQL advisory lock, SQLite BEGIN IMMEDIATE); the primary key still
-- refuses a second record at one position should an appender skip the lock.
CREATE TABLE IF NOT EXISTS audit_log (
  seq BIGINT PRIMARY KEY,
  at_ms BIGINT NOT NULL,
  kind TEXT NOT NULL,
  record TEXT NOT NULL,                     -- canonical JSON
  prev_hash TEXT NOT NULL,                  -- hex
  hash TEXT NOT NULL                        -- hex
);
