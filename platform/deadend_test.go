package platform_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/egate-bank/egate/authsvc"
	"github.com/egate-bank/egate/authsvc/oidcop"
	"github.com/egate-bank/egate/authsvc/passport"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/platform"
)

// TestDeadEndsAndAlertInbox walks a customer through the passport's dead
// ends with real platforms: a password locked on ebank and a mall that
// needs a tool the customer lacks each end on a passport page whose link
// leads back to the platform, which says what happened and links home;
// after the service desk's unlock the messenger's inbox lists the failed
// sign-in and the lockout beside the login.
func TestDeadEndsAndAlertInbox(t *testing.T) {
	ctx := context.Background()
	db := storetest.SQLite(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pass := &lateHandler{}
	passTS := httptest.NewServer(pass)
	defer passTS.Close()
	hs := map[string]*lateHandler{"ebank": {}, "mall": {}, "messenger": {}}
	tss := map[string]*httptest.Server{}
	for n, h := range hs {
		tss[n] = httptest.NewServer(h)
		defer tss[n].Close()
	}
	var answers sync.Map
	var clients []oidcop.ClientConfig
	for _, n := range []string{"ebank", "mall", "messenger"} {
		clients = append(clients, oidcop.ClientConfig{ID: n, Secret: n + "-secret-0123456789", RedirectURIs: []string{tss[n].URL + "/callback"}, MinLevel: 1})
	}
	srv, err := authsvc.New(ctx, authsvc.Config{
		Issuer: passTS.URL, AllowInsecure: true,
		Passport: passport.Config{Argon2: passport.Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}, AllowWeakArgon2: true},
		OIDC:     oidcop.Config{Clients: clients},
	}, authsvc.Deps{DB: db, Signer: key, CaptchaHook: func(id, a string) { answers.Store(id, a) }})
	if err != nil {
		t.Fatal(err)
	}
	pass.h = srv
	alice, err := srv.Passport().Register(ctx, passport.NewCustomer{LoginName: "alice", Mobile: "13812345678", ReservedMessage: "red lantern 88", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	for n, level := range map[string]int{"ebank": 1, "mall": 3, "messenger": 1} {
		s, err := platform.New(ctx, platform.Config{
			Name: n, PublicURL: tss[n].URL, Issuer: passTS.URL, ClientID: n, ClientSecret: n + "-secret-0123456789",
			CookieKey: "0123456789abcdef0123456789abcdef-" + n, Level: level,
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		hs[n].h = s
	}

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	do := func(r *http.Response, err error) (string, *http.Response) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return string(b), r
	}
	idRE := regexp.MustCompile(`name="id" value="([^"]+)"`)
	captchaRE := regexp.MustCompile(`name="captcha_id" value="([^"]+)"`)
	backRE := regexp.MustCompile(`<a id="back" href="([^"]+)">Back to ([^<]+)</a>`)
	submit := func(id, page, pw string) (string, *http.Response) {
		f := url.Values{"id": {id}, "password": {pw}}
		if m := captchaRE.FindStringSubmatch(page); m != nil {
			a, _ := answers.Load(m[1])
			f.Set("captcha_id", m[1])
			f.Set("captcha_answer", a.(string))
		}
		return do(c.PostForm(passTS.URL+"/login/password", f))
	}
	signIn := func(site, name string) (string, string) {
		t.Helper()
		body, _ := do(c.Get(tss[site].URL + "/login"))
		m := idRE.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no passport login page for %s:\n%s", site, body)
		}
		body, _ = do(c.PostForm(passTS.URL+"/login/name", url.Values{"id": {m[1]}, "login_name": {name}}))
		return m[1], body
	}
	// backHome follows a dead end's link back to site and checks the
	// platform's page.
	backHome := func(site, page string) {
		t.Helper()
		m := backRE.FindStringSubmatch(page)
		if m == nil || m[2] != site {
			t.Fatalf("no way back to %s:\n%s", site, page)
		}
		body, resp := do(c.Get(html.UnescapeString(m[1])))
		if resp.Request.URL.Host != strings.TrimPrefix(tss[site].URL, "http://") || resp.StatusCode != http.StatusForbidden ||
			!strings.Contains(body, `data-error="access_denied"`) || !strings.Contains(body, `<a id="home" href="/">`) {
			t.Fatalf("back on %s: %s %d\n%s", site, resp.Request.URL, resp.StatusCode, body)
		}
		if body, _ := do(c.Get(tss[site].URL + "/")); !strings.Contains(body, `id="login"`) {
			t.Fatalf("%s's home after the dead end:\n%s", site, body)
		}
	}

	// ebank: six wrong passwords lock; the locked page leads back.
	id, page := signIn("ebank", "alice")
	for range 6 {
		page, _ = submit(id, page, "Wrong-Pass-1")
	}
	if !strings.Contains(page, `id="locked"`) {
		t.Fatalf("not locked:\n%s", page)
	}
	backHome("ebank", page)

	// The service desk unlocks; the messenger signs in with the password
	// (no captcha any more) and its inbox lists what happened.
	if err := srv.Passport().Unlock(ctx, alice.PassportID); err != nil {
		t.Fatal(err)
	}
	id, page = signIn("messenger", "alice")
	if captchaRE.MatchString(page) {
		t.Fatalf("captcha after the unlock:\n%s", page)
	}
	if body, _ := submit(id, page, password); !strings.Contains(body, `id="who"`) {
		t.Fatalf("not signed in to the messenger:\n%s", body)
	}
	inbox, _ := do(c.Get(tss["messenger"].URL + "/inbox?lang=en"))
	for _, want := range []string{
		`data-kind="login_failed"><b>Failed sign-in</b> to <b>ebank</b>`, "wrong password",
		`data-kind="login_locked"><b>Your password is locked</b>`, "it unlocks at",
		`data-kind="login">Login to <b>messenger</b>`,
	} {
		if !strings.Contains(inbox, want) {
			t.Fatalf("inbox lacks %q:\n%s", want, inbox)
		}
	}

	// mall needs level 3 and alice has no tool of it: the passport says so
	// and leads back to the mall.
	body, _ := do(c.Get(tss["mall"].URL + "/login"))
	if !strings.Contains(body, `data-code="no_factor"`) {
		t.Fatalf("mall at level 3:\n%s", body)
	}
	backHome("mall", body)
}
