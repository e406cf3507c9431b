-- The grant kept in its intent's row (issue 11): an intent has at most one
-- grant (it is issued by the one UPDATE that moves the intent from allowed
-- to granted), so tx_grants, a row and two b-trees (its primary key and
-- tx_grants_intent) per grant and a statement at the grant and at the
-- execute, goes.
--
-- grant_hash: the SHA-256 (hex) of the grant's token, set with
-- state = 'granted' by the same UPDATE; NULL until a grant is issued.
-- grant_expires_ms: when it expires. The grant is used once the intent
-- leaves 'granted' (executed, or cancelled): the execute is one UPDATE …
-- SET state = 'executed' WHERE hash = ? AND grant_hash = ? AND state =
-- 'granted' AND grant_expires_ms > now, so of concurrent executes exactly
-- one wins.
ALTER TABLE tx_intents ADD COLUMN grant_hash TEXT;
ALTER TABLE tx_intents ADD COLUMN grant_expires_ms BIGINT;

-- Every grant issued so far is carried over, used ones too (a used grant
-- presented again is still refused as used, not unknown). Whether it was
-- used is the intent's state, as it always was in step with used_ms.
UPDATE tx_intents SET
  grant_hash = (SELECT g.token_hash FROM tx_grants g WHERE g.intent_hash = tx_intents.hash ORDER BY g.created_ms DESC LIMIT 1),
  grant_expires_ms = (SELECT g.expires_ms FROM tx_grants g WHERE g.intent_hash = tx_intents.hash ORDER BY g.created_ms DESC LIMIT 1)
WHERE hash IN (SELECT intent_hash FROM tx_grants);

-- Execute's refusal finds a grant by its token (unknown, another intent's,
-- used or expired). Partial: an intent without a grant writes nothing here.
CREATE UNIQUE INDEX IF NOT EXISTS tx_intents_grant ON tx_intents (grant_hash) WHERE grant_hash IS NOT NULL;

-- An upgrade stops the old processes first: an old replica would still
-- write here.
DROP TABLE IF EXISTS tx_grants;
