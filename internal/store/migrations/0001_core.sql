-- Core tables shared by every component.
-- kv: small named values (instance id, demo bootstrap markers).
CREATE TABLE IF NOT EXISTS kv (
  k TEXT PRIMARY KEY,
  v TEXT NOT NULL,
  updated_ms BIGINT NOT NULL
);
