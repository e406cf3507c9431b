package oidcop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

func TestACR(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"urn:egate:loa:1", 1}, {"urn:egate:loa:5", 5}, {"urn:egate:loa:6", 0}, {"urn:egate:loa:0", 0},
		{"urn:egate:loa:03", 0}, {"3", 0}, {"urn:egate:loa:", 0}, {"urn:other:loa:3", 0},
	} {
		if got := ParseACR(tc.in); got != tc.want {
			t.Errorf("ParseACR(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct {
		name string
		min  int
		acr  []string
		want int
	}{
		{"none", 2, nil, 2},
		{"raise", 1, []string{"urn:egate:loa:3"}, 3},
		{"never lower", 3, []string{"urn:egate:loa:1"}, 3},
		{"highest wins", 1, []string{"urn:egate:loa:2", "urn:egate:loa:4", "junk"}, 4},
	} {
		if got := RequiredLevel(tc.min, tc.acr); got != tc.want {
			t.Errorf("%s: RequiredLevel = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	good := ClientConfig{ID: "ebank", Secret: "0123456789abcdef", RedirectURIs: []string{"https://e.example/cb"}, MinLevel: 1}
	for _, tc := range []struct {
		name string
		mut  func(*ClientConfig)
		ok   bool
	}{
		{"good", func(*ClientConfig) {}, true},
		{"public", func(c *ClientConfig) { c.Secret, c.Public = "", true }, true},
		{"public with secret", func(c *ClientConfig) { c.Public = true }, false},
		{"no secret", func(c *ClientConfig) { c.Secret = "" }, false},
		{"short secret", func(c *ClientConfig) { c.Secret = "short" }, false},
		{"level 0", func(c *ClientConfig) { c.MinLevel = 0 }, false},
		{"level 6", func(c *ClientConfig) { c.MinLevel = 6 }, false},
		{"no redirects", func(c *ClientConfig) { c.RedirectURIs = nil }, false},
		{"relative redirect", func(c *ClientConfig) { c.RedirectURIs = []string{"/cb"} }, false},
		{"fragment", func(c *ClientConfig) { c.RedirectURIs = []string{"https://e.example/cb#x"} }, false},
		{"no id", func(c *ClientConfig) { c.ID = "" }, false},
		{"back-channel logout URI", func(c *ClientConfig) { c.BackchannelLogoutURI = "https://e.example/backchannel-logout" }, true},
		{"relative back-channel logout URI", func(c *ClientConfig) { c.BackchannelLogoutURI = "/backchannel-logout" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.mut(&c)
			err := Config{Clients: []ClientConfig{c}}.WithDefaults().Validate()
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrConfig)) {
				t.Fatalf("Validate = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	if err := (Config{Clients: []ClientConfig{good, good}}).Validate(); err == nil {
		t.Fatal("duplicate ids accepted")
	}
}

// TestSignPayload checks the JWS signature form (r||s) against
// crypto/ecdsa and go-jose's own verifier.
func TestSignPayload(t *testing.T) {
	t.Parallel()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sk, err := newSigningKey(k, "kid1")
	if err != nil {
		t.Fatal(err)
	}
	sig, err := (&opaque{sk}).SignPayload([]byte("payload"), jose.ES256)
	if err != nil || len(sig) != 64 {
		t.Fatalf("sig %x %v", sig, err)
	}
	d := sha256.Sum256([]byte("payload"))
	if !ecdsa.Verify(&k.PublicKey, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("signature does not verify")
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: &opaque{sk}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jws, _ := signer.Sign([]byte("hello"))
	if out, err := jws.Verify(&k.PublicKey); err != nil || string(out) != "hello" {
		t.Fatalf("jose verify: %v", err)
	}
	if _, err := (&opaque{sk}).SignPayload([]byte("x"), jose.RS256); err == nil {
		t.Fatal("RS256 accepted")
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := newSigningKey(p384, "k"); !errors.Is(err, errNotP256) {
		t.Fatalf("P-384 accepted: %v", err)
	}
}

func newTestStorage(t testing.TB, db *store.DB) *Storage {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := NewStorage(db, Config{Clients: []ClientConfig{{ID: "ebank", Secret: "0123456789abcdef", RedirectURIs: []string{"https://e.example/cb"}, MinLevel: 1}}},
		k, "kid", nil, nil, func(id string) string { return "/login?id=" + id })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func completedRequest(t testing.TB, s *Storage, code string) *AuthRequest {
	ctx := context.Background()
	ar, err := s.CreateAuthRequest(ctx, &oidc.AuthRequest{ClientID: "ebank", RedirectURI: "https://e.example/cb", ResponseType: oidc.ResponseTypeCode,
		Scopes: []string{"openid", "offline_access"}, CodeChallenge: "abc", CodeChallengeMethod: oidc.CodeChallengeMethodS256}, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, ar.GetID(), "P1", 2, []string{"pwd", "sms", "mfa"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, ar.GetID(), "P1", 2, nil, time.Now()); !errors.Is(err, ErrAlreadyDone) {
		t.Fatalf("second completion: %v", err)
	}
	if err := s.SaveAuthCode(ctx, ar.GetID(), code); err != nil {
		t.Fatal(err)
	}
	r, err := s.AuthRequestByCode(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	return r.(*AuthRequest)
}

// TestSingleUseAcrossReplicas: two replicas racing to exchange one code, or
// to rotate one refresh token, let exactly one through; the refresh race
// revokes the family.
func TestSingleUseAcrossReplicas(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx := context.Background()
	var reps [2]*Storage
	for i := range reps {
		db, err := store.Open(ctx, store.Config{Driver: store.Postgres, DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		reps[i] = newTestStorage(t, db)
	}
	ar := completedRequest(t, reps[0], "code-1")
	race := func(f func(s *Storage) error) (ok int64) {
		var wg sync.WaitGroup
		var n atomic.Int64
		start := make(chan struct{})
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if f(reps[i%2]) == nil {
					n.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		return n.Load()
	}
	var refresh string
	var mu sync.Mutex
	if n := race(func(s *Storage) error {
		_, rt, _, err := s.CreateAccessAndRefreshTokens(ctx, ar, "")
		if err == nil {
			mu.Lock()
			refresh = rt
			mu.Unlock()
		}
		return err
	}); n != 1 {
		t.Fatalf("%d code exchanges succeeded", n)
	}
	rr, err := reps[1].TokenRequestByRefreshToken(ctx, refresh)
	if err != nil {
		t.Fatal(err)
	}
	if rr.GetSubject() != "P1" || rr.(*RefreshRequest).level != 2 {
		t.Fatalf("refresh request: %+v", rr)
	}
	var next []string
	if n := race(func(s *Storage) error {
		_, rt, _, err := s.CreateAccessAndRefreshTokens(ctx, rr, refresh)
		if err == nil {
			mu.Lock()
			next = append(next, rt)
			mu.Unlock()
		}
		return err
	}); n != 1 {
		t.Fatalf("%d rotations succeeded", n)
	}
	// The losers presented a spent token: the family is revoked, the
	// winner's new token included.
	if _, err := reps[0].TokenRequestByRefreshToken(ctx, next[0]); err == nil {
		t.Fatal("family not revoked after a replayed refresh token")
	}
}

func TestPurge(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Now()
		s := newTestStorage(t, db)
		s.now = func() time.Time { return now }
		ar := completedRequest(t, s, "code-p")
		if _, _, _, err := s.CreateAccessAndRefreshTokens(ctx, ar, ""); err != nil {
			t.Fatal(err)
		}
		tok, _, _ := s.CreateSession(ctx, "P1", 1, []string{"pwd"}, now, "ua")
		if n, err := s.Purge(ctx, time.Hour); err != nil || n != 0 {
			t.Fatalf("purged live rows: %d %v", n, err)
		}
		now = now.Add(10 * time.Hour)
		if n, err := s.Purge(ctx, time.Hour); err != nil || n != 4 { // the request, the access and refresh tokens, the session
			t.Fatalf("purged %d, %v", n, err)
		}
		if _, err := s.SessionByToken(ctx, tok); !errors.Is(err, ErrNoSession) {
			t.Fatalf("session survived: %v", err)
		}
	})
}

// TestSpendAndInsert: a code or refresh token is spent together with the
// rows of the tokens it buys, both or neither, on both engines (on
// PostgreSQL one statement, on SQLite a transaction): a second exchange of
// a code, a second rotation of a refresh token, an expired refresh token
// and a code exchange that also presents a refresh token store nothing
// and are refused; the replayed refresh token revokes its family.
func TestSpendAndInsert(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Now()
		s := newTestStorage(t, db)
		s.now = func() time.Time { return now }
		rows := func() (n, used, revoked int) {
			t.Helper()
			if err := db.QueryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(used), 0), COALESCE(SUM(revoked), 0) FROM oidc_tokens`).Scan(&n, &used, &revoked); err != nil {
				t.Fatal(err)
			}
			return n, used, revoked
		}
		want := func(name string, n, used, revoked int) {
			t.Helper()
			if gn, gu, gr := rows(); gn != n || gu != used || gr != revoked {
				t.Fatalf("%s: %d rows, %d used, %d revoked; want %d, %d, %d", name, gn, gu, gr, n, used, revoked)
			}
		}
		ar := completedRequest(t, s, "code-s")
		if _, _, _, err := s.CreateAccessAndRefreshTokens(ctx, ar, "x"); err == nil {
			t.Fatal("a code exchange presenting a refresh token was accepted")
		}
		want("exchange with a refresh token", 0, 0, 0)
		_, rt, _, err := s.CreateAccessAndRefreshTokens(ctx, ar, "")
		if err != nil {
			t.Fatal(err)
		}
		want("exchange", 2, 0, 0)
		if _, _, _, err := s.CreateAccessAndRefreshTokens(ctx, ar, ""); err == nil {
			t.Fatal("code exchanged twice")
		}
		if _, _, err := s.CreateAccessToken(ctx, ar); err == nil {
			t.Fatal("code exchanged twice (access token only)")
		}
		want("second exchange", 2, 0, 0)

		rr, err := s.TokenRequestByRefreshToken(ctx, rt)
		if err != nil {
			t.Fatal(err)
		}
		_, rt2, _, err := s.CreateAccessAndRefreshTokens(ctx, rr, rt)
		if err != nil {
			t.Fatal(err)
		}
		want("rotation", 4, 1, 0)
		rr2, err := s.TokenRequestByRefreshToken(ctx, rt2)
		if err != nil {
			t.Fatal(err)
		}
		now = now.Add(s.cfg.RefreshTokenTTL + time.Second)
		if _, _, _, err := s.CreateAccessAndRefreshTokens(ctx, rr2, rt2); err == nil {
			t.Fatal("expired refresh token rotated")
		}
		want("expired rotation", 4, 1, 4) // refused as a spent one is: the family is revoked
		now = now.Add(-s.cfg.RefreshTokenTTL - time.Second)
		if _, _, _, err := s.CreateAccessAndRefreshTokens(ctx, rr, rt); err == nil {
			t.Fatal("refresh token rotated twice")
		}
		want("second rotation", 4, 1, 4)

		// Another grant's family is untouched.
		ar2 := completedRequest(t, s, "code-t")
		if _, _, err := s.CreateAccessToken(ctx, ar2); err != nil {
			t.Fatal(err)
		}
		want("access token only", 5, 1, 4)
	})
}
