package agent

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"

	"github.com/egate-bank/egate/devices/pinsource"
	"github.com/egate-bank/egate/devices/pkcs11uri"
)

// TokenConfig names the agent's key on its PKCS#11 token.
type TokenConfig struct {
	// Module is the token vendor's PKCS#11 library (SoftHSM2's in
	// development).
	Module string `yaml:"module"`
	// Key is the RFC 7512 URI of the key: pkcs11:token=<token label>;object=<key label>
	// (the certificate is stored under the same label and CKA_ID).
	Key string `yaml:"key"`
	// PINSource says where the token's user PIN is: file:/path or env:NAME.
	PINSource string `yaml:"pin-source"`
	// ModuleEnv is environment the token's library reads its own
	// configuration from, NAME=value (SoftHSM2: SOFTHSM2_CONF=…), set by
	// ApplyModuleEnv before the library loads. Never a PIN.
	ModuleEnv []string `yaml:"module-env"`
}

// ApplyModuleEnv sets ModuleEnv in this process's environment; call it
// before OpenToken (a library loaded already has read its environment).
func (c TokenConfig) ApplyModuleEnv() error {
	for _, kv := range c.ModuleEnv {
		name, val, _ := strings.Cut(kv, "=")
		if err := os.Setenv(name, val); err != nil {
			return fmt.Errorf("%w: token.module-env %s: %w", ErrConfig, name, err)
		}
	}
	return nil
}

// Errors of the token.
var (
	ErrToken       = errors.New("agent token")
	ErrKeyExists   = errors.New("the token already holds a key with this label")
	ErrNotEnrolled = errors.New("the token holds no enrolled agent key with this label")
)

// Validate checks the token section (when the data-centre link is on).
func (c TokenConfig) Validate() error {
	if c.Module == "" {
		return fmt.Errorf("%w: token.module is empty: give the token's PKCS#11 library", ErrConfig)
	}
	if _, _, err := c.names(); err != nil {
		return fmt.Errorf("%w: token.key: %w", ErrConfig, err)
	}
	if _, err := pinsource.Parse(c.PINSource); err != nil {
		return fmt.Errorf("%w: token.pin-source: %w", ErrConfig, err)
	}
	for _, kv := range c.ModuleEnv {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || val == "" || !envNameRE.MatchString(name) {
			return fmt.Errorf("%w: token.module-env: want NAME=value entries (e.g. SOFTHSM2_CONF=/etc/softhsm2.conf), not %q", ErrConfig, name)
		}
	}
	return nil
}

// names returns the token label and the key's object label from Key.
func (c TokenConfig) names() (token, object string, err error) {
	u, err := pkcs11uri.Parse(c.Key)
	if err != nil {
		return "", "", err
	}
	if u.Token == "" || u.Object == "" {
		return "", "", errors.New("give both token= and object=, e.g. pkcs11:token=branch-0101;object=egate-agent")
	}
	if u.Type != "" && u.Type != pkcs11uri.TypePrivate {
		return "", "", fmt.Errorf("type=%s: the key is a private key (type=private or no type)", u.Type)
	}
	return u.Token, u.Object, nil
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Token is the agent's PKCS#11 token, opened through crypto11 and logged in
// with the PIN read from the pin source (wiped after the login; crypto11
// keeps its session logged in). Its signer is safe for concurrent use
// (crypto11 lends one session per operation).
type Token struct {
	c11    *crypto11.Context
	token  string
	object string
}

// OpenToken opens the token named by cfg.Key and logs in.
func OpenToken(_ context.Context, cfg TokenConfig) (*Token, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tokLabel, obj, _ := cfg.names()
	pin, err := pinsource.Read(cfg.PINSource)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrToken, tokLabel, err)
	}
	// crypto11 shares one loaded module per path string: spell the path
	// as devices/hsm does (absolute, symlinks resolved), so that an HSM and
	// an agent token on the same library in one process (egate admin agent
	// enroll with SoftHSM2) share it instead of initialising it twice.
	path, err := filepath.Abs(cfg.Module)
	if err == nil {
		if real, err := filepath.EvalSymlinks(path); err == nil {
			path = real
		}
	}
	c11, err := crypto11.Configure(&crypto11.Config{Path: path, TokenLabel: tokLabel, Pin: string(pin), MaxSessions: 2})
	pinsource.Wipe(pin)
	if err != nil {
		return nil, fmt.Errorf("%w: opening token %q with %s: %w", ErrToken, tokLabel, cfg.Module, err)
	}
	return &Token{c11: c11, token: tokLabel, object: obj}, nil
}

