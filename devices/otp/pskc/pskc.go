// Package pskc reads RFC 6030 Portable Symmetric Key Container files, the
// format token vendors deliver seeds in, one KeyPackage at a time so that a
// file of any number of tokens is read in constant memory.
//
// Supported: plain values; values encrypted with a pre-shared AES key
// (xmlenc aes128-cbc, aes192-cbc, aes256-cbc: IV ‖ ciphertext) or with a key
// derived from a password with PBKDF2 (RFC 6030 §6.2); the value MAC of
// §6.1.1 (HMAC-SHA1/SHA256/SHA512 with the encrypted MACKey, over IV ‖
// ciphertext), which is required whenever values are encrypted. Algorithms:
// HOTP, TOTP and OCRA (RFC 6030 algorithm URNs and the pskc#… profile
// spellings, and pskc#OCRA-1 with the suite in a Suite element). Policy:
// StartDate, ExpiryDate, TimeDrift and a PINPolicy whose PIN the server
// checks (PINUsageMode Append or Prepend) are returned with the key; the
// PIN itself, held by a pskc:pin key, reaches Options.PINKey. With
// Options.Transport the encrypted values are opened in an HSM instead
// (transport.go), including RSA key transport (RFC 6030 §6.3), and keys
// carry the seed only wrapped. Signed documents are verified whole by
// VerifySignature before they are read. Key derivation by KeyReference is
// refused as unsupported.
//
// The Reader checks every entry fully (decryption, MAC, parameters) before it
// returns it; the caller decides what to do with the secret. Errors about an
// entry are *EntryError naming the KeyPackage's position, Key Id and serial;
// no error message ever contains secret material.
package pskc

import (
	"errors"
	"fmt"
)

// Errors, used with errors.Is.
var (
	ErrMalformed   = errors.New("malformed PSKC document")
	ErrUnsupported = errors.New("unsupported PSKC feature")
	ErrNeedKey     = errors.New("the PSKC document is encrypted; a key or password is needed")
	ErrDecrypt     = errors.New("cannot decrypt: wrong key or password")
	ErrMAC         = errors.New("value MAC does not match: wrong key or password, or the file was altered")
	ErrWeakSecret  = errors.New("secret too short")
)

// EntryError is an error about one KeyPackage.
type EntryError struct {
	Index  int    // 1-based position of the KeyPackage in the file
	KeyID  string // the Key's Id attribute, when it could be read
	Serial string // DeviceInfo/SerialNo, when it could be read
	Line   int    // line where the KeyPackage starts
	Err    error
}

func (e *EntryError) Error() string {
	s := fmt.Sprintf("key package %d", e.Index)
	if e.KeyID != "" || e.Serial != "" {
		s += fmt.Sprintf(" (key id %q, serial %q)", e.KeyID, e.Serial)
	}
	if e.Line > 0 {
		s += fmt.Sprintf(" at line %d", e.Line)
	}
	return s + ": " + e.Err.Error()
}

func (e *EntryError) Unwrap() error { return e.Err }
