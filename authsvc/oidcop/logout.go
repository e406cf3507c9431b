package oidcop

import (
	"context"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// BackchannelLogoutEvent is the events member of a logout token (OpenID
// Connect Back-Channel Logout 1.0 §2.4).
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// LogoutTokenTTL is how long a logout token is good for.
const LogoutTokenTTL = 2 * time.Minute

// BackchannelClients are the clients with a registered back-channel logout
// URI, in configuration order.
func (s *Storage) BackchannelClients() []ClientConfig {
	var out []ClientConfig
	for _, c := range s.cfg.Clients {
		if c.BackchannelLogoutURI != "" {
			out = append(out, c)
		}
	}
	return out
}

// LogoutToken signs a logout token for clientID saying that every session
// of subject at the passport ended (Back-Channel Logout 1.0 §2.4): iss,
// aud, iat, exp, jti, sub and the events claim, no nonce, typ logout+jwt,
// with the key that signs ID tokens.
func (s *Storage) LogoutToken(_ context.Context, issuer, clientID, subject string) (string, error) {
	now := s.now()
	c := &oidc.LogoutTokenClaims{
		Issuer: issuer, Subject: subject, Audience: oidc.Audience{clientID},
		IssuedAt: oidc.FromTime(now), Expiration: oidc.FromTime(now.Add(LogoutTokenTTL)), JWTID: randomID(18),
		Events: map[string]any{BackchannelLogoutEvent: map[string]any{}},
	}
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.key.Key()},
		(&jose.SignerOptions{}).WithType("logout+jwt").WithHeader(jose.HeaderKey("kid"), s.key.kid))
	if err != nil {
		return "", fmt.Errorf("logout token signer: %w", err)
	}
	payload, err := c.MarshalJSON()
	if err != nil {
		return "", fmt.Errorf("logout token: %w", err)
	}
	jws, err := sg.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("signing logout token: %w", err)
	}
	return jws.CompactSerialize()
}
