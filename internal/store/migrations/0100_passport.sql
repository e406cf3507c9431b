-- The passport: customers, failure counters, captchas, passport sessions,
-- and the OIDC provider's auth requests and tokens.
CREATE TABLE IF NOT EXISTS customers (
  passport_id TEXT PRIMARY KEY,
  login_name TEXT NOT NULL UNIQUE,          -- normalized: trimmed, lower case
  mobile TEXT NOT NULL DEFAULT '',
  birthday TEXT NOT NULL DEFAULT '',        -- YYYY-MM-DD or empty
  reserved_message TEXT NOT NULL,
  password_hash TEXT NOT NULL,              -- argon2id PHC string
  password_changed_ms BIGINT NOT NULL,
  operator_locked INTEGER NOT NULL DEFAULT 0,
  created_ms BIGINT NOT NULL
);

-- Failures per subject (pid:<passport id>, name:<hmac of an unknown name>,
-- ip:<address>) per factor per day. A password or factor attempt reserves a
-- slot first (n = n + 1 WHERE n < max), so replicas never verify more than
-- max times a day; a success gives its slot back.
CREATE TABLE IF NOT EXISTS auth_failures (
  subject TEXT NOT NULL,
  factor TEXT NOT NULL,
  day TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (subject, factor, day)
);

CREATE TABLE IF NOT EXISTS captchas (
  id TEXT PRIMARY KEY,
  answer_hash TEXT NOT NULL,
  expires_ms BIGINT NOT NULL,
  used INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS passport_sessions (
  id_hash TEXT PRIMARY KEY,                 -- SHA-256 of the cookie value
  passport_id TEXT NOT NULL,
  level INTEGER NOT NULL,
  amr TEXT NOT NULL,                        -- space separated RFC 8176 values
  auth_time_ms BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL,
  ended INTEGER NOT NULL DEFAULT 0,
  device TEXT NOT NULL DEFAULT '',
  created_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS passport_sessions_pid ON passport_sessions (passport_id);

CREATE TABLE IF NOT EXISTS oidc_auth_requests (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  request TEXT NOT NULL,                    -- JSON of the validated request
  created_ms BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL,
  flow TEXT NOT NULL DEFAULT '{}',          -- JSON: login step state
  done INTEGER NOT NULL DEFAULT 0,
  subject TEXT NOT NULL DEFAULT '',
  level INTEGER NOT NULL DEFAULT 0,
  amr TEXT NOT NULL DEFAULT '',
  auth_time_ms BIGINT NOT NULL DEFAULT 0,
  code_hash TEXT UNIQUE,
  code_state INTEGER NOT NULL DEFAULT 0     -- 0 none, 1 issued, 2 exchanged
);

CREATE TABLE IF NOT EXISTS oidc_tokens (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,                       -- access or refresh
  token_hash TEXT UNIQUE,                   -- refresh tokens: SHA-256 of the token
  family TEXT NOT NULL,                     -- one code exchange and its rotations
  auth_request_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  subject TEXT NOT NULL,
  scopes TEXT NOT NULL,
  audience TEXT NOT NULL,
  level INTEGER NOT NULL,
  amr TEXT NOT NULL,
  auth_time_ms BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL,
  used INTEGER NOT NULL DEFAULT 0,
  revoked INTEGER NOT NULL DEFAULT 0,
  created_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS oidc_tokens_family ON oidc_tokens (family);
CREATE INDEX IF NOT EXISTS oidc_tokens_subject ON oidc_tokens (subject, client_id);
