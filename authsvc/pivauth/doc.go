// Package pivauth makes a PIV token (a YubiKey or a compatible card) an
// authenticator at level 4 for login and transaction signing, like a
// 1st-generation U-shield: the key is generated on the card, its vendor
// attestation is checked, the bank CA certifies it (authsvc/ca IssuePIV),
// and proofs are the U-shield's EGP1 signatures over the same challenge
// text, verified with the U-shield's certificate checks against the PIV
// bindings in piv_tokens. README.md describes the flow.
//
// A Service is safe for concurrent use; the single use of a challenge is
// one atomic UPDATE in the database, so replicas share it.
package pivauth
