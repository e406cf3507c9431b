package authsvc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/oidcop"
	"github.com/egate-bank/egate/authsvc/passport"
	"github.com/egate-bank/egate/internal/store"
)

// testFactor is a level-3 tool whose right answer is "246810".
type testFactor struct {
	mu       sync.Mutex
	enrolled map[string]bool
	next     int
	open     map[string]string // challenge -> passport id
	// own > 0 makes it a tool with its own lockout counter
	// (authn.SelfCounting) that locks after own wrong answers.
	own, failures int
}

func (f *testFactor) CountsOwnFailures() bool { return f.own > 0 }

func newTestFactor() *testFactor {
	return &testFactor{enrolled: map[string]bool{}, open: map[string]string{}}
}
func (f *testFactor) Name() string       { return "token" }
func (f *testFactor) Level() authn.Level { return 3 }
func (f *testFactor) Enrolled(_ context.Context, pid string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.enrolled[pid], nil
}
func (f *testFactor) Begin(_ context.Context, req authn.BeginRequest) (authn.Challenge, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	id := "ch" + string(rune('a'+f.next))
	f.open[id] = req.PassportID
	return authn.Challenge{ID: id, Factor: "token", Prompt: "Enter the code shown on your token"}, nil
}
func (f *testFactor) Verify(_ context.Context, req authn.VerifyRequest) (authn.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pid, ok := f.open[req.ChallengeID]
	if !ok || pid != req.PassportID {
		return authn.Result{}, authn.ErrUnknown
	}
	if f.own > 0 && f.failures >= f.own {
		return authn.Result{}, &authn.LockedError{Factor: "token"}
	}
	if string(req.Response) != "246810" {
		if f.own > 0 {
			f.failures++
			return authn.Result{}, &authn.WrongAnswerError{Tool: "token", Left: f.own - f.failures}
		}
		return authn.Result{}, authn.ErrWrongAnswer
	}
	f.failures = 0
	delete(f.open, req.ChallengeID)
	return authn.Result{Factor: "token", Level: 3, AMR: "otp"}, nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var cheapArgon = passport.Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

const (
	ebankRedirect     = "https://ebank.example/cb"
	mallRedirect      = "https://mall.example/cb"
	messengerRedirect = "https://messenger.example/cb"
	ebankSecret       = "ebank-secret-0123456789"
	messengerSecret   = "messenger-secret-0123456"
	testPassword      = "Blue-Kite-47"
)

type env struct {
	t       testing.TB
	srv     *Server
	ts      *httptest.Server
	pub     *ecdsa.PublicKey
	clk     *clock
	factor  *testFactor
	captcha sync.Map // id -> answer
	pid     string
}

func testConfig(issuer string) Config {
	return Config{
		Issuer: issuer, AllowInsecure: true,
		Passport: passport.Config{Argon2: cheapArgon, AllowWeakArgon2: true},
		OIDC: oidcop.Config{Clients: []oidcop.ClientConfig{
			{ID: "ebank", Secret: ebankSecret, RedirectURIs: []string{ebankRedirect}, PostLogoutRedirectURIs: []string{"https://ebank.example/bye"}, MinLevel: 1},
			{ID: "mall", Public: true, RedirectURIs: []string{mallRedirect}, MinLevel: 1},
			{ID: "messenger", Secret: messengerSecret, RedirectURIs: []string{messengerRedirect}, MinLevel: 2},
		}},
	}
}

func newEnv(t testing.TB, db *store.DB, mutate ...func(*Config)) *env {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return newEnvSigner(t, db, key, mutate...)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// newEnvSigner runs the server with signer (an in-memory key or the HSM's).
func newEnvSigner(t testing.TB, db *store.DB, signer crypto.Signer, mutate ...func(*Config)) *env {
	t.Helper()
	return newEnvFactors(t, db, signer, nil, mutate...)
}

// newEnvFactors runs the server with the tools mk returns (it sees the
// env's clock); nil means the test factor.
func newEnvFactors(t testing.TB, db *store.DB, signer crypto.Signer, mk func(e *env) []authn.Factor, mutate ...func(*Config)) *env {
	t.Helper()
	e := &env{t: t, clk: &clock{t: time.Now()}, factor: newTestFactor(), pub: signer.Public().(*ecdsa.PublicKey)}
	fs := []authn.Factor{e.factor}
	if mk != nil {
		fs = mk(e)
	}
	var err error
	var h http.Handler
	e.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(e.ts.Close)
	cfg := testConfig(e.ts.URL)
	for _, m := range mutate {
		m(&cfg)
	}
	e.srv, err = New(context.Background(), cfg, Deps{
		DB: db, Signer: signer, Factors: fs, Now: e.clk.Now,
		CaptchaHook: func(id, answer string) { e.captcha.Store(id, answer) },
	})
	if err != nil {
		t.Fatal(err)
	}
	h = e.srv
	c, err := e.srv.Passport().Register(context.Background(), passport.NewCustomer{LoginName: "alice", Mobile: "13812345678", ReservedMessage: "red lantern 88", Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	e.pid = c.PassportID
	return e
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type resp struct {
	status int
	loc    string
	body   string
}

func (b *browser) do(req *http.Request) resp {
	b.e.t.Helper()
	r, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer r.Body.Close()
	body, _ := io.ReadAll(r.Body)
	return resp{status: r.StatusCode, loc: r.Header.Get("Location"), body: string(body)}
}

func (b *browser) get(u string) resp {
	req, _ := http.NewRequest("GET", b.abs(u), nil)
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) resp {
	req, _ := http.NewRequest("POST", b.abs(u), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func (b *browser) abs(u string) string {
	if strings.HasPrefix(u, "/") {
		return b.e.ts.URL + u
	}
	return u
}

// follow follows redirects inside the passport and stops at a platform.
func (b *browser) follow(r resp) resp {
	for i := 0; i < 10 && r.loc != ""; i++ {
		u := r.loc
		if strings.HasPrefix(u, "/") {
			u = b.e.ts.URL + u
		}
		if !strings.HasPrefix(u, b.e.ts.URL) {
			return r
		}
		r = b.get(u)
	}
	return r
}

type authz struct {
	client, redirect, verifier, state, nonce string
	extra                                    url.Values
}

func newAuthz(client, redirect string) *authz {
	return &authz{client: client, redirect: redirect, verifier: oidcop.RandomToken(), state: oidcop.RandomToken()[:12], nonce: oidcop.RandomToken()[:12], extra: url.Values{}}
}

func (a *authz) url() string {
	sum := sha256.Sum256([]byte(a.verifier))
	q := url.Values{
		"client_id": {a.client}, "redirect_uri": {a.redirect}, "response_type": {"code"}, "scope": {"openid profile phone offline_access"},
		"state": {a.state}, "nonce": {a.nonce}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	for k, v := range a.extra {
		q[k] = v
	}
	return "/authorize?" + q.Encode()
}

var idRE = regexp.MustCompile(`name="id" value="([^"]+)"`)

func formID(t testing.TB, body string) string {
	t.Helper()
	m := idRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no auth request id in page:\n%s", body)
	}
	return m[1]
}

var codeRE = regexp.MustCompile(`data-code="([^"]+)"`)

func errorCode(body string) string {
	m := codeRE.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

// codeFrom checks the redirect to the platform and returns the code.
func (a *authz) codeFrom(t testing.TB, r resp) string {
	t.Helper()
	if !strings.HasPrefix(r.loc, a.redirect+"?") {
		t.Fatalf("not redirected to %s: status %d loc %q body %s", a.redirect, r.status, r.loc, r.body)
	}
	u, _ := url.Parse(r.loc)
	if u.Query().Get("state") != a.state {
		t.Fatalf("state %q, want %q", u.Query().Get("state"), a.state)
	}
	code := u.Query().Get("code")
	if code == "" {
		t.Fatalf("no code: %s", r.loc)
	}
	return code
}

// passwordLogin walks name and password and returns the last response.
func (b *browser) passwordLogin(a *authz, name, pw string) resp {
	b.e.t.Helper()
	r := b.follow(b.get(a.url()))
	if r.status != 200 || !strings.Contains(r.body, `name="login_name"`) {
		b.e.t.Fatalf("no login page: %d %s", r.status, r.body)
	}
	id := formID(b.e.t, r.body)
	r = b.post("/login/name", url.Values{"id": {id}, "login_name": {name}})
	if r.status != 200 || !strings.Contains(r.body, `id="reserved"`) {
		b.e.t.Fatalf("no password page: %d %s", r.status, r.body)
	}
	return b.submitPassword(id, r.body, pw)
}

var captchaRE = regexp.MustCompile(`name="captcha_id" value="([^"]+)"`)

func (b *browser) submitPassword(id, page, pw string) resp {
	form := url.Values{"id": {id}, "password": {pw}}
	if m := captchaRE.FindStringSubmatch(page); m != nil {
		ans, _ := b.e.captcha.Load(m[1])
		form.Set("captcha_id", m[1])
		form.Set("captcha_answer", ans.(string))
	}
	return b.follow(b.post("/login/password", form))
}

type tokens struct {
	status  int
	body    map[string]any
	access  string
	refresh string
	id      string
}

func (e *env) token(form url.Values, user, pass string) tokens {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.ts.URL+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Body.Close()
	var out tokens
	out.status = r.StatusCode
	json.NewDecoder(r.Body).Decode(&out.body)
	out.access, _ = out.body["access_token"].(string)
	out.refresh, _ = out.body["refresh_token"].(string)
	out.id, _ = out.body["id_token"].(string)
	return out
}

func (e *env) exchange(a *authz, code string) tokens {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {a.redirect}, "code_verifier": {a.verifier}}
	switch a.client {
	case "ebank":
		return e.token(form, "ebank", ebankSecret)
	case "messenger":
		return e.token(form, "messenger", messengerSecret)
	}
	form.Set("client_id", a.client)
	return e.token(form, "", "")
}

// claims verifies a JWT with the test key (independently of op) and
// returns its claims.
func (e *env) claims(tok string) (map[string]any, error) {
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, err
	}
	payload, err := jws.Verify(e.pub)
	if err != nil {
		return nil, err
	}
	if kid := jws.Signatures[0].Header.KeyID; kid != DefaultSigningKey {
		return nil, errors.New("kid " + kid)
	}
	var m map[string]any
	return m, json.Unmarshal(payload, &m)
}
