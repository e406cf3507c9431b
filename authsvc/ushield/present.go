package ushield

import (
	"context"
	"crypto/x509"
	"fmt"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/ca"
)

// Label is the tool's name for customers (the passport's login pages).
func (f *factor) Label() string {
	if f.gen == 2 {
		return "U-shield with display"
	}
	return "U-shield"
}

// AnswerIsProof tells the login pages that the answer is an EGP1 signature
// proof (devices/pkcs11token) over the challenge's Data, which the page
// shows; the form carries it base64-encoded.
func (f *factor) AnswerIsProof() bool { return true }

// EnrolCSR is the bank's half of an enrolment the customer makes with the
// desktop helper (a signing order of kind enrol, authsvc): the CSR, signed
// by the key just generated on the token, must be well formed, self-signed
// and name want (the order's challenge) as its common name; the bank CA
// issues the certificate and the token is bound to the customer at this
// factor's generation. A certificate issued but not bound is revoked.
func (f *factor) EnrolCSR(ctx context.Context, passportID, want string, csrDER []byte, label, serial string, keyID []byte) (*x509.Certificate, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil || csr.CheckSignature() != nil {
		return nil, fmt.Errorf("%w: the CSR does not parse or is not signed by its key", authn.ErrBadResponse)
	}
	if csr.Subject.CommonName != want {
		return nil, fmt.Errorf("%w: the CSR was not made for this enrolment", authn.ErrWrongAnswer)
	}
	if label == "" || len(label) > 64 || serial == "" || len(serial) > 64 || len(keyID) == 0 || len(keyID) > 64 {
		return nil, fmt.Errorf("%w: the token's label, serial and key id are required", authn.ErrBadResponse)
	}
	cert, err := f.s.Issuer(passportID).IssueToken(ctx, csrDER, csr.PublicKey)
	if err != nil {
		return nil, err
	}
	b := &Binding{CertSerial: ca.SerialHex(cert.SerialNumber), PassportID: passportID, Generation: f.gen, TokenLabel: label, TokenSerial: serial, KeyID: keyID}
	if err := f.s.Bind(ctx, b); err != nil {
		f.s.ca.Revoke(context.WithoutCancel(ctx), b.CertSerial, ca.ReasonCessation)
		return nil, err
	}
	return cert, nil
}
