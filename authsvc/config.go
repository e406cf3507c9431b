package authsvc

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/egate-bank/egate/authsvc/backend"
	"github.com/egate-bank/egate/authsvc/oidcop"
	"github.com/egate-bank/egate/authsvc/passport"
)

// Config is the authsvc section of egate's config.
type Config struct {
	// Issuer is the passport's external base URL, e.g.
	// https://passport.bank.example. An http issuer is refused unless
	// AllowInsecure is set (tests, the demo).
	Issuer        string `yaml:"issuer"`
	AllowInsecure bool   `yaml:"allow-insecure"`
	// SigningKeyID is the kid of the ES256 signing key in the JWKS.
	SigningKeyID string `yaml:"signing-key-id"`
	// SigningKey names the HSM key (label or pkcs11: URI) that cmd/egate
	// resolves into the Deps.Signer.
	SigningKey string `yaml:"signing-key"`
	// TrustForwardedFor takes the client IP from X-Forwarded-For (behind a
	// load balancer that sets it); otherwise the peer address is used.
	TrustForwardedFor bool            `yaml:"trust-forwarded-for"`
	CaptchaTTL        time.Duration   `yaml:"captcha-ttl"`
	Passport          passport.Config `yaml:"passport"`
	OIDC              oidcop.Config   `yaml:"oidc"`
	// BackendClients are the bank's back-end systems allowed to call the
	// server-to-server APIs (the OTP verify API), with HTTP Basic; see
	// authsvc/backend.
	BackendClients []backend.ClientConfig `yaml:"backend-clients"`
	// AuditCheckpointEvery is how often the audit log's head is signed by
	// the HSM's audit key (egate-audit-checkpoint), when records were added.
	AuditCheckpointEvery time.Duration `yaml:"audit-checkpoint-every"`
}

// DefaultSigningKey is the HSM label of the passport's token signing key.
const DefaultSigningKey = "egate-passport-signing"

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	if c.SigningKeyID == "" {
		c.SigningKeyID = DefaultSigningKey
	}
	if c.SigningKey == "" {
		c.SigningKey = DefaultSigningKey
	}
	if c.CaptchaTTL == 0 {
		c.CaptchaTTL = 5 * time.Minute
	}
	if c.AuditCheckpointEvery == 0 {
		c.AuditCheckpointEvery = time.Minute
	}
	c.Passport = c.Passport.WithDefaults()
	c.OIDC = c.OIDC.WithDefaults()
	return c
}

// ErrConfig wraps config errors.
var ErrConfig = errors.New("authsvc config")

// Validate checks the section (after WithDefaults).
func (c Config) Validate() error {
	u, err := url.Parse(c.Issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%w: issuer %q must be an absolute https URL", ErrConfig, c.Issuer)
	}
	if u.Scheme == "http" && !c.AllowInsecure {
		return fmt.Errorf("%w: issuer %q is http; set allow-insecure for tests and the demo only", ErrConfig, c.Issuer)
	}
	if c.CaptchaTTL < 0 {
		return fmt.Errorf("%w: captcha-ttl must not be negative", ErrConfig)
	}
	if c.AuditCheckpointEvery < time.Second || c.AuditCheckpointEvery > 24*time.Hour {
		return fmt.Errorf("%w: audit-checkpoint-every %s: want 1s to 24h", ErrConfig, c.AuditCheckpointEvery)
	}
	if err := c.Passport.Validate(); err != nil {
		return fmt.Errorf("%w: passport: %w", ErrConfig, err)
	}
	if err := c.OIDC.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := backend.Validate(c.BackendClients); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}
