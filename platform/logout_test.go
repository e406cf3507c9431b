package platform_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/egate-bank/egate/authsvc"
	"github.com/egate-bank/egate/authsvc/oidcop"
	"github.com/egate-bank/egate/authsvc/passport"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/platform"
)

// mall is a passport with three platforms registered with back-channel
// logout URIs, and a browser.
type mall struct {
	t                      *testing.T
	key                    *ecdsa.PrivateKey
	pass, ebank, mall, msg *httptest.Server
	c                      *http.Client
}

func newMall(t *testing.T) *mall {
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	m := &mall{t: t, key: key}
	pass, eh, mh, xh := &lateHandler{}, &lateHandler{}, &lateHandler{}, &lateHandler{}
	m.pass, m.ebank, m.mall, m.msg = httptest.NewServer(pass), httptest.NewServer(eh), httptest.NewServer(mh), httptest.NewServer(xh)
	for _, s := range []*httptest.Server{m.pass, m.ebank, m.mall, m.msg} {
		t.Cleanup(s.Close)
	}
	client := func(id string, ts *httptest.Server) oidcop.ClientConfig {
		return oidcop.ClientConfig{ID: id, Secret: id + "-secret-0123456789", RedirectURIs: []string{ts.URL + "/callback"},
			PostLogoutRedirectURIs: []string{ts.URL + "/"}, BackchannelLogoutURI: ts.URL + "/backchannel-logout", MinLevel: 1}
	}
	srv, err := authsvc.New(ctx, authsvc.Config{
		Issuer: m.pass.URL, AllowInsecure: true,
		Passport: passport.Config{Argon2: passport.Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}, AllowWeakArgon2: true},
		OIDC:     oidcop.Config{Clients: []oidcop.ClientConfig{client("ebank", m.ebank), client("mall", m.mall), client("messenger", m.msg)}},
	}, authsvc.Deps{DB: storetest.SQLite(t), Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	pass.h = srv
	if _, err := srv.Passport().Register(ctx, passport.NewCustomer{LoginName: "alice", Mobile: "13812345678", ReservedMessage: "red lantern 88", Password: password}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		h  *lateHandler
		n  string
		ts *httptest.Server
	}{{eh, "ebank", m.ebank}, {mh, "mall", m.mall}, {xh, "messenger", m.msg}} {
		s, err := platform.New(ctx, platform.Config{Name: p.n, PublicURL: p.ts.URL, Issuer: m.pass.URL, ClientID: p.n, ClientSecret: p.n + "-secret-0123456789",
			CookieKey: "0123456789abcdef0123456789abcdef-" + p.n, Level: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		p.h.h = s
	}
	jar, _ := cookiejar.New(nil)
	m.c = &http.Client{Jar: jar}
	return m
}

func (m *mall) get(u string) string {
	m.t.Helper()
	r, err := m.c.Get(u)
	if err != nil {
		m.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

func (m *mall) post(u string, f url.Values) string {
	m.t.Helper()
	r, err := m.c.PostForm(u, f)
	if err != nil {
		m.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

func (m *mall) status(base string) int {
	m.t.Helper()
	r, err := m.c.Get(base + "/session")
	if err != nil {
		m.t.Fatal(err)
	}
	r.Body.Close()
	return r.StatusCode
}

// loginAll logs in at ebank with the password and at mall and messenger by
// single sign-on, and returns alice's passport id.
func (m *mall) loginAll() string {
	m.t.Helper()
	body := m.get(m.ebank.URL + "/login")
	id := regexp.MustCompile(`name="id" value="([^"]+)"`).FindStringSubmatch(body)
	if id == nil {
		m.t.Fatalf("no login page:\n%s", body)
	}
	m.post(m.pass.URL+"/login/name", url.Values{"id": {id[1]}, "login_name": {"alice"}})
	m.post(m.pass.URL+"/login/password", url.Values{"id": {id[1]}, "password": {password}})
	for _, base := range []string{m.mall.URL, m.msg.URL} {
		if body := m.get(base + "/login"); !strings.Contains(body, `id="who"`) {
			m.t.Fatalf("no SSO at %s:\n%s", base, body)
		}
	}
	for _, base := range []string{m.ebank.URL, m.mall.URL, m.msg.URL} {
		if st := m.status(base); st != 200 {
			m.t.Fatalf("%s: not logged in (%d)", base, st)
		}
	}
	r, _ := m.c.Get(m.ebank.URL + "/session")
	var s platform.Session
	json.NewDecoder(r.Body).Decode(&s)
	r.Body.Close()
	return s.Subject
}

// Logging out at one platform ends the customer's sessions at the others
// (back-channel logout): the mall no longer says "Logged in as alice".
func TestLogoutAtOnePlatformEndsTheOthers(t *testing.T) {
	m := newMall(t)
	m.loginAll()
	body := m.post(m.ebank.URL+"/logout", nil)
	if strings.Contains(body, `id="who"`) {
		t.Fatalf("still logged in at ebank after logout:\n%s", body)
	}
	for _, base := range []string{m.ebank.URL, m.mall.URL, m.msg.URL} {
		if st := m.status(base); st != http.StatusUnauthorized {
			t.Errorf("%s still has a session after logout at ebank (%d)", base, st)
		}
	}
	if body := m.get(m.mall.URL + "/"); strings.Contains(body, `id="who"`) {
		t.Fatalf("mall still says logged in:\n%s", body)
	}
	// A new login works again (sessions made after the logout count).
	m.loginAll()
}

// RP-initiated logout without an id_token_hint: the passport asks, and
// after the customer confirms every platform is logged out.
func TestLogoutWithoutHintAsksThenEndsEverything(t *testing.T) {
	m := newMall(t)
	m.loginAll()
	body := m.get(m.pass.URL + "/end_session?" + url.Values{"client_id": {"mall"}, "post_logout_redirect_uri": {m.mall.URL + "/"}}.Encode())
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	next := regexp.MustCompile(`name="next" value="([^"]+)"`).FindStringSubmatch(body)
	sig := regexp.MustCompile(`name="next_sig" value="([^"]+)"`).FindStringSubmatch(body)
	if csrf == nil || next == nil || sig == nil {
		t.Fatalf("no confirmation page:\n%s", body)
	}
	// Asking changed nothing.
	if st := m.status(m.mall.URL); st != 200 {
		t.Fatalf("the question logged out (%d)", st)
	}
	r, err := m.c.PostForm(m.pass.URL+"/logout", url.Values{"csrf": {csrf[1]}, "next": {next[1]}, "next_sig": {sig[1]}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.Request.URL.String() != m.mall.URL+"/" {
		t.Fatalf("not back at the mall: %s", r.Request.URL)
	}
	for _, base := range []string{m.ebank.URL, m.mall.URL, m.msg.URL} {
		if st := m.status(base); st != http.StatusUnauthorized {
			t.Errorf("%s still has a session (%d)", base, st)
		}
	}
}

// The platform refuses logout tokens that are not the passport's, not for
// it, stale or malformed, and its sessions stay.
func TestBackchannelLogoutRefusals(t *testing.T) {
	m := newMall(t)
	sub := m.loginAll()
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	good := func() map[string]any {
		return map[string]any{"iss": m.pass.URL, "aud": []string{"mall"}, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": "j1", "sub": sub,
			"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}}
	}
	sign := func(k *ecdsa.PrivateKey, claims map[string]any) string {
		sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k, KeyID: authsvc.DefaultSigningKey}}, (&jose.SignerOptions{}).WithType("logout+jwt"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(claims)
		jws, _ := sg.Sign(b)
		s, _ := jws.CompactSerialize()
		return s
	}
	with := func(f func(c map[string]any)) string { c := good(); f(c); return sign(m.key, c) }
	for _, tc := range []struct{ name, tok string }{
		{"other key", sign(other, good())},
		{"other audience", with(func(c map[string]any) { c["aud"] = []string{"ebank"} })},
		{"other issuer", with(func(c map[string]any) { c["iss"] = "https://evil.example" })},
		{"expired", with(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })},
		{"no event", with(func(c map[string]any) { delete(c, "events") })},
		{"nonce", with(func(c map[string]any) { c["nonce"] = "n" })},
		{"no subject", with(func(c map[string]any) { delete(c, "sub") })},
		{"garbage", "abc"},
		{"empty", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := http.PostForm(m.mall.URL+"/backchannel-logout", url.Values{"logout_token": {tc.tok}})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "invalid_request") {
				t.Fatalf("got %d %s", r.StatusCode, b)
			}
			if st := m.status(m.mall.URL); st != 200 {
				t.Fatalf("a refused logout token ended the session (%d)", st)
			}
		})
	}
	// The passport's own token, for the mall, does end it.
	r, err := http.PostForm(m.mall.URL+"/backchannel-logout", url.Values{"logout_token": {sign(m.key, good())}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 200 || m.status(m.mall.URL) != http.StatusUnauthorized || m.status(m.ebank.URL) != 200 {
		t.Fatalf("good token: %d, mall %d, ebank %d", r.StatusCode, m.status(m.mall.URL), m.status(m.ebank.URL))
	}
}
