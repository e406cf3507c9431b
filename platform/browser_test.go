package platform_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/egate-bank/egate/authsvc"
	"github.com/egate-bank/egate/authsvc/oidcop"
	"github.com/egate-bank/egate/authsvc/passport"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/platform"
)

// TestBrowserLoginInBothLanguages: in headless Chromium, the ebank home
// page's language link sets the language for the passport's pages too (one
// cookie on the bank's host), the login goes through the passport's name
// and password pages in that language, and ebank's home answers in it
// (ebank's own pages: platform/ebank/web). Each page is saved as a PNG in EGATE_SHOTS_DIR
// (default the test's temporary directory).
func TestBrowserLoginInBothLanguages(t *testing.T) {
	path := testenv.NeedCommand(t, "chromium", "chromium")
	shots := os.Getenv("EGATE_SHOTS_DIR")
	if shots == "" {
		shots = t.TempDir()
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db := storetest.SQLite(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pass, ebankH := &lateHandler{}, &lateHandler{}
	passTS, ebankTS := httptest.NewServer(pass), httptest.NewServer(ebankH)
	defer passTS.Close()
	defer ebankTS.Close()
	srv, err := authsvc.New(ctx, authsvc.Config{
		Issuer: passTS.URL, AllowInsecure: true,
		Passport: passport.Config{Argon2: passport.Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}, AllowWeakArgon2: true},
		OIDC: oidcop.Config{Clients: []oidcop.ClientConfig{
			{ID: "ebank", Secret: "ebank-secret-0123456789", RedirectURIs: []string{ebankTS.URL + "/callback"}, PostLogoutRedirectURIs: []string{ebankTS.URL + "/"}, MinLevel: 1},
		}},
	}, authsvc.Deps{DB: db, Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	pass.h = srv
	if _, err := srv.Passport().Register(ctx, passport.NewCustomer{LoginName: "alice", Mobile: "13812345678", ReservedMessage: "red lantern 88", Password: password}); err != nil {
		t.Fatal(err)
	}
	site, err := platform.New(ctx, platform.Config{Name: "ebank", PublicURL: ebankTS.URL, Issuer: passTS.URL, ClientID: "ebank",
		ClientSecret: "ebank-secret-0123456789", CookieKey: "0123456789abcdef0123456789abcdef-ebank", Level: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ebankH.h = site
	for _, c := range []struct{ lang, signIn, password, who string }{
		{"zh", "用通行证登录", "请输入密码", "已登录"},
		{"en", "Sign in with your passport", "Enter your password", "Logged in as"},
	} {
		t.Run(c.lang, func(t *testing.T) {
			actx, cancelA := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox,
				chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1000, 700))
			defer cancelA()
			bctx, cancel := chromedp.NewContext(actx)
			defer cancel()
			if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
				t.Fatalf("starting chromium: %v", err)
			}
			bctx, cancelT := context.WithTimeout(bctx, 90*time.Second)
			defer cancelT()
			do := func(step string, acts ...chromedp.Action[chromedp.Void]) {
				t.Helper()
				if err := chromedp.Do(bctx, acts...); err != nil {
					t.Fatalf("%s: %v", step, err)
				}
			}
			h1 := func() string {
				t.Helper()
				s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("h1")))
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			shot := func(name string) {
				t.Helper()
				b, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(shots, "passport-"+c.lang+"-"+name+".png"), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			do("home", chromedp.Navigate(ebankTS.URL+"/?lang="+c.lang), chromedp.WaitVisible(chromedp.ID("login")))
			shot("1-ebank-home")
			do("login", chromedp.Click(chromedp.ID("login")), chromedp.WaitVisible(chromedp.ID("login_name")))
			if got := h1(); got != c.signIn {
				t.Errorf("name page h1 %q, want %q", got, c.signIn)
			}
			shot("2-name")
			do("name", chromedp.SendKeys(chromedp.ID("login_name"), "alice"), chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("reserved")))
			if got := h1(); got != c.password {
				t.Errorf("password page h1 %q, want %q", got, c.password)
			}
			shot("3-password")
			do("password", chromedp.SendKeys(chromedp.ID("password"), password), chromedp.Click(chromedp.ID("signin")), chromedp.WaitVisible(chromedp.ID("who")))
			who, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID("who")))
			if err != nil || !strings.Contains(who, c.who) {
				t.Errorf("home says %q (%v), want %q", who, err, c.who)
			}
			shot("4-ebank-home-logged-in")
		})
	}
	t.Logf("screenshots in %s", shots)
}
