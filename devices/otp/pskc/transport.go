package pskc

import (
	"context"
	"crypto"
	"fmt"
	"strings"
)

// Transport opens a file's encrypted values inside an HSM that holds the
// transport key (Options.Transport), so that a seed never passes through
// this process in clear: the Reader hands each encrypted seed to Secret and
// returns the Key with Wrapped set and Secret nil.
type Transport interface {
	// Secret unwraps an encrypted seed, checking its MAC when it has one,
	// and returns it as it leaves the HSM: wrapped for storage.
	Secret(ctx context.Context, v EncryptedValue) (Sealed, error)
	// Decrypt decrypts a value that is not a seed (a PIN, a counter).
	Decrypt(ctx context.Context, v EncryptedValue) ([]byte, error)
	// Certificate checks the X.509 certificate (DER) that a file encrypted
	// to an RSA key names (ds:X509Data) against the transport key.
	Certificate(ctx context.Context, der []byte) error
}

// Encryption algorithms of an EncryptedValue, by what they need.
const (
	EncAESCBC    = "aes-cbc"        // xmlenc aes128/192/256-cbc, IV ‖ ciphertext
	EncRSAPKCS1  = "rsa-1_5"        // xmlenc rsa-1_5
	EncRSAOAEP   = "rsa-oaep-mgf1p" // xmlenc rsa-oaep-mgf1p (SHA-1, MGF1-SHA-1)
	xmlencPrefix = "http://www.w3.org/2001/04/xmlenc#"
)

// EncryptedValue is an encrypted value as the file gives it.
type EncryptedValue struct {
	Alg         string // EncAESCBC, EncRSAPKCS1 or EncRSAOAEP
	KeyBytes    int    // for EncAESCBC: 16, 24 or 32, as the algorithm URI says
	CipherValue []byte
	// MACKey (encrypted like the value, with MACKeyAlg) and MAC, with
	// MACHash; MACKey is nil when the file has no MACMethod.
	MACKey    []byte
	MACKeyAlg string
	MACHash   crypto.Hash
	MAC       []byte
}

// Sealed is a seed as it leaves the HSM.
type Sealed struct {
	Wrapped  []byte
	Len      int  // the seed's length: exact when LenExact, else an upper bound
	LenExact bool // false where the HSM does not report the length (SoftHSM2)
}

// encAlg maps an xmlenc algorithm URI.
func encAlg(uri string) (string, int, error) {
	switch strings.TrimSpace(uri) {
	case xmlencPrefix + "aes128-cbc":
		return EncAESCBC, 16, nil
	case xmlencPrefix + "aes192-cbc":
		return EncAESCBC, 24, nil
	case xmlencPrefix + "aes256-cbc":
		return EncAESCBC, 32, nil
	case xmlencPrefix + "rsa-1_5", xmlencPrefix + "rsa_1_5": // RFC 6030 Figure 8 spells it rsa_1_5
		return EncRSAPKCS1, 0, nil
	case xmlencPrefix + "rsa-oaep-mgf1p":
		return EncRSAOAEP, 0, nil
	}
	return "", 0, fmt.Errorf("%w: encryption algorithm %q (want xmlenc aes128-cbc, aes192-cbc, aes256-cbc, rsa-1_5 or rsa-oaep-mgf1p)", ErrUnsupported, uri)
}

// encrypted builds the EncryptedValue of v for the Transport.
func (r *Reader) encrypted(v *xValue, name string) (EncryptedValue, error) {
	alg, kb, err := encAlg(v.EncryptedValue.EncryptionMethod.Algorithm)
	if err != nil {
		return EncryptedValue{}, err
	}
	if r.asym != (alg != EncAESCBC) {
		return EncryptedValue{}, fmt.Errorf("%w: %s is encrypted with %s but the file's EncryptionKey is %s", ErrMalformed, name, alg, map[bool]string{true: "an RSA certificate", false: "a pre-shared key"}[r.asym])
	}
	ct, err := decodeB64(v.EncryptedValue.CipherData.CipherValue, maxCipherValue)
	if err != nil {
		return EncryptedValue{}, fmt.Errorf("%s: %w", name, err)
	}
	ev := EncryptedValue{Alg: alg, KeyBytes: kb, CipherValue: ct}
	if r.macEnc != nil {
		mac, err := decodeB64(v.ValueMAC, 256)
		if err != nil || len(mac) == 0 {
			return EncryptedValue{}, fmt.Errorf("%w: %s has no valid ValueMAC", ErrMalformed, name)
		}
		ev.MACKey, ev.MACKeyAlg, ev.MACHash, ev.MAC = r.macEnc, r.macEncAlg, r.macAlg, mac
	} else if !r.asym {
		return EncryptedValue{}, fmt.Errorf("%w: %s is encrypted but the file has no MACMethod (RFC 6030 §6.1.1 requires one)", ErrMalformed, name)
	}
	return ev, nil
}

// sealedSecret hands an encrypted seed to the Transport.
func (r *Reader) sealedSecret(v *xValue) (Sealed, error) {
	if v.PlainValue != nil {
		return Sealed{}, fmt.Errorf("%w: Secret has both PlainValue and EncryptedValue", ErrMalformed)
	}
	ev, err := r.encrypted(v, "Secret")
	if err != nil {
		return Sealed{}, err
	}
	sl, err := r.opts.Transport.Secret(r.ctx, ev)
	if err != nil {
		return Sealed{}, fmt.Errorf("Secret: %w", err)
	}
	return sl, nil
}
