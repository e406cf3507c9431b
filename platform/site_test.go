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

	"github.com/egate-bank/egate/authsvc"
	"github.com/egate-bank/egate/authsvc/oidcop"
	"github.com/egate-bank/egate/authsvc/passport"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/platform"
)

type lateHandler struct{ h http.Handler }

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { l.h.ServeHTTP(w, r) }

const password = "Blue-Kite-47"

// Two platforms, two real relying parties of one passport: a login on ebank
// gives mall a session with no second password (single sign-on), each
// platform's session says who and at what level, and a bad session cookie
// is no session.
func TestSingleSignOnAcrossPlatforms(t *testing.T) {
	ctx := context.Background()
	db := storetest.SQLite(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	pass := &lateHandler{}
	passTS := httptest.NewServer(pass)
	defer passTS.Close()
	ebankH, mallH, msgH := &lateHandler{}, &lateHandler{}, &lateHandler{}
	ebankTS, mallTS, msgTS := httptest.NewServer(ebankH), httptest.NewServer(mallH), httptest.NewServer(msgH)
	defer ebankTS.Close()
	defer mallTS.Close()
	defer msgTS.Close()

	srv, err := authsvc.New(ctx, authsvc.Config{
		Issuer: passTS.URL, AllowInsecure: true,
		Passport: passport.Config{Argon2: passport.Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}, AllowWeakArgon2: true},
		OIDC: oidcop.Config{Clients: []oidcop.ClientConfig{
			{ID: "ebank", Secret: "ebank-secret-0123456789", RedirectURIs: []string{ebankTS.URL + "/callback"}, PostLogoutRedirectURIs: []string{ebankTS.URL + "/"}, MinLevel: 1},
			{ID: "mall", Secret: "mall-secret-0123456789", RedirectURIs: []string{mallTS.URL + "/callback"}, MinLevel: 1},
			{ID: "messenger", Secret: "messenger-secret-0123456789", RedirectURIs: []string{msgTS.URL + "/callback"}, MinLevel: 1},
		}},
	}, authsvc.Deps{DB: db, Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	pass.h = srv
	if _, err := srv.Passport().Register(ctx, passport.NewCustomer{LoginName: "alice", Mobile: "13812345678", ReservedMessage: "red lantern 88", Password: password}); err != nil {
		t.Fatal(err)
	}
	site := func(name, secret, public string) *platform.Site {
		s, err := platform.New(ctx, platform.Config{
			Name: name, PublicURL: public, Issuer: passTS.URL, ClientID: name, ClientSecret: secret,
			CookieKey: "0123456789abcdef0123456789abcdef-" + name, Level: 1,
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ebankH.h = site("ebank", "ebank-secret-0123456789", ebankTS.URL)
	mallH.h = site("mall", "mall-secret-0123456789", mallTS.URL)
	msgH.h = site("messenger", "messenger-secret-0123456789", msgTS.URL)

	jar, _ := cookiejar.New(nil)
	var visited []string
	c := &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, via []*http.Request) error {
		visited = append(visited, r.URL.Path)
		return nil
	}}
	get := func(u string) (string, *http.Response) {
		t.Helper()
		r, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return string(b), r
	}
	post := func(u string, f url.Values) (string, *http.Response) {
		t.Helper()
		r, err := c.PostForm(u, f)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return string(b), r
	}
	session := func(base string) (int, platform.Session) {
		t.Helper()
		r, err := c.Get(base + "/session")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		var s platform.Session
		json.NewDecoder(r.Body).Decode(&s)
		return r.StatusCode, s
	}

	if code, _ := session(ebankTS.URL); code != http.StatusUnauthorized {
		t.Fatalf("ebank session before login: %d", code)
	}
	// Log in on ebank: name, the reserved message, password.
	body, _ := get(ebankTS.URL + "/login")
	m := regexp.MustCompile(`name="id" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, `name="login_name"`) {
		t.Fatalf("no passport login page:\n%s", body)
	}
	body, _ = post(passTS.URL+"/login/name", url.Values{"id": {m[1]}, "login_name": {"alice"}})
	if !strings.Contains(body, "red lantern 88") {
		t.Fatalf("the reserved message is not shown before the password:\n%s", body)
	}
	body, resp := post(passTS.URL+"/login/password", url.Values{"id": {m[1]}, "password": {password}})
	if resp.Request.URL.Host != strings.TrimPrefix(ebankTS.URL, "http://") || !strings.Contains(body, `id="who"`) {
		t.Fatalf("not back on ebank logged in: %s\n%s", resp.Request.URL, body)
	}
	code, es := session(ebankTS.URL)
	if code != 200 || es.Level != 1 || es.Subject == "" {
		t.Fatalf("ebank session: %d %+v", code, es)
	}

	// mall: single sign-on, no login page on the way.
	visited = nil
	body, resp = get(mallTS.URL + "/login")
	for _, p := range visited {
		if strings.HasPrefix(p, "/login/") {
			t.Fatalf("mall login went through passport page %s: %v", p, visited)
		}
	}
	if strings.Contains(body, `name="password"`) || !strings.Contains(body, `id="who"`) {
		t.Fatalf("mall did not get a session by single sign-on (%s):\n%s", resp.Request.URL, body)
	}
	// The home page speaks Chinese by default and English on request; the
	// choice sticks (the egate_lang cookie).
	for _, c := range []struct{ path, want, not string }{
		{"/", `已登录：<b id="name">alice</b>`, "Logged in as"},
		{"/?lang=en", `Logged in as <b id="name">alice</b>`, "已登录"},
		{"/", `<a id="lang" href="/?lang=zh"`, "已登录"},
		{"/?lang=zh", `认证级别 <b id="level">1</b>`, "Logged in as"},
	} {
		if body, _ := get(mallTS.URL + c.path); !strings.Contains(body, c.want) || strings.Contains(body, c.not) {
			t.Fatalf("mall %s lacks %q or has %q:\n%s", c.path, c.want, c.not, body)
		}
	}
	code, ms := session(mallTS.URL)
	if code != 200 || ms.Subject != es.Subject {
		t.Fatalf("mall session %d %+v, want subject %s", code, ms, es.Subject)
	}

	// The messenger's inbox shows the login alerts of both logins, read
	// from the passport with the messenger's access token.
	body, _ = get(msgTS.URL + "/login")
	if !strings.Contains(body, `id="who"`) {
		t.Fatalf("messenger did not get a session by single sign-on:\n%s", body)
	}
	body, _ = get(msgTS.URL + "/inbox?lang=en")
	if !strings.Contains(body, "Login to <b>ebank</b>") || !strings.Contains(body, "Login to <b>mall</b>") || !strings.Contains(body, "single sign-on") {
		t.Fatalf("inbox lacks the login alerts:\n%s", body)
	}
	if r, err := http.Get(passTS.URL + "/api/v1/alerts"); err != nil || r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("alerts without a token: %v %v", err, r)
	}
	if _, err := c.Get(ebankTS.URL + "/inbox"); err != nil {
		t.Fatal(err)
	}

	// A forged cookie is no session.
	u, _ := url.Parse(mallTS.URL)
	jar.SetCookies(u, []*http.Cookie{{Name: platform.SessionCookie("mall"), Value: "forged", Path: "/"}})
	if code, _ := session(mallTS.URL); code != http.StatusUnauthorized {
		t.Fatalf("forged cookie accepted: %d", code)
	}
}

func TestConfigValidate(t *testing.T) {
	good := platform.Config{Name: "ebank", PublicURL: "http://127.0.0.1:8081", Issuer: "http://127.0.0.1:8080", ClientID: "ebank", CookieKey: strings.Repeat("k", 32), Level: 1}
	tests := []struct {
		name string
		mod  func(*platform.Config)
		ok   bool
	}{
		{"good", func(*platform.Config) {}, true},
		{"unknown platform", func(c *platform.Config) { c.Name = "casino" }, false},
		{"relative issuer", func(c *platform.Config) { c.Issuer = "/passport" }, false},
		{"short cookie key", func(c *platform.Config) { c.CookieKey = "short" }, false},
		{"level 0", func(c *platform.Config) { c.Level = 0 }, false},
		{"no client", func(c *platform.Config) { c.ClientID = "" }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.mod(&c)
			if err := c.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
