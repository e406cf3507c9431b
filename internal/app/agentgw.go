package app

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/egate-bank/egate/atm/gateway"
	"github.com/egate-bank/egate/authsvc/ca"
)

// AgentVerifier is the bank CA as the agent gateway's Verifier: it runs
// ca.CA.VerifyAgent and says which of its errors refuse the agent.
type AgentVerifier struct{ CA *ca.CA }

var _ gateway.Verifier = AgentVerifier{}

// VerifyAgent returns the certificate's branch id, or an error matching
// one of the gateway's refusal reasons (and the CA's own error).
func (v AgentVerifier) VerifyAgent(ctx context.Context, cert *x509.Certificate) (string, error) {
	branch, err := v.CA.VerifyAgent(ctx, cert)
	var reason error
	switch {
	case err == nil:
		return branch, nil
	case errors.Is(err, ca.ErrCertRevoked):
		reason = gateway.ErrCertRevoked
	case errors.Is(err, ca.ErrCertExpired):
		reason = gateway.ErrCertExpired
	case errors.Is(err, ca.ErrNotAgentCert):
		reason = gateway.ErrNotAgentCert
	case errors.Is(err, ca.ErrNotIssuedHere), errors.Is(err, ca.ErrUnknownCert):
		reason = gateway.ErrCertInvalid
	default:
		return "", err // the CA cannot decide now
	}
	return "", fmt.Errorf("%w: %w", reason, err)
}
