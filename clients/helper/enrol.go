package helper

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"

	"github.com/egate-bank/egate/authsvc/orders"
	"github.com/egate-bank/egate/devices/pinsource"
	"github.com/egate-bank/egate/devices/pkcs11token"
)

// IssueFunc sends the token's enrolment answer (a U-shield's CSR and how
// to find the key again; a PIV card's attestation and the new key's
// signature) to the bank and returns the certificate it issued (DER).
type IssueFunc func(ctx context.Context, answer orders.EnrolAnswer) ([]byte, error)

// Enroller is a Tool that can be enrolled: a key generated on the token,
// proved to the bank (a CSR naming the order's challenge, or the token's
// attestation with a signature over the order's data), the bank's
// certificate written back.
type Enroller interface {
	Tool
	Enrol(ctx context.Context, op *orders.Opened, data []byte, pin PINFunc, issue IssueFunc) error
}

// Enrol generates a P-256 key on the U-shield (non-extractable), has the
// bank certify it through issue and writes the certificate back under the
// key's CKA_ID; if anything fails after the key was made, the key is
// destroyed, leaving the token as it was. A U-shield enrolled this way
// answers orders of its generation (the order says which).
func (u *UShield) Enrol(ctx context.Context, op *orders.Opened, _ []byte, pin PINFunc, issue IssueFunc) error {
	subject := op.Challenge
	m, err := pkcs11token.Open(u.Module)
	if err != nil {
		return err
	}
	defer m.Close()
	label := u.Label
	if label == "" {
		ts, err := m.Tokens(ctx)
		if err != nil {
			return removed(err)
		}
		if len(ts) != 1 {
			return fmt.Errorf("%w: %d tokens present; name one with --token", ErrNoTool, len(ts))
		}
		label = ts[0].Label
	}
	tok, err := m.OpenToken(ctx, label)
	if errors.Is(err, pkcs11token.ErrTokenNotFound) {
		return fmt.Errorf("%w: U-shield %q is not inserted", ErrNoTool, label)
	}
	if err != nil {
		return removed(err)
	}
	defer tok.Close()
	p, err := pin(ctx, u.Describe(), -1)
	if err != nil {
		return err
	}
	err = tok.Login(ctx, p)
	pinsource.Wipe(p)
	if perr := pinErr(err); perr != nil {
		return perr
	}
	if err != nil {
		return removed(err)
	}
	id := pkcs11token.NewKeyID()
	key, err := tok.GenerateKey(ctx, pkcs11token.ECDSAP256, id, "egate U-shield")
	if err != nil {
		return removed(err)
	}
	undo := func(err error) error {
		if derr := key.Destroy(context.WithoutCancel(ctx)); derr != nil {
			return errors.Join(err, fmt.Errorf("removing the half-enrolled key: %w", derr))
		}
		return err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: subject}}, key)
	if err != nil {
		return undo(removed(fmt.Errorf("building the CSR on the token: %w", err)))
	}
	der, err := issue(ctx, orders.EnrolAnswer{CSR: csr, Label: tok.Info().Label, Serial: tok.Info().Serial, KeyID: id})
	if err != nil {
		return undo(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return undo(fmt.Errorf("the bank's certificate does not parse: %w", err))
	}
	if err := tok.WriteCertificate(ctx, id, "egate U-shield", cert); err != nil {
		return undo(removed(err))
	}
	return nil
}
