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
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/internal/testenv"
)

// benchServer is a server called in-process (no sockets) at the default
// (OWASP) argon2id parameters.
func benchServer(b *testing.B, signer crypto.Signer) (*Server, string) {
	b.Helper()
	return benchServerOn(b, storetest.SQLite(b), signer)
}

// benchServerOn is benchServer on db.
func benchServerOn(b *testing.B, db *store.DB, signer crypto.Signer) (*Server, string) {
	b.Helper()
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

// engines are the databases the token benchmarks run on.
var engines = []struct {
	name string
	open func(testing.TB) *store.DB
}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}}

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
// The codes are made before the timer starts.
//
// Besides ns/op each reports cpu-ns/op, the process's CPU time per op, and
// exchanges/cpu-s (1e9 / cpu-ns/op): exchanges per second per core, what
// issue 16 asks for (>= 1,000 with the HSM key), less disturbed by a loaded
// machine than exchanges/s, the wall-clock rate of one client. See
// BenchmarkRefresh for the figures.
func BenchmarkTokenExchange(b *testing.B) {
	for _, sg := range signers(b) {
		for _, eng := range engines {
			b.Run(sg.name+"/"+eng.name, func(b *testing.B) {
				s, pid := benchServerOn(b, eng.open(b), sg.s(b))
				v := "verifier-0123456789-0123456789-0123456789-0123"
				reqs := make([]*http.Request, b.N)
				for i := range reqs {
					reqs[i] = tokenRequest(url.Values{"grant_type": {"authorization_code"}, "code": {readyCode(b, s, pid, v)}, "redirect_uri": {ebankRedirect},
						"code_verifier": {v}})
				}
				b.ResetTimer()
				report := perCPU(b, "exchanges")
				for _, req := range reqs {
					rec := httptest.NewRecorder()
					s.ServeHTTP(rec, req)
					if rec.Code != 200 {
						b.Fatalf("status %d: %s", rec.Code, rec.Body)
					}
				}
				report()
			})
		}
	}
}

// BenchmarkRefresh: refresh-token rotations in a chain (each op spends the
// refresh token the last one gave and signs a new ID token and access
// token). Metrics as BenchmarkTokenExchange's.
func BenchmarkRefresh(b *testing.B) {
	for _, sg := range signers(b) {
		for _, eng := range engines {
			b.Run(sg.name+"/"+eng.name, func(b *testing.B) {
				s, pid := benchServerOn(b, eng.open(b), sg.s(b))
				v := "verifier-0123456789-0123456789-0123456789-0123"
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, tokenRequest(url.Values{"grant_type": {"authorization_code"}, "code": {readyCode(b, s, pid, v)}, "redirect_uri": {ebankRedirect}, "code_verifier": {v}}))
				rt := refreshOf(b, rec)
				b.ResetTimer()
				report := perCPU(b, "refreshes")
				for range b.N {
					rec := httptest.NewRecorder()
					s.ServeHTTP(rec, tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}))
					rt = refreshOf(b, rec)
				}
				report()
			})
		}
	}
}

// perCPU starts counting the process's CPU time; the func it returns
// reports what/s (wall clock), cpu-ns/op and what/cpu-s.
func perCPU(b *testing.B, what string) func() {
	start := testenv.CPUTime()
	return func() {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), what+"/s")
		if cpu := testenv.CPUTime() - start; start > 0 && cpu > 0 && b.N > 0 {
			b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(b.N)*1e9/float64(cpu), what+"/cpu-s")
		}
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