// Close logs out and releases the module.
func (t *Token) Close() error { return t.c11.Close() }

// URI is the RFC 7512 URI of the agent's key.
func (t *Token) URI() string {
	return (&pkcs11uri.URI{Token: t.token, Object: t.object, Type: pkcs11uri.TypePrivate}).String()
}

// IssueFunc has the bank CA sign the agent's CSR (DER).
type IssueFunc func(ctx context.Context, csrDER []byte) (*x509.Certificate, error)

// Enroll makes a P-256 key on the token (private, sensitive, not
// extractable, under the configured label and a random CKA_ID), builds a
// CSR for the branch signed by that key, has issue sign the certificate,
// and writes the certificate to the token under the same id and label. If
// a step after the key generation fails, the key is destroyed.
func (t *Token) Enroll(ctx context.Context, branch string, issue IssueFunc) (*x509.Certificate, error) {
	if ks, err := t.c11.FindKeyPairs(nil, []byte(t.object)); err != nil {
		return nil, fmt.Errorf("%w: looking for key %q on token %q: %w", ErrToken, t.object, t.token, err)
	} else if len(ks) > 0 {
		return nil, fmt.Errorf("%w: %q on token %q; delete it (pkcs11-tool --delete-object) or choose another object= label", ErrKeyExists, t.object, t.token)
	}
	id := make([]byte, 8)
	rand.Read(id)
	// Sign only: SoftHSM2 (like many tokens) would otherwise default the
	// private key to decrypt and unwrap as well.
	pub, err := crypto11.NewAttributeSetWithIDAndLabel(id, []byte(t.object))
	if err != nil {
		return nil, err
	}
	priv := pub.Copy()
	pub.AddIfNotPresent([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false), pkcs11.NewAttribute(pkcs11.CKA_WRAP, false)})
	priv.AddIfNotPresent([]*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
	})
	key, err := t.c11.GenerateECDSAKeyPairWithAttributes(pub, priv, elliptic.P256())
	if err != nil {
		return nil, fmt.Errorf("%w: generating a P-256 key on token %q: %w", ErrToken, t.token, err)
	}
	undo := func(err error) (*x509.Certificate, error) {
		if derr := key.Delete(); derr != nil {
			return nil, errors.Join(err, fmt.Errorf("removing the half-enrolled key: %w", derr))
		}
		return nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: branch}}, key)
	if err != nil {
		return undo(fmt.Errorf("%w: building the CSR on token %q: %w", ErrToken, t.token, err))
	}
	cert, err := issue(ctx, csr)
	if err != nil {
		return undo(fmt.Errorf("issuing the agent certificate: %w", err))
	}
	if err := t.c11.ImportCertificateWithLabel(id, []byte(t.object), cert); err != nil {
		return undo(fmt.Errorf("%w: writing the certificate to token %q: %w", ErrToken, t.token, err))
	}
	return cert, nil
}

// TLSCertificate returns the agent's client certificate with its key on
// the token as the crypto.Signer.
func (t *Token) TLSCertificate() (tls.Certificate, error) {
	keys, err := t.c11.FindKeyPairs(nil, []byte(t.object))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: finding key %q on token %q: %w", ErrToken, t.object, t.token, err)
	}
	switch len(keys) {
	case 0:
		return tls.Certificate{}, fmt.Errorf("%w: %q on token %q; run egate admin agent enroll", ErrNotEnrolled, t.object, t.token)
	case 1:
	default:
		return tls.Certificate{}, fmt.Errorf("%w: %d keys labelled %q on token %q; keep one", ErrToken, len(keys), t.object, t.token)
	}
	key := keys[0]
	cert, err := t.c11.FindCertificate(nil, []byte(t.object), nil)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: reading the certificate %q on token %q: %w", ErrToken, t.object, t.token, err)
	}
	if cert == nil {
		return tls.Certificate{}, fmt.Errorf("%w: key %q on token %q has no certificate; run egate admin agent enroll", ErrNotEnrolled, t.object, t.token)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return tls.Certificate{}, fmt.Errorf("%w: the certificate %q on token %q is not for the key with that label", ErrToken, t.object, t.token)
	}
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}, nil
}
