-- The messenger (platform/messenger): customers' profiles, conversations,
-- their members and messages, friend transfers, AA collections and receive
-- QR codes. Times Unix ms, amounts fen.

-- msg_profiles: the customers the messenger knows (made at their first
-- visit, or seeded by egate demo), found by login name to start a chat.
CREATE TABLE IF NOT EXISTS msg_profiles (
  passport_id TEXT PRIMARY KEY,
  login_name TEXT NOT NULL UNIQUE,
  created_ms BIGINT NOT NULL
);

-- msg_conversations: kind direct (two customers; pair_key = the two ids in
-- order, unique, so a pair has one), group, service (a customer and the
-- bank's staff) or alerts (the customer's alert inbox). last_seq is the
-- sequence number of the newest message, taken by a guarded increment.
CREATE TABLE IF NOT EXISTS msg_conversations (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  title TEXT NOT NULL,
  pair_key TEXT,
  created_by TEXT NOT NULL,
  last_seq BIGINT NOT NULL,
  created_ms BIGINT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS msg_conversations_pair ON msg_conversations (pair_key);

-- msg_members: who is in a conversation; last_read is the seq the member
-- has read up to (unread = last_seq - last_read).
CREATE TABLE IF NOT EXISTS msg_members (
  conversation_id TEXT NOT NULL,
  member TEXT NOT NULL,
  last_read BIGINT NOT NULL,
  joined_ms BIGINT NOT NULL,
  PRIMARY KEY (conversation_id, member)
);
CREATE INDEX IF NOT EXISTS msg_members_member ON msg_members (member);

-- msg_messages: kind text, transfer, aa, qr_payment, alert, system. ref
-- names what the message is about (a payment, an AA collection, an
-- alert's id: unique per conversation, so an alert is stored once); state
-- is that thing's state as shown (pending, done, failed, open, closed).
CREATE TABLE IF NOT EXISTS msg_messages (
  conversation_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  sender TEXT NOT NULL,
  kind TEXT NOT NULL,
  body TEXT NOT NULL,
  amount BIGINT NOT NULL,
  ref TEXT,
  state TEXT NOT NULL,
  created_ms BIGINT NOT NULL,
  PRIMARY KEY (conversation_id, seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS msg_messages_ref ON msg_messages (conversation_id, ref);

-- msg_payments: one movement the messenger asked ebank for. kind transfer,
-- aa_share or qr_payment; key is the ledger key at ebank (unique: the same
-- payment is never made twice); state pending, done, failed.
CREATE TABLE IF NOT EXISTS msg_payments (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  conversation_id TEXT NOT NULL,
  payer TEXT NOT NULL,
  payee TEXT NOT NULL,
  amount BIGINT NOT NULL,
  ref TEXT NOT NULL,
  pay_key TEXT NOT NULL UNIQUE,
  intent TEXT NOT NULL,
  transfer_id TEXT NOT NULL,
  state TEXT NOT NULL,
  memo TEXT NOT NULL,
  created_ms BIGINT NOT NULL,
  updated_ms BIGINT NOT NULL
);

-- msg_aa: an AA collection in a conversation; state open or closed.
CREATE TABLE IF NOT EXISTS msg_aa (
  id TEXT PRIMARY KEY,
  conversation_id TEXT NOT NULL,
  collector TEXT NOT NULL,
  total BIGINT NOT NULL,
  memo TEXT NOT NULL,
  state TEXT NOT NULL,
  created_ms BIGINT NOT NULL,
  closed_ms BIGINT NOT NULL
);

-- msg_aa_shares: each member's share; state due, paid, or own (the
-- collector's own share, nothing to pay). A share moves due -> paid once,
-- by a guarded UPDATE, after ebank made the transfer (key aa:<id>:<member>).
CREATE TABLE IF NOT EXISTS msg_aa_shares (
  aa_id TEXT NOT NULL,
  member TEXT NOT NULL,
  amount BIGINT NOT NULL,
  state TEXT NOT NULL,
  payment_id TEXT NOT NULL,
  paid_ms BIGINT NOT NULL,
  PRIMARY KEY (aa_id, member)
);

-- msg_receive_codes: a payee's receive QR. amount 0: the payer says how
-- much. The token in the QR is random (128 bits); only its SHA-256 is kept.
CREATE TABLE IF NOT EXISTS msg_receive_codes (
  token_hash TEXT PRIMARY KEY,
  payee TEXT NOT NULL,
  amount BIGINT NOT NULL,
  memo TEXT NOT NULL,
  created_ms BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL
);
