// Package ca is the bank's certificate authority: a root, whose key signs
// only the issuing CA, and an issuing CA whose key lives in the HSM and signs
// the certificates of customers' U-shield tokens and of branch agents. Issued
// certificates and revocations are kept in the database; the CRL and the root
// certificate are served over HTTP (Handler).
//
// The CA never holds private keys itself: it is given crypto.Signer values
// (HSM keys from devices/hsm in production, software keys in unit tests).
// A CA is safe for concurrent use.
package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/egate-bank/egate/internal/store"
)

// HSM key labels of the CA keys.
const (
	RootKeyLabel    = "egate-ca-root"
	IssuingKeyLabel = "egate-ca-issuing"
)

// Kinds of issued certificates.
const (
	KindToken = "token" // a customer's U-shield
	KindAgent = "agent" // a branch device agent (mutual TLS client)
)

// Errors.
var (
	ErrNotInitialized     = errors.New("the CA is not initialised; run egate admin ca init")
	ErrAlreadyInitialized = errors.New("the CA is already initialised")
	ErrBadCSR             = errors.New("the certificate request is not acceptable")
	ErrKeyMismatch        = errors.New("the certificate request's key is not the token's key")
	ErrUnknownCert        = errors.New("no such certificate")
	ErrNotIssuedHere      = errors.New("the certificate was not issued by this bank's CA")
	ErrCertExpired        = errors.New("the certificate is expired or not yet valid")
	ErrCertRevoked        = errors.New("the certificate is revoked")
)

// Options shape the CA at init.
type Options struct {
	Organization    string        // "egate Bank" when empty
	RootValidity    time.Duration // 20 years when zero
	IssuingValidity time.Duration // 10 years when zero
}

// CA is an initialised CA.
type CA struct {
	db      *store.DB
	now     func() time.Time
	root    *x509.Certificate
	issuing *x509.Certificate
	signer  crypto.Signer // the issuing key

	roots, inters *x509.CertPool

	mu       sync.Mutex
	verified map[[32]byte]struct{} // chains already verified, by certificate hash
	crl      []byte
	crlAt    time.Time
	crlGen   int64
}

