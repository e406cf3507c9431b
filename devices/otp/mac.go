// Package otp computes OATH one-time passwords: HOTP (RFC 4226), TOTP
// (RFC 6238) and OCRA challenge-response (RFC 6287), including OCRA questions
// that carry transaction data (see TransactionQuestion).
//
// The package never holds a token seed itself: every HMAC goes through the
// MAC interface, which in production is backed by the HSM (the seed stays
// wrapped and the HMAC is computed inside the HSM) and in tests and
// simulators by SoftwareMAC. MAC is batched so that a whole look-ahead window
// costs one HSM round trip.
//
// Concurrency: everything here is a pure function of its arguments; a MAC
// implementation says for itself whether it may be shared (SoftwareMAC may).
package otp

import (
	"context"
	"crypto"
	"crypto/hmac"
	"errors"
	"fmt"

	// The hashes OATH uses, linked in so crypto.Hash.New works.
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// MAC computes HMAC with one token's seed over each message, in order. An
// implementation returns exactly len(msgs) MACs or an error.
type MAC interface {
	MAC(ctx context.Context, h crypto.Hash, msgs [][]byte) ([][]byte, error)
}

// SoftwareMAC is a MAC over a seed held in memory. It is for RFC vector
// tests, simulators and tools that hold the seed legitimately (a token
// simulator); the gateway itself uses the HSM.
type SoftwareMAC struct{ Key []byte }

// MAC implements MAC.
func (s SoftwareMAC) MAC(ctx context.Context, h crypto.Hash, msgs [][]byte) ([][]byte, error) {
	if err := checkHash(h); err != nil {
		return nil, err
	}
	out := make([][]byte, len(msgs))
	m := hmac.New(h.New, s.Key)
	for i, msg := range msgs {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		m.Reset()
		m.Write(msg)
		out[i] = m.Sum(nil)
	}
	return out, nil
}

// ErrUnsupported reports an algorithm, hash or parameter this package does
// not implement.
var ErrUnsupported = errors.New("unsupported OTP parameter")

// ErrInvalid reports input that is malformed (a question with the wrong
// characters, a missing PIN the suite needs, …).
var ErrInvalid = errors.New("invalid OTP input")

func checkHash(h crypto.Hash) error {
	switch h {
	case crypto.SHA1, crypto.SHA256, crypto.SHA512:
		return nil
	}
	return fmt.Errorf("%w: hash %v (want SHA1, SHA256 or SHA512)", ErrUnsupported, h)
}

// HashName is the OATH spelling of a hash: "SHA1", "SHA256", "SHA512".
func HashName(h crypto.Hash) string {
	switch h {
	case crypto.SHA1:
		return "SHA1"
	case crypto.SHA256:
		return "SHA256"
	case crypto.SHA512:
		return "SHA512"
	}
	return h.String()
}

// ParseHash reads "SHA1", "SHA-256", "HMAC-SHA512", "sha256" … .
func ParseHash(s string) (crypto.Hash, error) {
	u := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c == '-' || c == '_' {
			continue
		}
		u = append(u, c)
	}
	name := string(u)
	if len(name) > 4 && name[:4] == "HMAC" {
		name = name[4:]
	}
	switch name {
	case "SHA1":
		return crypto.SHA1, nil
	case "SHA256":
		return crypto.SHA256, nil
	case "SHA512":
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("%w: hash %q (want SHA1, SHA256 or SHA512)", ErrUnsupported, s)
}
