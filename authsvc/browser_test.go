package authsvc

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/egate-bank/egate/authsvc/oidcop"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/internal/testenv"
)

// rpResult is what the test relying party learnt from the callback.
type rpResult struct {
	claims map[string]any
	err    error
}

// testRP is a tiny confidential OIDC client (authorization code + PKCE,
// plain HTTP token exchange) for the browser test.
type testRP struct {
	ts      *httptest.Server
	issuer  string
	mu      sync.Mutex
	pending map[string][2]string // state -> verifier, nonce
	results chan rpResult
	verify  func(string) (map[string]any, error)
}

func newTestRP(t *testing.T) *testRP {
	rp := &testRP{pending: map[string][2]string{}, results: make(chan rpResult, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) {
		verifier, state, nonce := oidcop.RandomToken(), oidcop.RandomToken()[:16], oidcop.RandomToken()[:16]
		rp.mu.Lock()
		rp.pending[state] = [2]string{verifier, nonce}
		rp.mu.Unlock()
		sum := sha256.Sum256([]byte(verifier))
		q := url.Values{"client_id": {"ebank"}, "redirect_uri": {rp.ts.URL + "/cb"}, "response_type": {"code"}, "scope": {"openid profile"},
			"state": {state}, "nonce": {nonce}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
		http.Redirect(w, r, rp.issuer+"/authorize?"+q.Encode(), http.StatusFound)
	})
	mux.HandleFunc("/cb", func(w http.ResponseWriter, r *http.Request) {
		res := rp.callback(r)
		select {
		case rp.results <- res:
		default: // only the first callback counts
		}
		if res.err != nil {
			http.Error(w, res.err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, `<!doctype html><p id="welcome">Welcome %s</p>`, html.EscapeString(fmt.Sprint(res.claims["preferred_username"])))
	})
	rp.ts = httptest.NewServer(mux)
	t.Cleanup(rp.ts.Close)
	return rp
}

func (rp *testRP) callback(r *http.Request) rpResult {
	q := r.URL.Query()
	rp.mu.Lock()
	p, ok := rp.pending[q.Get("state")]
	delete(rp.pending, q.Get("state"))
	rp.mu.Unlock()
	if !ok {
		return rpResult{err: fmt.Errorf("unknown state")}
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {rp.ts.URL + "/cb"}, "code_verifier": {p[0]}}
	req, _ := http.NewRequest("POST", rp.issuer+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("ebank", ebankSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return rpResult{err: err}
	}
	defer resp.Body.Close()
	var tr struct {
		IDToken string `json:"id_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != 200 {
		return rpResult{err: fmt.Errorf("token endpoint: %d %v", resp.StatusCode, err)}
	}
	c, err := rp.verify(tr.IDToken)
	if err == nil && c["nonce"] != p[1] {
		err = fmt.Errorf("nonce %v, want %s", c["nonce"], p[1])
	}
	return rpResult{claims: c, err: err}
}

// chromium starts headless Chromium for one test and returns its context
// (90 s for the test's steps: a few seconds on an idle machine, but the
// browser, the race detector and the other packages' tests share two
// cores under make test).
func chromium(t *testing.T) context.Context {
	t.Helper()
	path := testenv.NeedCommand(t, "chromium", "chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	// The first call starts the browser and must not carry a timeout.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelT)
	return ctx
}

// browserPassword walks the relying party's start, the login name, the
// reserved message and the password; it returns the reserved message shown.
func browserPassword(t *testing.T, ctx context.Context, rp *testRP) string {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Navigate(rp.ts.URL+"/start"),
		chromedp.WaitVisible(chromedp.ID("login_name")),
		chromedp.SendKeys(chromedp.ID("login_name"), "alice"),
		chromedp.Click(chromedp.ID("next")),
		chromedp.WaitVisible(chromedp.ID("reserved")),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	reserved, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("reserved")))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("password"), testPassword), chromedp.Click(chromedp.ID("signin"))); err != nil {
		t.Fatalf("browser: %v", err)
	}
	return reserved
}

// browserWelcome waits for the relying party's welcome page and returns
// the ID token claims it got.
func browserWelcome(t *testing.T, ctx context.Context, rp *testRP) map[string]any {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("welcome"))); err != nil {
		select {
		case res := <-rp.results:
			t.Fatalf("browser: %v; relying party: %v", err, res.err)
		default:
			t.Fatalf("browser: %v (the relying party saw no callback)", err)
		}
	}
	welcome, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("welcome")))
	if err != nil {
		t.Fatal(err)
	}
	if welcome != "Welcome alice" {
		t.Fatalf("welcome %q", welcome)
	}
	res := <-rp.results
	if res.err != nil {
		t.Fatal(res.err)
	}
	return res.claims
}

// TestBrowserLogin walks headless Chromium through an ebank login: login
// name, the reserved message, the password, and back to the platform with
// an ID token whose claims are checked.
func TestBrowserLogin(t *testing.T) {
	ctx := chromium(t)
	rp := newTestRP(t)
	e := newEnv(t, storetest.SQLite(t), func(c *Config) {
		c.OIDC.Clients[0].RedirectURIs = []string{rp.ts.URL + "/cb"}
	})
	rp.issuer, rp.verify = e.ts.URL, e.claims

	if reserved := browserPassword(t, ctx, rp); reserved != "red lantern 88" {
		t.Fatalf("reserved message %q", reserved)
	}
	c := browserWelcome(t, ctx, rp)
	if c["sub"] != e.pid || c["acr"] != "urn:egate:loa:1" || !slices.Equal(amrOf(c), []string{"pwd"}) || c["iss"] != e.ts.URL ||
		c["preferred_username"] != "alice" || c["aud"].([]any)[0] != "ebank" {
		t.Fatalf("ID token claims: %v", c)
	}
}

// TestBrowserLoginOTP walks headless Chromium through a level-3 login with
// the real tools of factors.Build: a customer whose TOTP token was imported
// from PSKC (seed wrapped in SoftHSM2) and assigned, a client that needs
// level 3; name, reserved message, password, then the token's code —
// computed here with devices/otp from the seed, independently of the
// server — and back at the client with acr level 3 and amr pwd + otp.
func TestBrowserLoginOTP(t *testing.T) {
	ctx := chromium(t)
	rp := newTestRP(t)
	fe := newFactorEnv(t, storetest.SQLite(t), func(c *Config) {
		c.OIDC.Clients[0].RedirectURIs = []string{rp.ts.URL + "/cb"}
		c.OIDC.Clients[0].MinLevel = 3
	})
	rp.issuer, rp.verify = fe.ts.URL, fe.claims
	seed := fe.enrollTOTP(t, "TOTP-BROWSER")

	if reserved := browserPassword(t, ctx, rp); reserved != "red lantern 88" {
		t.Fatalf("reserved message %q", reserved)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("prompt"))); err != nil {
		t.Fatalf("no second-factor page: %v", err)
	}
	prompt, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("prompt")))
	if err != nil {
		t.Fatal(err)
	}
	if prompt != "Enter the code shown on your token …WSER" {
		t.Fatalf("prompt %q", prompt)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("response"), totp(t, seed, fe.clk.Now())),
		chromedp.Click(chromedp.ID("confirm")),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	c := browserWelcome(t, ctx, rp)
	amr := amrOf(c)
	if c["sub"] != fe.pid || c["acr"] != "urn:egate:loa:3" || !slices.Contains(amr, "pwd") || !slices.Contains(amr, "otp") {
		t.Fatalf("ID token claims: %v", c)
	}
}
