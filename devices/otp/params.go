package otp

import (
	"crypto"
	"fmt"
	"time"
)

// Kind is the algorithm family of a token.
type Kind string

const (
	KindHOTP Kind = "hotp"
	KindTOTP Kind = "totp"
	KindOCRA Kind = "ocra"
)

// Params describes how a token computes codes: what a PSKC file declares and
// what the token store keeps beside the wrapped seed.
type Params struct {
	Kind   Kind
	Hash   crypto.Hash // HOTP/TOTP; OCRA takes it from the suite
	Digits int         // HOTP/TOTP; OCRA takes it from the suite
	Period time.Duration
	T0     int64
	Suite  string // OCRA only
}

// Validate checks the parameters for the kind.
func (p Params) Validate() error {
	switch p.Kind {
	case KindHOTP:
		if err := checkHash(p.Hash); err != nil {
			return err
		}
		if p.Digits < 6 || p.Digits > 10 {
			return fmt.Errorf("%w: HOTP with %d digits (want 6 to 10)", ErrUnsupported, p.Digits)
		}
		return nil
	case KindTOTP:
		return p.TOTP().Validate()
	case KindOCRA:
		_, err := ParseSuite(p.Suite)
		return err
	}
	return fmt.Errorf("%w: token kind %q", ErrUnsupported, p.Kind)
}

// TOTP returns the TOTP view of p.
func (p Params) TOTP() TOTP {
	return TOTP{Hash: p.Hash, Digits: p.Digits, Period: p.Period, T0: p.T0}
}
