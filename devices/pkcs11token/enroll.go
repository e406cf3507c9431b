package pkcs11token

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
)

// Issuer has the bank CA sign a token's certificate. tokenKey is the public
// key read from the token, so the CA can check that the CSR's key is the
// token's own.
type Issuer interface {
	IssueToken(ctx context.Context, csrDER []byte, tokenKey crypto.PublicKey) (*x509.Certificate, error)
}

// Enrolled is the outcome of an enrollment.
type Enrolled struct {
	KeyID []byte
	Cert  *x509.Certificate
	Token TokenInfo
}

// EnrollOptions shape an enrollment.
type EnrollOptions struct {
	Algorithm Algorithm // ECDSAP256 when empty
	Label     string    // label of the key and certificate objects; "egate U-shield" when empty
	Subject   string    // CSR common name (the CA sets the final subject)
}

// Enroll generates a key on the (logged-in) token, builds a CSR signed by
// that key, has issuer sign the certificate, and writes the certificate back
// under the key's CKA_ID. If any step after key generation fails, the new key
// is destroyed so the token is left as it was.
func Enroll(ctx context.Context, tok *Token, issuer Issuer, opt EnrollOptions) (*Enrolled, error) {
	if opt.Algorithm == "" {
		opt.Algorithm = ECDSAP256
	}
	if opt.Label == "" {
		opt.Label = "egate U-shield"
	}
	id := NewKeyID()
	key, err := tok.GenerateKey(ctx, opt.Algorithm, id, opt.Label)
	if err != nil {
		return nil, err
	}
	undo := func(err error) (*Enrolled, error) {
		if derr := key.Destroy(context.WithoutCancel(ctx)); derr != nil {
			return nil, errors.Join(err, fmt.Errorf("removing the half-enrolled key: %w", derr))
		}
		return nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: opt.Subject}}, key)
	if err != nil {
		return undo(fmt.Errorf("building the CSR on token %q: %w", tok.info.Label, err))
	}
	cert, err := issuer.IssueToken(ctx, csr, key.Public())
	if err != nil {
		return undo(fmt.Errorf("issuing the certificate: %w", err))
	}
	if err := tok.WriteCertificate(ctx, id, opt.Label, cert); err != nil {
		return undo(err)
	}
	return &Enrolled{KeyID: id, Cert: cert, Token: tok.Info()}, nil
}
