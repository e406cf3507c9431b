package ushield

import (
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/ca"
)

// What other certificate-based factors (authsvc/pivauth) share with the
// U-shield: the text a token signs, the transaction text rules, and the
// certificate checks of Verify up to the binding.

// ValidTxText reports whether s may be shown and signed as a transaction
// text: printable UTF-8 (newlines allowed), 1 to MaxTxText bytes.
func ValidTxText(s string) bool { return validText(s) }

// LoginText is the text signed for a login in place of a transaction text.
func LoginText(passportID string) string { return "egate login for " + passportID }

// ChallengeText is the text a signing device (named by who in errors)
// shows and signs for req: the login line, or the transaction text, which
// must be one a device may show (ValidTxText) and be bound by a transaction
// hash (ErrBadTxText otherwise).
func ChallengeText(req authn.BeginRequest, who string) (string, error) {
	switch req.Purpose {
	case authn.PurposeLogin:
		return LoginText(req.PassportID), nil
	case authn.PurposeTransaction:
		if !validText(req.TxText) || len(req.TxHash) == 0 {
			return "", ErrBadTxText
		}
		return req.TxText, nil
	}
	return "", fmt.Errorf("%s challenge: unknown purpose %q", who, req.Purpose)
}

// VerifyCertificate parses a token certificate from a proof (cached by
// hash) and checks that it chains to the bank's issuing CA, is valid now and
// allows signatures for client authentication, mapping failures to authn's
// errors as Verify does: malformed → ErrBadResponse, expired →
// ErrRevoked, anything else → ErrWrongAnswer. Binding and revocation are
// the caller's to check.
func (s *Service) VerifyCertificate(der []byte) (*x509.Certificate, error) {
	cert, err := s.parseCert(der)
	if err != nil {
		return nil, err
	}
	if err := s.ca.VerifyChain(cert); err != nil {
		if errors.Is(err, ca.ErrCertExpired) {
			return nil, fmt.Errorf("%w: %w", authn.ErrRevoked, err)
		}
		return nil, fmt.Errorf("%w: %w", authn.ErrWrongAnswer, err)
	}
	return cert, nil
}
