package oidcop

import (
	"crypto/sha256"
	"fmt"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// NewProvider returns the zitadel provider over s. secret (shared by every
// replica) keys the provider's code encryption; insecure allows an http
// issuer (tests and the demo only).
func NewProvider(issuer string, s *Storage, secret []byte, insecure bool) (*op.Provider, error) {
	cfg := &op.Config{
		CryptoKey:                sha256.Sum256(append([]byte("egate oidc op crypto key\x00"), secret...)),
		DefaultLogoutRedirectURI: strings.TrimSuffix(issuer, "/") + "/logged-out",
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedScopes:          []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopePhone, oidc.ScopeOfflineAccess},
		SupportedClaims:          []string{"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "acr", "amr", "at_hash", "c_hash", "azp", "preferred_username", "phone_number"},
	}
	var opts []op.Option
	if insecure {
		opts = append(opts, op.WithAllowInsecure())
	}
	p, err := op.NewProvider(cfg, s, op.StaticIssuer(issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("starting OIDC provider: %w", err)
	}
	return p, nil
}

// CallbackURL is where the login pages send the browser once a request is
// complete: op's callback answers the client with the code.
func CallbackURL(issuer, authRequestID string) string {
	return strings.TrimSuffix(issuer, "/") + "/authorize/callback?id=" + authRequestID
}
