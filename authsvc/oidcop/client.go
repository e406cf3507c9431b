package oidcop

import (
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Client is a registered platform.
type Client struct {
	cfg      ClientConfig
	loginURL func(authRequestID string) string
	idTTL    time.Duration
}

var _ op.Client = (*Client)(nil)

// MinLevel is the client's fixed minimum level.
func (c *Client) MinLevel() int { return c.cfg.MinLevel }

func (c *Client) GetID() string                        { return c.cfg.ID }
func (c *Client) RedirectURIs() []string               { return c.cfg.RedirectURIs }
func (c *Client) PostLogoutRedirectURIs() []string     { return c.cfg.PostLogoutRedirectURIs }
func (c *Client) LoginURL(id string) string            { return c.loginURL(id) }
func (c *Client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeJWT }
func (c *Client) IDTokenLifetime() time.Duration       { return c.idTTL }
func (c *Client) DevMode() bool                        { return false }
func (c *Client) ClockSkew() time.Duration             { return 0 }
func (c *Client) IDTokenUserinfoClaimsAssertion() bool { return true }

// ApplicationType: confidential clients are web servers; public clients are
// native (loopback or custom-scheme redirects, RFC 8252) when every redirect
// is loopback, otherwise browser apps (https only).
func (c *Client) ApplicationType() op.ApplicationType {
	if !c.cfg.Public {
		return op.ApplicationTypeWeb
	}
	for _, u := range c.cfg.RedirectURIs {
		if _, loop := op.HTTPLoopbackOrLocalhost(u); !loop {
			return op.ApplicationTypeUserAgent
		}
	}
	return op.ApplicationTypeNative
}

func (c *Client) AuthMethod() oidc.AuthMethod {
	if c.cfg.Public {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}

func (c *Client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *Client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}

func (c *Client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *Client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed admits only the scopes egate knows.
func (c *Client) IsScopeAllowed(scope string) bool {
	return slices.Contains([]string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopePhone, oidc.ScopeOfflineAccess}, scope)
}
