package pkcs11token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
)

// Proof is what a U-shield returns for a challenge: the token's certificate
// and its signature over the challenge's bytes (Challenge.Data, which for a
// transaction is the displayed transaction text plus the challenge line).
//
// Encoding (all integers big-endian), version 1:
//
//	magic   4 bytes  "EGP1"
//	flags   1 byte   bit 0: the customer confirmed on the device's display
//	                 (set by a 2nd-generation U-shield); other bits must be 0
//	certLen 2 bytes  1..4096
//	cert    certLen  the token's X.509 certificate, DER
//	sigLen  2 bytes  1..512
//	sig     sigLen   ECDSA P-256 with SHA-256 (ASN.1 DER), or RSA PKCS#1 v1.5
//	                 with SHA-256, over the challenge bytes
//
// Nothing may follow. The signature covers the challenge bytes only; the
// certificate is checked against the bank CA and the customer's binding.
type Proof struct {
	Confirmed bool
	CertDER   []byte
	Sig       []byte
}

// Proof encoding limits.
const (
	proofMagic  = "EGP1"
	MaxCertLen  = 4096
	MaxSigLen   = 512
	flagConfirm = 0x01
)

// ErrBadProof reports a malformed proof.
var ErrBadProof = errors.New("malformed U-shield proof")

// Encode returns the proof's bytes.
func (p Proof) Encode() ([]byte, error) {
	if len(p.CertDER) == 0 || len(p.CertDER) > MaxCertLen || len(p.Sig) == 0 || len(p.Sig) > MaxSigLen {
		return nil, fmt.Errorf("%w: certificate or signature length out of range", ErrBadProof)
	}
	b := make([]byte, 0, 9+len(p.CertDER)+len(p.Sig))
	b = append(b, proofMagic...)
	var f byte
	if p.Confirmed {
		f |= flagConfirm
	}
	b = append(b, f)
	b = binary.BigEndian.AppendUint16(b, uint16(len(p.CertDER)))
	b = append(b, p.CertDER...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(p.Sig)))
	b = append(b, p.Sig...)
	return b, nil
}

// DecodeProof parses a proof strictly.
func DecodeProof(b []byte) (Proof, error) {
	var p Proof
	if len(b) < 5 || string(b[:4]) != proofMagic {
		return p, fmt.Errorf("%w: not an EGP1 proof", ErrBadProof)
	}
	flags := b[4]
	if flags&^flagConfirm != 0 {
		return p, fmt.Errorf("%w: unknown flags %#x", ErrBadProof, flags)
	}
	p.Confirmed = flags&flagConfirm != 0
	rest := b[5:]
	field := func(name string, max int) ([]byte, error) {
		if len(rest) < 2 {
			return nil, fmt.Errorf("%w: truncated before the %s length", ErrBadProof, name)
		}
		n := int(binary.BigEndian.Uint16(rest))
		if n == 0 || n > max {
			return nil, fmt.Errorf("%w: %s length %d out of range", ErrBadProof, name, n)
		}
		if len(rest) < 2+n {
			return nil, fmt.Errorf("%w: truncated %s", ErrBadProof, name)
		}
		v := rest[2 : 2+n]
		rest = rest[2+n:]
		return v, nil
	}
	var err error
	if p.CertDER, err = field("certificate", MaxCertLen); err != nil {
		return Proof{}, err
	}
	if p.Sig, err = field("signature", MaxSigLen); err != nil {
		return Proof{}, err
	}
	if len(rest) != 0 {
		return Proof{}, fmt.Errorf("%w: %d trailing bytes", ErrBadProof, len(rest))
	}
	return p, nil
}

// SignProof signs data (the challenge bytes) with a token key and returns the
// encoded proof. confirmed is set only by a device that showed data to the
// customer and saw the confirm button pressed.
func SignProof(key crypto.Signer, cert *x509.Certificate, data []byte, confirmed bool) ([]byte, error) {
	h := sha256.Sum256(data)
	sig, err := key.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return Proof{Confirmed: confirmed, CertDER: cert.Raw, Sig: sig}.Encode()
}

// ErrBadSignature reports a signature that does not verify.
var ErrBadSignature = errors.New("the signature does not verify")

// VerifySignature checks sig over data with pub (ECDSA P-256/SHA-256 ASN.1
// or RSA PKCS#1 v1.5/SHA-256).
func VerifySignature(pub crypto.PublicKey, data, sig []byte) error {
	h := sha256.Sum256(data)
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if ecdsa.VerifyASN1(k, h[:], sig) {
			return nil
		}
	case *rsa.PublicKey:
		if rsa.VerifyPKCS1v15(k, crypto.SHA256, h[:], sig) == nil {
			return nil
		}
	default:
		return fmt.Errorf("%w: key type %T", ErrUnsupported, pub)
	}
	return ErrBadSignature
}
