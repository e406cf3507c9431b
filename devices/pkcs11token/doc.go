// Package pkcs11token drives a customer's U-shield: a USB token reached
// through its vendor's PKCS#11 module (SoftHSM2 plays it in tests). It lists
// the module's slots and tokens, logs in with a PIN the owning process asks
// for (never stored, never retried: a wrong PIN returns a *pin.Error with what
// the token says about retries left), generates a non-extractable P-256 or
// RSA-2048 key on the token, hands it out as a crypto.Signer, and writes the
// bank's certificate back under the key's CKA_ID.
//
// Concurrency: a Module may be shared; a Token owns one PKCS#11 session and
// serialises every call on it with a mutex (a physical token does one thing at
// a time). Open one Token per physical token per process.
//
// The proof a U-shield sends to egate is encoded by EncodeProof and decoded by
// DecodeProof (see proof.go and README.md).
package pkcs11token
