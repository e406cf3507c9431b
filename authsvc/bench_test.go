package authsvc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/crypto/argon2"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/oidcop"
	"github.com/egate-bank/egate/authsvc/passport"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// benchServer is a server called in-process (no sockets) at the default
// (OWASP) argon2id parameters.
func benchServer(b *testing.B, signer crypto.Signer) (*Server, string) {
	b.Helper()
	db := storetest.SQLite(b)
	cfg := testConfig("http://passport.test")
	cfg.Passport = passport.Config{} // defaults: m=19 MiB, t=2, p=1
	s, err := New(context.Background(), cfg, Deps{DB: db, Signer: signer, Factors: []authn.Factor{}})
	if err != nil {
		b.Fatal(err)
	}
	c, err := s.Passport().Register(context.Background(), passport.NewCustomer{LoginName: "alice", ReservedMessage: "red lantern", Password: testPassword})
	if err != nil {
		b.Fatal(err)
	}
	return s, c.PassportID
}

func memKey(b *testing.B) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	return k
}

// newAuthRequest makes an auth request for ebank through the storage, as
// /authorize would.
func newAuthRequest(b testing.TB, s *Server, verifier string) *oidcop.AuthRequest {
	sum := sha256.Sum256([]byte(verifier))
	ar, err := s.storage.CreateAuthRequest(context.Background(), &oidc.AuthRequest{
		ClientID: "ebank", RedirectURI: ebankRedirect, ResponseType: oidc.ResponseTypeCode, Scopes: []string{"openid", "offline_access"},
		State: "s", Nonce: "n", CodeChallenge: base64.RawURLEncoding.EncodeToString(sum[:]), CodeChallengeMethod: oidc.CodeChallengeMethodS256,
	}, "")
	if err != nil {
		b.Fatal(err)
	}
	return ar.(*oidcop.AuthRequest)
}

// BenchmarkPasswordLogin: raw is argon2id alone at the configured
// parameters; egate is the password step through the HTTP handler (captcha
// check, counters, argon2id, session, auth request, alert, audit, redirect).
func BenchmarkPasswordLogin(b *testing.B) {
	p := passport.DefaultArgon2
	b.Run("raw", func(b *testing.B) {
		salt := make([]byte, p.SaltLen)
		rand.Read(salt)
		for b.Loop() {
			argon2.IDKey([]byte(testPassword), salt, p.Iterations, p.MemoryKiB, p.Parallelism, uint32(p.KeyLen))
		}
	})
	b.Run("egate", func(b *testing.B) {
		s, pid := benchServer(b, memKey(b))
		ctx := context.Background()
		for b.Loop() {
			b.StopTimer()
			ar := newAuthRequest(b, s, "v")
			tok := oidcop.RandomToken()
			if err := s.storage.SetFlow(ctx, ar.ID, flow{Browser: sha(tok), Step: "password", SubjectKey: "pid:" + pid, PassportID: pid, Reserved: "red lantern"}); err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest("POST", "/login/password", strings.NewReader(url.Values{"id": {ar.ID}, "password": {testPassword}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(&http.Cookie{Name: flowCookieName(ar.ID), Value: tok})
			rec := httptest.NewRecorder()
			b.StartTimer()
			s.ServeHTTP(rec, req)
			if rec.Code != http.StatusSeeOther {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
}

// signers are the keys the token benchmarks run with.
func signers(b *testing.B) []struct {
	name string
	s    func(*testing.B) crypto.Signer
} {
	return []struct {
		name string
		s    func(*testing.B) crypto.Signer
	}{
		{"memkey", memKey},
		{"softhsm", func(b *testing.B) crypto.Signer { return hsmSigner(b) }},
	}
}

// readyCode completes an auth request and binds a code to it, as the login
// pages and op's callback would.
func readyCode(b *testing.B, s *Server, pid, verifier string) string {
	ctx := context.Background()
	ar := newAuthRequest(b, s, verifier)
	if err := s.storage.Complete(ctx, ar.ID, pid, 1, []string{"pwd"}, time.Now()); err != nil {
		b.Fatal(err)
	}
	code := oidcop.RandomToken()
	if err := s.storage.SaveAuthCode(ctx, ar.ID, code); err != nil {
		b.Fatal(err)
	}
	return code
}

func tokenRequest(form url.Values) *http.Request {
	req := httptest.NewRequest("POST", "/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("ebank", ebankSecret)
	return req
}

// BenchmarkTokenExchange: authorization-code exchanges (client auth, PKCE,
// code spent, ID token + JWT access token + refresh token signed and stored).
func BenchmarkTokenExchange(b *testing.B) {
	for _, sg := range signers(b) {
		b.Run(sg.name, func(b *testing.B) {
			s, pid := benchServer(b, sg.s(b))
			for b.Loop() {
				b.StopTimer()
				code := readyCode(b, s, pid, "verifier-0123456789-0123456789-0123456789-0123")
				req := tokenRequest(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {ebankRedirect},
					"code_verifier": {"verifier-0123456789-0123456789-0123456789-0123"}})
				rec := httptest.NewRecorder()
				b.StartTimer()
				s.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "exchanges/s")
		})
	}
}

// BenchmarkRefresh: refresh-token rotations in a chain.
func BenchmarkRefresh(b *testing.B) {
	for _, sg := range signers(b) {
		b.Run(sg.name, func(b *testing.B) {
			s, pid := benchServer(b, sg.s(b))
			v := "verifier-0123456789-0123456789-0123456789-0123"
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, tokenRequest(url.Values{"grant_type": {"authorization_code"}, "code": {readyCode(b, s, pid, v)}, "redirect_uri": {ebankRedirect}, "code_verifier": {v}}))
			rt := refreshOf(b, rec)
			for b.Loop() {
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}))
				rt = refreshOf(b, rec)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "refreshes/s")
		})
	}
}

func refreshOf(b *testing.B, rec *httptest.ResponseRecorder) string {
	if rec.Code != 200 {
		b.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	i := strings.Index(body, `"refresh_token":"`)
	if i < 0 {
		b.Fatalf("no refresh token: %s", body)
	}
	rest := body[i+len(`"refresh_token":"`):]
	return rest[:strings.IndexByte(rest, '"')]
}
