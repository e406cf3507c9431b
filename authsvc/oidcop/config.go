package oidcop

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// ClientConfig registers one platform as an OIDC client.
type ClientConfig struct {
	ID string `yaml:"id"`
	// Secret of a confidential client (client_secret_basic or _post). Empty
	// with Public set: a public client that authenticates with PKCE alone.
	Secret                 string   `yaml:"secret" secret:"true"`
	Public                 bool     `yaml:"public"`
	RedirectURIs           []string `yaml:"redirect-uris"`
	PostLogoutRedirectURIs []string `yaml:"post-logout-redirect-uris"`
	// BackchannelLogoutURI, when set, receives a logout token (OpenID
	// Connect Back-Channel Logout 1.0) each time a customer's passport
	// sessions end, so the platform drops its own session of the customer.
	BackchannelLogoutURI string `yaml:"backchannel-logout-uri"`
	// MinLevel is the lowest level (1–5) a login for this client reaches;
	// acr_values may ask for more, never for less.
	MinLevel int `yaml:"min-level"`
}

// Config is the OIDC provider's section.
type Config struct {
	Clients         []ClientConfig `yaml:"clients"`
	AccessTokenTTL  time.Duration  `yaml:"access-token-ttl"`  // default 10m
	IDTokenTTL      time.Duration  `yaml:"id-token-ttl"`      // default 10m
	RefreshTokenTTL time.Duration  `yaml:"refresh-token-ttl"` // default 8h
	AuthRequestTTL  time.Duration  `yaml:"auth-request-ttl"`  // default 15m: time to finish the login steps
	CodeTTL         time.Duration  `yaml:"code-ttl"`          // default 1m
	SessionTTL      time.Duration  `yaml:"session-ttl"`       // default 8h: the passport (SSO) session
}

// WithDefaults fills zero durations.
func (c Config) WithDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.AccessTokenTTL, 10*time.Minute)
	def(&c.IDTokenTTL, 10*time.Minute)
	def(&c.RefreshTokenTTL, 8*time.Hour)
	def(&c.AuthRequestTTL, 15*time.Minute)
	def(&c.CodeTTL, time.Minute)
	def(&c.SessionTTL, 8*time.Hour)
	return c
}

// ErrConfig wraps configuration errors.
var ErrConfig = errors.New("oidc config")

// Validate checks the section.
func (c Config) Validate() error {
	seen := map[string]bool{}
	for i, cl := range c.Clients {
		where := fmt.Sprintf("clients[%d] (%s)", i, cl.ID)
		if cl.ID == "" {
			return fmt.Errorf("%w: %s: id is empty", ErrConfig, where)
		}
		if seen[cl.ID] {
			return fmt.Errorf("%w: %s: duplicate id", ErrConfig, where)
		}
		seen[cl.ID] = true
		if cl.Public == (cl.Secret != "") {
			return fmt.Errorf("%w: %s: give a secret, or public: true without one", ErrConfig, where)
		}
		if cl.Secret != "" && len(cl.Secret) < 16 {
			return fmt.Errorf("%w: %s: the secret must be at least 16 characters", ErrConfig, where)
		}
		if cl.MinLevel < 1 || cl.MinLevel > MaxLevel {
			return fmt.Errorf("%w: %s: min-level must be 1–%d", ErrConfig, where, MaxLevel)
		}
		if len(cl.RedirectURIs) == 0 {
			return fmt.Errorf("%w: %s: no redirect-uris", ErrConfig, where)
		}
		uris := append(append([]string{}, cl.RedirectURIs...), cl.PostLogoutRedirectURIs...)
		if cl.BackchannelLogoutURI != "" {
			uris = append(uris, cl.BackchannelLogoutURI)
		}
		for _, u := range uris {
			pu, err := url.Parse(u)
			if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" || pu.Fragment != "" {
				return fmt.Errorf("%w: %s: %q is not an absolute http(s) URI without fragment", ErrConfig, where, u)
			}
		}
	}
	for _, d := range []time.Duration{c.AccessTokenTTL, c.IDTokenTTL, c.RefreshTokenTTL, c.AuthRequestTTL, c.CodeTTL, c.SessionTTL} {
		if d < 0 {
			return fmt.Errorf("%w: durations must not be negative", ErrConfig)
		}
	}
	return nil
}
