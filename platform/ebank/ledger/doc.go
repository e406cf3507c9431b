// Package ledger is ebank's double-entry ledger in integer fen, over
// internal/store (SQLite or PostgreSQL), modelled on TigerBeetle's
// accounts and transfers.
//
// An account keeps four balance columns: debits_posted, credits_posted,
// debits_pending and credits_pending. A transfer debits one account and
// credits another with one amount, so every posting is balanced by
// construction; transfers are immutable rows, appended and never updated
// or deleted. A mistake is corrected by a reversal: a new transfer the
// other way, linked to the one it reverses (Reverse), at most one per
// transfer.
//
// Money moves in one phase (Transfer: posted at once) or in two (Hold, then
// Post or Void): a hold is a pending transfer that reserves its amount in
// the pending columns; a post (capture) moves an amount up to the held one
// to the posted columns and releases the rest; a void (release) gives it
// all back. A hold has a timeout: after it, Post is refused with ErrExpired
// whether or not the sweep has run, and ExpireHolds voids it (origin
// "ledger", key "expire:<id>", so the sweep is idempotent and safe to run
// on every replica at once). A unique index on the resolving transfer's
// pending_id lets a hold be captured or released exactly once, whichever
// replica asks first; the second is refused with ErrCaptured or
// ErrReleased.
//
// The balance columns change in the same database transaction as the
// transfer row, by one guarded UPDATE per account whose WHERE clause checks
// the account's flags against the row's current values
// (DebitsMustNotExceedCredits: a customer's account never goes below zero,
// counting what holds reserve). On PostgreSQL a concurrent writer of the
// same row waits and re-evaluates the guard after the first commits, so N
// concurrent holds on several replicas never together overdraw an
// account; on SQLite writers are serialised. Accounts are updated in
// number order so two transfers between the same accounts cannot deadlock.
//
// Every request carries an idempotency key, unique per origin (the calling
// system): the same request again returns the transfer it made (with
// Replayed set), the same key for a different movement is refused with
// ErrKeyReused, and in both cases nothing changes. The key is looked up
// only when a request's transaction fails (the unique index on origin and
// key refuses a repeat's row), so a new request pays for no lookup and a
// repeat is answered as the first even where its own transaction would now
// be refused (funds spent, the account frozen, the hold captured).
//
// The ledger does not check authorization: each transfer records the grant
// it executes, and the ebank service above it (platform/ebank) checks the
// grant before it calls the ledger. Refusals are *Error values with a
// stable Code, wrapped with the accounts and amounts involved, and leave
// the ledger unchanged.
//
// Check (egate admin ledger check) proves on one snapshot that every
// balance column equals the sum of its transfers and that debits equal
// credits, and names the first account that does not.
//
// Account numbers are 19 digits: NumberPrefix, a 12-digit serial and a Luhn
// check digit; the number is also the account's BIGINT key.
package ledger
