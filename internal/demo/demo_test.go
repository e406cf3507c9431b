package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/platform/ebank/ledger"
	"github.com/egate-bank/egate/simulators/oathtoken"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startDemo runs the demo until the returned stop is called, and waits until
// it serves /healthz. The demo's four addresses are ports the kernel had
// free a moment before; another process (the tests run in parallel) can
// take one in between, and then the demo, rightly, does not start: it is
// started again on fresh ports, up to three times.
func startDemo(t *testing.T, varDir string, tune ...func(*config.Config)) (base string, out *syncBuf, stop func() error) {
	t.Helper()
	for try := 1; ; try++ {
		base, out, stop, err := tryStartDemo(t, varDir, tune...)
		if err == nil {
			return base, out, stop
		}
		if try == 3 || !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("demo ended early: %v\n%s", err, out.String())
		}
		t.Logf("demo start %d lost a port to another process (%v); again on fresh ports", try, err)
	}
}

// tryStartDemo starts the demo on fresh ports; it fails the test if the demo
// does not come up in time and returns the error of a demo that ended early.
func tryStartDemo(t *testing.T, varDir string, tune ...func(*config.Config)) (base string, out *syncBuf, stop func() error, _ error) {
	t.Helper()
	cfg := config.Defaults()
	cfg.Demo.VarDir = varDir
	cfg.Database.DSN = varDir + "/egate.db"
	cfg.HTTP.Listen = freeAddr(t)
	cfg.Platforms.Ebank.Listen = freeAddr(t)
	cfg.Platforms.Mall.Listen = freeAddr(t)
	cfg.Platforms.Messenger.Listen = freeAddr(t)
	for _, f := range tune {
		f(cfg)
	}
	lastCfg = cfg
	out = &syncBuf{}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, cfg, out, slog.New(slog.NewJSONHandler(io.Discard, nil))) }()
	base = "http://" + cfg.HTTP.Listen
	deadline := time.Now().Add(60 * time.Second)
	for {
		if strings.Contains(out.String(), "egate demo is up") {
			break
		}
		select {
		case err := <-errc:
			cancel()
			if err == nil {
				err = errors.New("Run returned without an error")
			}
			return base, out, nil, err
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("demo did not start:\n%s", out.String())
		}
	}
	return base, out, func() error { cancel(); return <-errc }, nil
}

var lastCfg *config.Config

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return resp.StatusCode
}

