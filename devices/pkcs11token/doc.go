// Package pkcs11token drives a customer's U-shield: a USB token reached
// through its vendor's PKCS#11 module (SoftHSM2 plays it in tests). It lists
// the module's slots and tokens, logs in with a PIN the owning process asks
// for (never stored, never retried: a wrong PIN returns a *pin.Error with what
// the token says about retries left), generates a non-extractable P-256 or
// RSA-2048 key on the token, hands it out as a crypto.Signer, and writes the
// bank's certificate back under the key's CKA_ID.
//
// Tokens and keys are named by their label or by an RFC 7512 pkcs11: URI
// (Module.OpenToken, Token.FindKey, Key.URI; parsed by package pkcs11uri).
//
// The module is reached through package p11, egate's one PKCS#11 core,
// which devices/hsm shares: Open loads a vendor library (once per path in
// the process); Wrap makes a Module of anything that answers p11.Ctx, the
// seam for a simulator or a test double. With p11test.Faulty around a real
// module a test makes any call answer CKR_DEVICE_REMOVED or
// CKR_SESSION_HANDLE_INVALID: a token pulled out mid-operation fails with
// ErrRemoved, a session the module forgot with ErrSessionLost, and nothing
// is retried.
//
// Concurrency: a Module may be shared; a Token owns one PKCS#11 session and
// serialises every call on it with a mutex (a physical token does one thing at
// a time). Open one Token per physical token per process.
//
// The proof a U-shield sends to egate is encoded by EncodeProof and decoded by
// DecodeProof (see proof.go and README.md).
package pkcs11token
