package platform

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// backchannelLogoutEvent is the events member of a logout token.
const backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// Logouts remembers the customers whose passport sessions ended, so that
// the platform's own sessions of them (encrypted cookies it cannot reach)
// stop counting. Every replica of a platform must see the same Logouts
// for a back-channel logout received by one to hold on all.
type Logouts interface {
	// Add records that every session of sub made before at has ended.
	Add(ctx context.Context, sub string, at time.Time) error
	// Ended reports whether a session of sub made at created has ended.
	Ended(ctx context.Context, sub string, created time.Time) (bool, error)
}

// MemoryLogouts is Logouts in this process's memory: right for one replica
// (egate demo, a single platform process). Entries are kept for ttl, the
// longest a platform session lives, and then forgotten.
type MemoryLogouts struct {
	mu  sync.Mutex
	ttl time.Duration
	at  map[string]time.Time
}

// NewMemoryLogouts returns an empty MemoryLogouts keeping entries for ttl.
func NewMemoryLogouts(ttl time.Duration) *MemoryLogouts {
	return &MemoryLogouts{ttl: ttl, at: map[string]time.Time{}}
}

// Add implements Logouts.
func (m *MemoryLogouts) Add(_ context.Context, sub string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, t := range m.at {
		if at.Sub(t) > m.ttl {
			delete(m.at, k)
		}
	}
	if at.After(m.at[sub]) {
		m.at[sub] = at
	}
	return nil
}

// Ended implements Logouts.
func (m *MemoryLogouts) Ended(_ context.Context, sub string, created time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.at[sub]
	return ok && !created.After(t), nil
}

// backchannelLogout receives a logout token from the passport (OpenID
// Connect Back-Channel Logout 1.0 §2.5–2.8): verified against the
// passport's JWKS, for this client, fresh, with the logout event and no
// nonce; then every session of its sub made before now ends.
func (s *Site) backchannelLogout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		logoutError(w, "the request is not a form")
		return
	}
	tok := r.PostForm.Get("logout_token")
	if tok == "" {
		logoutError(w, "logout_token is missing")
		return
	}
	sub, err := s.verifyLogoutToken(r.Context(), tok)
	if err != nil {
		logoutError(w, err.Error())
		return
	}
	if err := s.logouts.Add(r.Context(), sub, s.now()); err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":"temporarily_unavailable","error_description":"the logout could not be recorded"}`))
		return
	}
	w.WriteHeader(http.StatusOK)
}

func logoutError(w http.ResponseWriter, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request", "error_description": desc})
}

// verifyLogoutToken checks a logout token and returns its subject.
func (s *Site) verifyLogoutToken(ctx context.Context, tok string) (string, error) {
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return "", errors.New("the logout token is not a JWS signed with ES256")
	}
	payload, err := s.rp.IDTokenVerifier().KeySet.VerifySignature(ctx, jws)
	if err != nil {
		return "", errors.New("the logout token's signature is not the passport's")
	}
	var c oidc.LogoutTokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", errors.New("the logout token's claims are malformed")
	}
	now := s.now()
	switch {
	case c.Issuer != s.rp.Issuer():
		return "", errors.New("the logout token is from another issuer")
	case !slices.Contains([]string(c.Audience), s.cfg.ClientID):
		return "", errors.New("the logout token is for another client")
	case c.Expiration.AsTime().Before(now):
		return "", errors.New("the logout token has expired")
	case c.IssuedAt.AsTime().After(now.Add(time.Minute)) || c.IssuedAt.AsTime().Before(now.Add(-5*time.Minute)):
		return "", errors.New("the logout token's iat is not recent")
	case c.JWTID == "":
		return "", errors.New("the logout token has no jti")
	case c.Subject == "":
		return "", errors.New("the logout token names no subject")
	}
	if _, ok := c.Events[backchannelLogoutEvent]; !ok {
		return "", errors.New("the logout token has no back-channel logout event")
	}
	if _, ok := c.Claims["nonce"]; ok {
		return "", errors.New("a logout token must not carry a nonce")
	}
	return c.Subject, nil
}