// The demo makes its state on the first start and reuses it on the next:
// the same keys, the same key ids, the same JWKS.
func TestDemoStartsAndRestartsWithTheSameKeys(t *testing.T) {
	testenv.NeedCommand(t, "softhsm2-util", "softhsm2")
	varDir := t.TempDir()
	kids := make([]string, 2)
	uris := make([]string, 2)
	for i := range 2 {
		base, out, stop := startDemo(t, varDir)
		var live map[string]string
		if code := getJSON(t, base+"/healthz", &live); code != 200 || live["status"] != "ok" {
			t.Fatalf("healthz: %d %v", code, live)
		}
		var ready struct {
			Status string            `json:"status"`
			Checks map[string]string `json:"checks"`
		}
		if code := getJSON(t, base+"/readyz", &ready); code != 200 || ready.Checks["hsm"] != "ok" || ready.Checks["database"] != "ok" || ready.Checks["atm"] != "ok" {
			t.Fatalf("readyz: %d %+v", code, ready)
		}
		var disc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if code := getJSON(t, base+"/.well-known/openid-configuration", &disc); code != 200 || disc.Issuer != base || disc.JWKSURI == "" {
			t.Fatalf("discovery: %d %+v", code, disc)
		}
		var jwks struct {
			Keys []struct {
				Kid, Kty, Crv, Alg, X, Y string
			} `json:"keys"`
		}
		if code := getJSON(t, disc.JWKSURI, &jwks); code != 200 || len(jwks.Keys) != 1 || jwks.Keys[0].Crv != "P-256" || jwks.Keys[0].Alg != "ES256" {
			t.Fatalf("jwks: %d %+v", code, jwks)
		}
		kids[i] = jwks.Keys[0].Kid + "/" + jwks.Keys[0].X + "/" + jwks.Keys[0].Y
		// Each platform serves its home page and sends the browser to the passport.
		for _, p := range []string{lastCfg.Platforms.Ebank.Listen, lastCfg.Platforms.Mall.Listen, lastCfg.Platforms.Messenger.Listen} {
			resp, err := http.Get("http://" + p + "/")
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("platform %s: %v %v", p, err, resp)
			}
			resp.Body.Close()
		}
		c := loginThroughEbank(t, base, varDir, out.String())
		if i == 0 { // a restart within the same 30 s would replay the TOTP code
			payInMessenger(t, c, base) // and a third SMS code in the hour would pass alice's five
			callOTPAPIAsPrinted(t, out.String())
		}
		if resp, err := http.Get(base + "/sim/sms/"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("the demo does not serve /sim/sms/: %v %v", err, resp)
		} else {
			resp.Body.Close()
		}
		var atms struct {
			ATMs []struct {
				ID        string
				Up        bool
				Cassettes []struct{ Count int }
			} `json:"atms"`
		}
		if code := getJSON(t, base+"/agent/atms", &atms); code != 200 || len(atms.ATMs) != 1 || !atms.ATMs[0].Up || len(atms.ATMs[0].Cassettes) != 4 {
			t.Fatalf("agent: %d %+v", code, atms)
		}
		// The agent reaches the data centre over mutual TLS with its key on
		// its own SoftHSM token, and STATUS goes through that link.
		var gw struct {
			Agents []struct {
				Branch string   `json:"branch"`
				ATMs   []string `json:"atms"`
			} `json:"agents"`
		}
		if code := getJSON(t, base+"/agent-gateway/agents", &gw); code != 200 || len(gw.Agents) != 1 || gw.Agents[0].Branch != DemoBranch ||
			len(gw.Agents[0].ATMs) != 1 || gw.Agents[0].ATMs[0] != DemoATM || ready.Checks["agent-link"] != "ok" {
			t.Fatalf("agent gateway: %d %+v; readyz %+v", code, gw, ready.Checks)
		}
		var st struct {
			ID string `json:"id"`
			Up bool   `json:"up"`
		}
		if code := getJSON(t, base+"/agent-gateway/atms/"+DemoATM+"/status", &st); code != 200 || st.ID != DemoATM || !st.Up {
			t.Fatalf("STATUS through the link: %d %+v", code, st)
		}
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "egate_http_requests_total") {
			t.Fatalf("metrics lack egate_http_requests_total")
		}
		if err := stop(); err != nil {
			t.Fatalf("stop: %v", err)
		}
		m := regexp.MustCompile(`key\s+egate-passport-signing\s+(\S+)`).FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("output does not list the signing key:\n%s", out.String())
		}
		uris[i] = m[1]
		checkRunConfig(t, varDir, out.String())
		if !strings.Contains(out.String(), "egate demo stopped") {
			t.Fatalf("no clean stop:\n%s", out.String())
		}
	}
	if kids[0] != kids[1] || uris[0] != uris[1] {
		t.Fatalf("restart changed the key: kid %s → %s, uri %s → %s", kids[0], kids[1], uris[0], uris[1])
	}
}