// Init creates the root and issuing certificates with the given HSM keys and
// stores them. The root key signs the root (self-signed) and the issuing
// certificate, nothing else.
func Init(ctx context.Context, db *store.DB, rootKey, issuingKey crypto.Signer, opt Options, now func() time.Time) (*CA, error) {
	if now == nil {
		now = time.Now
	}
	if opt.Organization == "" {
		opt.Organization = "egate Bank"
	}
	if opt.RootValidity == 0 {
		opt.RootValidity = 20 * 365 * 24 * time.Hour
	}
	if opt.IssuingValidity == 0 {
		opt.IssuingValidity = 10 * 365 * 24 * time.Hour
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM ca_authorities`).Scan(&n); err != nil {
		return nil, fmt.Errorf("reading CA state: %w", err)
	}
	if n > 0 {
		return nil, ErrAlreadyInitialized
	}
	t := now().Add(-time.Minute).UTC()
	rootTmpl := &x509.Certificate{
		SerialNumber:          mustSerial(),
		Subject:               pkix.Name{Organization: []string{opt.Organization}, CommonName: opt.Organization + " Root CA"},
		NotBefore:             t,
		NotAfter:              t.Add(opt.RootValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("signing the root certificate: %w", err)
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		return nil, err
	}
	issTmpl := &x509.Certificate{
		SerialNumber:          mustSerial(),
		Subject:               pkix.Name{Organization: []string{opt.Organization}, CommonName: opt.Organization + " Issuing CA 1"},
		NotBefore:             t,
		NotAfter:              t.Add(opt.IssuingValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	issDER, err := x509.CreateCertificate(rand.Reader, issTmpl, root, issuingKey.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("signing the issuing certificate: %w", err)
	}
	ms := now().UnixMilli()
	err = db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO ca_authorities (name, cert_der, key_label, created_ms) VALUES ('root', ?, ?, ?)`, rootDER, RootKeyLabel, ms); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO ca_authorities (name, cert_der, key_label, created_ms) VALUES ('issuing', ?, ?, ?)`, issDER, IssuingKeyLabel, ms)
		return err
	})
	if store.IsUniqueViolation(err) {
		return nil, ErrAlreadyInitialized
	}
	if err != nil {
		return nil, fmt.Errorf("storing the CA certificates: %w", err)
	}
	return Load(ctx, db, issuingKey, now)
}

// Load opens the initialised CA; issuingKey must be the issuing certificate's key.
func Load(ctx context.Context, db *store.DB, issuingKey crypto.Signer, now func() time.Time) (*CA, error) {
	if now == nil {
		now = time.Now
	}
	root, issuing, err := loadCerts(ctx, db)
	if err != nil {
		return nil, err
	}
	if issuingKey != nil {
		if k, ok := issuingKey.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(issuing.PublicKey) {
			return nil, fmt.Errorf("the issuing key given is not the issuing certificate's key")
		}
	}
	c := &CA{db: db, now: now, root: root, issuing: issuing, signer: issuingKey,
		roots: x509.NewCertPool(), inters: x509.NewCertPool(), verified: map[[32]byte]struct{}{}}
	c.roots.AddCert(root)
	c.inters.AddCert(issuing)
	return c, nil
}

func loadCerts(ctx context.Context, db *store.DB) (root, issuing *x509.Certificate, err error) {
	rows, err := db.Query(ctx, `SELECT name, cert_der FROM ca_authorities`)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the CA certificates: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var der []byte
		if err := rows.Scan(&name, &der); err != nil {
			return nil, nil, err
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, nil, fmt.Errorf("CA certificate %s: %w", name, err)
		}
		switch name {
		case "root":
			root = cert
		case "issuing":
			issuing = cert
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	if root == nil || issuing == nil {
		return nil, nil, ErrNotInitialized
	}
	return root, issuing, nil
}

// Root returns the root certificate.
func (c *CA) Root() *x509.Certificate { return c.root }

// Issuing returns the issuing CA certificate.
func (c *CA) Issuing() *x509.Certificate { return c.issuing }

// RootPEM returns the root certificate in PEM.
func (c *CA) RootPEM() []byte { return CertPEM(c.root) }

// IssuingPEM returns the issuing certificate in PEM.
func (c *CA) IssuingPEM() []byte { return CertPEM(c.issuing) }

// CertPEM encodes a certificate as PEM.
func CertPEM(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

// IssueRequest asks for a certificate.
type IssueRequest struct {
	Kind  string // KindToken or KindAgent
	Owner string // the passport id (token) or agent id
	CSR   []byte // DER PKCS#10
	// TokenKey is the public key read from the token itself; for KindToken
	// the CSR's key must be exactly this key.
	TokenKey crypto.PublicKey
	Validity time.Duration // 3 years for tokens, 1 year for agents when zero
}

// Issue checks the request and signs a certificate.
func (c *CA) Issue(ctx context.Context, req IssueRequest) (*x509.Certificate, error) {
	if c.signer == nil {
		return nil, fmt.Errorf("the CA was opened without its issuing key")
	}
	if req.Owner == "" || strings.ContainsAny(req.Owner, "\x00\n") {
		return nil, fmt.Errorf("%w: owner is empty or malformed", ErrBadCSR)
	}
	csr, err := x509.ParseCertificateRequest(req.CSR)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: its signature does not verify: %v", ErrBadCSR, err)
	}
	if err := acceptableKey(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          mustSerial(),
		NotBefore:             c.now().Add(-time.Minute).UTC(),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		CRLDistributionPoints: nil,
	}
	switch req.Kind {
	case KindToken:
		if req.TokenKey == nil {
			return nil, fmt.Errorf("%w: the token's own public key is required", ErrKeyMismatch)
		}
		k, ok := csr.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !k.Equal(req.TokenKey) {
			return nil, ErrKeyMismatch
		}
		tmpl.Subject = pkix.Name{Organization: c.issuing.Subject.Organization, OrganizationalUnit: []string{"U-shield"}, CommonName: req.Owner}
		if req.Validity == 0 {
			req.Validity = 3 * 365 * 24 * time.Hour
		}
	case KindAgent:
		tmpl.Subject = pkix.Name{Organization: c.issuing.Subject.Organization, OrganizationalUnit: []string{"Branch agent"}, CommonName: req.Owner}
		tmpl.DNSNames = csr.DNSNames
		if req.Validity == 0 {
			req.Validity = 365 * 24 * time.Hour
		}
	default:
		return nil, fmt.Errorf("%w: unknown certificate kind %q", ErrBadCSR, req.Kind)
	}
	tmpl.NotAfter = tmpl.NotBefore.Add(req.Validity)
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
		SerialHex(cert.SerialNumber), req.Kind, req.Owner, cert.Subject.String(), der, cert.NotAfter.UnixMilli(), c.now().UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("recording the issued certificate: %w", err)
	}
	return cert, nil
}

func acceptableKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("only P-256 EC keys are accepted")
		}
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA keys must have at least 2048 bits")
		}
	default:
		return fmt.Errorf("key type %T is not accepted (P-256 or RSA-2048)", pub)
	}
	return nil
}

// Verify checks that cert chains to this CA's issuing CA and root, is valid
// at the CA's current time, allows digital signatures for client
// authentication, and is not revoked. Chains already verified are cached
// (by certificate hash); validity and revocation are checked every time.
func (c *CA) Verify(ctx context.Context, cert *x509.Certificate) error {
	if err := c.VerifyChain(cert); err != nil {
		return err
	}
	revoked, err := c.IsRevoked(ctx, cert.SerialNumber)
	if err != nil {
		return err
	}
	if revoked {
		return ErrCertRevoked
	}
	return nil
}

// VerifyChain is Verify without the revocation check.
func (c *CA) VerifyChain(cert *x509.Certificate) error {
	now := c.now()
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) || now.After(c.issuing.NotAfter) {
		return ErrCertExpired
	}
	if cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return fmt.Errorf("%w: the certificate does not allow digital signatures", ErrNotIssuedHere)
	}
	h := sha256.Sum256(cert.Raw)
	c.mu.Lock()
	_, ok := c.verified[h]
	c.mu.Unlock()
	if ok {
		return nil
	}
	if !bytes.Equal(cert.RawIssuer, c.issuing.RawSubject) {
		return ErrNotIssuedHere
	}
	_, err := cert.Verify(x509.VerifyOptions{Roots: c.roots, Intermediates: c.inters, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotIssuedHere, err)
	}
	c.mu.Lock()
	if len(c.verified) > 100000 {
		clear(c.verified)
	}
	c.verified[h] = struct{}{}
	c.mu.Unlock()
	return nil
}

// IsRevoked reports whether the certificate with serial is revoked.
func (c *CA) IsRevoked(ctx context.Context, serial *big.Int) (bool, error) {
	var revoked sql.NullInt64
	err := c.db.QueryRow(ctx, `SELECT revoked_ms FROM ca_certs WHERE serial = ?`, SerialHex(serial)).Scan(&revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return false, ErrUnknownCert
	}
	if err != nil {
		return false, fmt.Errorf("checking revocation: %w", err)
	}
	return revoked.Valid, nil
}

// Revocation reasons (RFC 5280 §5.3.1) used by egate.
const (
	ReasonUnspecified   = 0
	ReasonKeyCompromise = 1
	ReasonSuperseded    = 4
	ReasonCessation     = 5
)

// Revoke revokes the certificate with the given serial (hex). Revoking a
// revoked certificate is not an error and keeps the first revocation time.
func (c *CA) Revoke(ctx context.Context, serialHex string, reason int) error {
	serialHex = strings.ToLower(strings.TrimSpace(serialHex))
	res, err := c.db.Exec(ctx, `UPDATE ca_certs SET revoked_ms = ?, revoke_reason = ? WHERE serial = ? AND revoked_ms IS NULL`,
		c.now().UnixMilli(), reason, serialHex)
	if err != nil {
		return fmt.Errorf("revoking %s: %w", serialHex, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var one int
		if err := c.db.QueryRow(ctx, `SELECT 1 FROM ca_certs WHERE serial = ?`, serialHex).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("revoking %s: %w", serialHex, ErrUnknownCert)
		}
	}
	c.mu.Lock()
	c.crl = nil
	c.mu.Unlock()
	return nil
}

// Issued is one certificate as recorded.
type Issued struct {
	Serial   string
	Kind     string
	Owner    string
	Subject  string
	NotAfter time.Time
	Revoked  bool
}

// List returns the certificates issued to owner (all when owner is empty).
func (c *CA) List(ctx context.Context, owner string) ([]Issued, error) {
	q := `SELECT serial, kind, owner, subject, not_after_ms, revoked_ms FROM ca_certs`
	var args []any
	if owner != "" {
		q += ` WHERE owner = ?`
		args = append(args, owner)
	}
	rows, err := c.db.Query(ctx, q+` ORDER BY issued_ms`, args...)
	if err != nil {
		return nil, fmt.Errorf("listing certificates: %w", err)
	}
	defer rows.Close()
	var out []Issued
	for rows.Next() {
		var i Issued
		var na int64
		var rev sql.NullInt64
		if err := rows.Scan(&i.Serial, &i.Kind, &i.Owner, &i.Subject, &na, &rev); err != nil {
			return nil, err
		}
		i.NotAfter, i.Revoked = time.UnixMilli(na), rev.Valid
		out = append(out, i)
	}
	return out, rows.Err()
}

// CRL returns the current DER CRL signed by the issuing CA, valid for a day.
// It is regenerated after a revocation and at most once a minute otherwise.
func (c *CA) CRL(ctx context.Context) ([]byte, error) {
	now := c.now()
	c.mu.Lock()
	if c.crl != nil && now.Sub(c.crlAt) < time.Minute {
		b := c.crl
		c.mu.Unlock()
		return b, nil
	}
	c.mu.Unlock()
	if c.signer == nil {
		return nil, fmt.Errorf("the CA was opened without its issuing key")
	}
	rows, err := c.db.Query(ctx, `SELECT serial, revoked_ms, revoke_reason FROM ca_certs WHERE revoked_ms IS NOT NULL ORDER BY revoked_ms`)
	if err != nil {
		return nil, fmt.Errorf("reading revocations: %w", err)
	}
	var entries []x509.RevocationListEntry
	for rows.Next() {
		var s string
		var at int64
		var reason sql.NullInt64
		if err := rows.Scan(&s, &at, &reason); err != nil {
			rows.Close()
			return nil, err
		}
		n, ok := new(big.Int).SetString(s, 16)
		if !ok {
			continue
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: time.UnixMilli(at).UTC(), ReasonCode: int(reason.Int64)})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// The CRL number grows with time (ms), so it is monotonic across
	// replicas without a shared counter.
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(now.UnixMilli()),
		ThisUpdate:                now.UTC(),
		NextUpdate:                now.Add(24 * time.Hour).UTC(),
		RevokedCertificateEntries: entries,
	}, c.issuing, c.signer)
	if err != nil {
		return nil, fmt.Errorf("signing the CRL: %w", err)
	}
	c.mu.Lock()
	c.crl, c.crlAt = der, now
	c.mu.Unlock()
	return der, nil
}

// SerialHex is the form serials are stored and shown in.
func SerialHex(n *big.Int) string { return hex.EncodeToString(n.Bytes()) }

// mustSerial returns a random positive 128-bit serial.
func mustSerial() *big.Int {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	b[0] &= 0x7f
	b[0] |= 0x40 // keep 16 bytes in DER and the number positive
	return new(big.Int).SetBytes(b[:])
}
