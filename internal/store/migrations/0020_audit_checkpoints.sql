-- Signed checkpoints of the audit log (authsvc/audit): at an interval, the
-- head (position and hash) is signed by the HSM's audit key. A checkpoint
-- vouches for every record up to seq; audit verify checks each signature and
-- that the record at seq still has head_hash.
CREATE TABLE IF NOT EXISTS audit_checkpoints (
  seq BIGINT PRIMARY KEY,          -- the audit_log position signed
  head_hash TEXT NOT NULL,         -- hex, the record's hash at seq
  at_ms BIGINT NOT NULL,
  key_id TEXT NOT NULL,            -- hex SHA-256 of the signing key's SubjectPublicKeyInfo
  signature BYTEA NOT NULL         -- ASN.1 ECDSA over SHA-256 of the checkpoint message
);