// loginThroughEbank logs the demo customer in to ebank through the
// passport's pages, with the password the demo wrote for them.
func loginThroughEbank(t *testing.T, passportURL, varDir, printed string) *http.Client {
	t.Helper()
	pw, err := os.ReadFile(filepath.Join(varDir, "demo-alice-password"))
	if err != nil {
		t.Fatal(err)
	}
	ebank := "http://" + lastCfg.Platforms.Ebank.Listen
	c, body := ebankLogin(t, passportURL, varDir, "alice", "13800138000", func(step, body string) {
		switch step {
		case "password":
			if !strings.Contains(body, "red lantern 88") {
				t.Fatalf("no reserved message:\n%s", body)
			}
		case "tools":
			// ebank needs level 2: the passport offers the tools alice has
			// at that level or above; she takes the SMS code.
			if !strings.Contains(body, `id="factor-sms"`) || !strings.Contains(body, `id="factor-gridcard"`) || !strings.Contains(body, `id="factor-otp"`) {
				t.Fatalf("no choice of SMS, grid card and token:\n%s", body)
			}
		}
	})
	read := func(r *http.Response, err error) (string, *http.Response) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return string(b), r
	}
	if !strings.Contains(body, `id="who"`) || !strings.Contains(body, "alice") || !strings.Contains(body, `<b id="level">2</b>`) {
		t.Fatalf("not logged in to ebank at level 2:\n%s", body)
	}
	// Her accounts, opened by the demo, with their money (once, however
	// often the demo starts).
	body, _ = read(c.Get(ebank + "/accounts?lang=en"))
	if !strings.Contains(body, "200,000.00") || !strings.Contains(body, "My accounts") || strings.Contains(body, "400,000.00") {
		t.Fatalf("alice's accounts page:\n%s", body)
	}
	transferToBob(t, c, ebank, passportURL, printed)
	// Self-service at level 2 reaches the passport's password API with the
	// session's token; a wrong current password and a weak new one are
	// refused, and the password stays (the restart logs in with it).
	for _, tc := range []struct{ old, new, code string }{
		{"not-her-password", "Brand-new-pass-4711", "bad_credentials"},
		{strings.TrimSpace(string(pw)), "x", "weak_password"},
	} {
		body, resp := read(c.PostForm(ebank+"/settings/password?lang=en", url.Values{"old_password": {tc.old}, "new_password": {tc.new}}))
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `data-code="`+tc.code+`"`) {
			t.Fatalf("password change %s: %d\n%s", tc.code, resp.StatusCode, body)
		}
	}
	// The login alert reaches alice's phone.
	// The alert goes out from the outbox in the background; a loaded
	// machine may take a while.
	deadline := time.Now().Add(60 * time.Second)
	for {
		var all []struct{ To, Body string }
		getJSON(t, passportURL+"/sim/sms/messages.json?to=13800138000", &all)
		found := false
		for _, m := range all {
			found = found || strings.Contains(m.Body, "Login to ebank")
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no login alert by SMS: %+v", all)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return c
}

// ebankLogin logs who in to the demo's ebank through the passport's pages
// with the password the demo wrote for them and an SMS code to mobile
// (level 2); check sees the password page ("password") and the choice of
// tools ("tools"). It returns the logged-in client and the page it landed on.
func ebankLogin(t *testing.T, passportURL, varDir, who, mobile string, check func(step, body string)) (*http.Client, string) {
	t.Helper()
	pw, err := os.ReadFile(filepath.Join(varDir, "demo-"+who+"-password"))
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	read := func(r *http.Response, err error) string { t.Helper(); return readBody(t, r, err) }
	ebank := "http://" + lastCfg.Platforms.Ebank.Listen
	body := read(c.Get(ebank + "/login"))
	m := regexp.MustCompile(`name="id" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no passport login page:\n%s", body)
	}
	check("password", read(c.PostForm(passportURL+"/login/name", url.Values{"id": {m[1]}, "login_name": {who}})))
	body = read(c.PostForm(passportURL+"/login/password", url.Values{"id": {m[1]}, "password": {strings.TrimSpace(string(pw))}}))
	check("tools", body)
	body = read(c.PostForm(passportURL+"/login/factor/begin", url.Values{"id": {m[1]}, "factor": {"sms"}}))
	if !strings.Contains(body, `name="response"`) {
		t.Fatalf("no SMS code page:\n%s", body)
	}
	return c, read(c.PostForm(passportURL+"/login/factor", url.Values{"id": {m[1]}, "response": {smsCodeTo(t, passportURL, mobile)}}))
}

// readBody reads a response's body, failing t on a transport error.
func readBody(t *testing.T, r *http.Response, err error) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

// smsCodeTo is the code of the last SMS to mobile in the demo's sink.
func smsCodeTo(t *testing.T, passportURL, mobile string) string {
	t.Helper()
	var msgs []struct{ To, Body string }
	getJSON(t, passportURL+"/sim/sms/messages.json?to="+mobile+"&limit=1", &msgs)
	code := ""
	if len(msgs) == 1 {
		code = regexp.MustCompile(`\b\d{6}\b`).FindString(msgs[0].Body)
	}
	if code == "" {
		t.Fatalf("no SMS code to %s in the sink: %+v", mobile, msgs)
	}
	return code
}

// callOTPAPIAsPrinted follows the demo's printed curl line: the back-end
// client and its secret file, alice's passport id, a code of her token from
// the PSKC file that egate sim otp reads, and the URL. Without credentials
// the API answers 401; with them the code is accepted.
func callOTPAPIAsPrinted(t *testing.T, out string) {
	t.Helper()
	m := regexp.MustCompile(`curl -u "([^:"]+):\$\(cat ([^)]+)\)" .*passport_id\\":\\"([^\\]+)\\".*egate sim otp --pskc (\S+) --once .* (http://\S+/v1/otp/verify)\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the demo prints no curl line for the OTP API:\n%s", out)
	}
	user, secretFile, pid, pskcFile, url := m[1], m[2], m[3], m[4], m[5]
	secret, err := os.ReadFile(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(secretFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret file %s: %v %v", secretFile, st.Mode(), err)
	}
	f, err := os.Open(pskcFile)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := oathtoken.Load(f, pskc.Options{}, "")
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, _, err := tok.Press(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	body := `{"passport_id":"` + pid + `","code":"` + code + `"}`
	call := func(user, secret string) (int, string) {
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if user != "" {
			req.SetBasicAuth(user, secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, b := call("", ""); st != 401 || !strings.Contains(b, `"unauthorized"`) {
		t.Fatalf("anonymous call: %d %s", st, b)
	}
	if st, b := call(user, strings.TrimSpace(string(secret))); st != 200 || !strings.Contains(b, `"ok":true`) {
		t.Fatalf("the printed call: %d %s", st, b)
	}
	// The same client authorizes a payment from alice's demo account: her
	// token and grid card reach the level a 2,000-yuan transfer needs.
	tc := &txclient.Client{BaseURL: strings.TrimSuffix(url, "/v1/otp/verify"), ID: user, Secret: strings.TrimSpace(string(secret))}
	d, err := tc.Authorize(context.Background(), intent.Intent{Customer: pid, Channel: intent.Web, Kind: intent.Transfer, Payer: DemoAccount,
		Payee: "6222020000000002", Amount: 2_000_00, Currency: "CNY", IdempotencyKey: "demo-" + randomHex(4)})
	if err != nil || d.Decision != txclient.Allow || len(d.Tools) == 0 {
		t.Fatalf("authorize as the demo's back-end client: %+v %v", d, err)
	}
}

// checkRunConfig: the demo wrote var/egate.yaml (0600), printed where, and
// it loads strictly as egate's config, naming the demo's token, its module
// environment and the database by absolute path, and no secret.
func checkRunConfig(t *testing.T, varDir, out string) {
	t.Helper()
	path := filepath.Join(varDir, ConfigFile)
	if !strings.Contains(out, "Config     "+path) {
		t.Fatalf("the demo does not print where its config is:\n%s", out)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v, want mode 0600", path, st, err)
	}
	cfg := config.Defaults()
	if err := config.LoadFile(path, cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.HSM.Module == "" || cfg.HSM.Token != lastCfg.HSM.Token || !strings.HasPrefix(cfg.HSM.PINSource, "file:/") ||
		len(cfg.HSM.ModuleEnv) != 1 || !strings.HasPrefix(cfg.HSM.ModuleEnv[0], "SOFTHSM2_CONF=/") {
		t.Fatalf("hsm section of %s: %+v", path, cfg.HSM)
	}
	if err := cfg.HSM.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Database.Driver != "sqlite" || !filepath.IsAbs(cfg.Database.DSN) {
		t.Fatalf("database section of %s: %+v", path, cfg.Database)
	}
	b, _ := os.ReadFile(path)
	pin, _ := os.ReadFile(filepath.Join(varDir, "hsm-user-pin"))
	if len(pin) == 0 || strings.Contains(string(b), strings.TrimSpace(string(pin))) {
		t.Fatalf("%s holds the PIN, or there is no PIN file", path)
	}
}

// transferToBob pays 100 yuan from alice's current account to bob's
// through the real transaction authorization: the decision, an SMS
// challenge, its code from the sink, the grant executed, the ledger moved;
// egate admin ledger check's Check passes afterwards.
func transferToBob(t *testing.T, c *http.Client, ebank, passportURL, printed string) {
	t.Helper()
	read := func(r *http.Response, err error) string { t.Helper(); return readBody(t, r, err) }
	bob := regexp.MustCompile(`Accounts\s+bob\s+current (\d+)`).FindStringSubmatch(printed)
	if bob == nil {
		t.Fatalf("the demo does not print bob's accounts:\n%s", printed)
	}
	form := read(c.Get(ebank + "/transfer?lang=en"))
	key := regexp.MustCompile(`name="key" value="([^"]+)"`).FindStringSubmatch(form)
	from := regexp.MustCompile(`<option value="(\d+)" selected`).FindStringSubmatch(form)
	if key == nil || from == nil {
		t.Fatalf("transfer form:\n%s", form)
	}
	f := url.Values{"key": {key[1]}, "from": {from[1]}, "to_kind": {"account"}, "to": {bob[1]}, "amount": {"100"}, "memo": {"demo"}}
	body := read(c.PostForm(ebank+"/transfer", f))
	if !strings.Contains(body, `id="factor_sms"`) {
		t.Fatalf("no SMS among the tools of the decision:\n%s", body)
	}
	f.Set("factor", "sms")
	body = read(c.PostForm(ebank+"/transfer/challenge", f))
	cid := regexp.MustCompile(`name="challenge_id" value="([^"]+)"`).FindStringSubmatch(body)
	if cid == nil {
		t.Fatalf("no challenge:\n%s", body)
	}
	var msgs []struct{ To, Body string }
	getJSON(t, passportURL+"/sim/sms/messages.json?to=13800138000&limit=1", &msgs)
	code := ""
	if len(msgs) == 1 {
		code = regexp.MustCompile(`\b\d{6}\b`).FindString(msgs[0].Body)
	}
	f.Set("challenge_id", cid[1])
	f.Set("response", code)
	body = read(c.PostForm(ebank+"/transfer/confirm", f))
	if !strings.Contains(body, "Done: 100.00 yuan from "+from[1]+" to "+bob[1]) {
		t.Fatalf("transfer not done (SMS %+v):\n%s", msgs, body)
	}
	db, err := store.Open(context.Background(), store.Config{Driver: lastCfg.Database.Driver, DSN: lastCfg.Database.DSN})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := ledger.Check(context.Background(), db); err != nil {
		t.Fatalf("ledger check after the transfer: %v", err)
	}
}
