// Package passport is the one identity the bank's platforms log customers in
// with: customers (passport id, login name, mobile, birthday, the
// anti-phishing reserved message), their argon2id passwords and the failure
// counters that lock a password after too many failures in a day.
//
// Counters live in the database and are changed by single atomic statements:
// every password (or second-factor) attempt first reserves a slot with
// `n = n + 1 WHERE n < max`, and only a reserved attempt is verified. Any
// number of replicas on one database therefore verify at most max guesses a
// day per customer and factor; a correct answer gives its slot back.
//
// A login name that does not exist behaves like one that does: it gets a
// decoy reserved message derived from an HMAC of the name, its own counters,
// a decoy argon2id verification and the same errors.
package passport
