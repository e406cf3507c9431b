package ca

// Branch agents and the data centre's agent gateway: verifying an agent's
// client certificate as an agent's (not a customer token's), and issuing
// the gateway's TLS server certificate.

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// KindGateway is the agent gateway's TLS server certificate.
const KindGateway = "gateway"

// ErrNotAgentCert is a certificate of this CA that was not issued to a
// branch agent (a customer's U-shield certificate, say).
var ErrNotAgentCert = errors.New("the certificate was not issued to a branch agent")

// VerifyAgent checks an agent's client certificate: Verify (chain,
// validity, client-auth usage, revocation read from the database now),
// then that this CA recorded it as an agent certificate for the subject's
// CN. It returns that agent id (the branch).
func (c *CA) VerifyAgent(ctx context.Context, cert *x509.Certificate) (string, error) {
	if err := c.Verify(ctx, cert); err != nil {
		return "", err
	}
	var kind, owner string
	err := c.db.QueryRow(ctx, `SELECT kind, owner FROM ca_certs WHERE serial = ?`, SerialHex(cert.SerialNumber)).Scan(&kind, &owner)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrUnknownCert
	}
	if err != nil {
		return "", fmt.Errorf("reading the certificate's record: %w", err)
	}
	if kind != KindAgent {
		return "", fmt.Errorf("%w: it is a %s certificate of %s", ErrNotAgentCert, kind, owner)
	}
	if owner != cert.Subject.CommonName {
		return "", fmt.Errorf("%w: recorded for %q, subject CN %q", ErrNotAgentCert, owner, cert.Subject.CommonName)
	}
	return owner, nil
}

// IssueGateway signs the agent gateway's TLS server certificate (server
// auth only) for hosts (DNS names or IP addresses, the first is the CN) from
// a CSR whose key the gateway holds (in the HSM). One year when validity
// is zero.
func (c *CA) IssueGateway(ctx context.Context, csrDER []byte, hosts []string, validity time.Duration) (*x509.Certificate, error) {
	if c.signer == nil {
		return nil, fmt.Errorf("the CA was opened without its issuing key")
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("%w: give at least one host name or IP address", ErrBadCSR)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: its signature does not verify: %v", ErrBadCSR, err)
	}
	if err := acceptableKey(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if validity == 0 {
		validity = 365 * 24 * time.Hour
	}
	tmpl := &x509.Certificate{
		SerialNumber:          mustSerial(),
		Subject:               pkix.Name{Organization: c.issuing.Subject.Organization, OrganizationalUnit: []string{"Agent gateway"}, CommonName: hosts[0]},
		NotBefore:             c.now().Add(-time.Minute).UTC(),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" && !strings.ContainsAny(h, " /:\x00\n") {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		} else {
			return nil, fmt.Errorf("%w: host %q is neither a DNS name nor an IP address", ErrBadCSR, h)
		}
	}
	tmpl.NotAfter = tmpl.NotBefore.Add(validity)
	if tmpl.NotAfter.After(c.issuing.NotAfter) {
		tmpl.NotAfter = c.issuing.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.issuing, csr.PublicKey, c.signer)
	if err != nil {
		return nil, fmt.Errorf("signing the certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	_, err = c.db.Exec(ctx, `INSERT INTO ca_certs (serial, kind, owner, subject, cert_der, not_after_ms, issued_ms) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		SerialHex(cert.SerialNumber), KindGateway, hosts[0], cert.Subject.String(), der, cert.NotAfter.UnixMilli(), c.now().UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("recording the issued certificate: %w", err)
	}
	return cert, nil
}
