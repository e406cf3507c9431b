package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/testenv"
)

// helperRP is a tiny confidential OIDC client: /start?level=N sends the
// browser to the passport asking for level N, /cb exchanges the code and
// shows the ID token's acr.
type helperRP struct {
	ts     *httptest.Server
	issuer string
	secret string
}

func newHelperRP(t *testing.T, secret string) *helperRP {
	rp := &helperRP{secret: secret}
	mux := http.NewServeMux()
	mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) {
		sum := sha256.Sum256([]byte(pkceVerifier))
		q := url.Values{"client_id": {"ebank"}, "redirect_uri": {rp.ts.URL + "/cb"}, "response_type": {"code"}, "scope": {"openid"},
			"state": {"st-" + r.URL.Query().Get("level")}, "acr_values": {"urn:egate:loa:" + r.URL.Query().Get("level")},
			"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
		http.Redirect(w, r, rp.issuer+"/authorize?"+q.Encode(), http.StatusFound)
	})
	mux.HandleFunc("/cb", func(w http.ResponseWriter, r *http.Request) {
		if e := r.URL.Query().Get("error"); e != "" {
			http.Error(w, "error from the passport: "+e+": "+r.URL.Query().Get("error_description"), 400)
			return
		}
		form := url.Values{"grant_type": {"authorization_code"}, "code": {r.URL.Query().Get("code")}, "redirect_uri": {rp.ts.URL + "/cb"}, "code_verifier": {pkceVerifier}}
		req, _ := http.NewRequest("POST", rp.issuer+"/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("ebank", rp.secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer resp.Body.Close()
		var tr struct {
			IDToken string `json:"id_token"`
		}
		json.NewDecoder(resp.Body).Decode(&tr)
		parts := strings.Split(tr.IDToken, ".")
		if len(parts) != 3 {
			http.Error(w, "no id token: "+resp.Status, 500)
			return
		}
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var c map[string]any
		json.Unmarshal(payload, &c)
		fmt.Fprintf(w, `<!doctype html><p id="welcome">%s</p>`, html.EscapeString(fmt.Sprint(c["acr"])))
	})
	rp.ts = httptest.NewServer(mux)
	t.Cleanup(rp.ts.Close)
	return rp
}

// pkceVerifier is the test RP's PKCE verifier (one login at a time).
const pkceVerifier = "helper-test-verifier-0123456789abcdefghijklmnopq"

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// lines starts cmd and sends its stdout lines to a channel.
func startLines(t *testing.T, cmd *exec.Cmd) (<-chan string, *bytes.Buffer) {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
	})
	ch := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			ch <- sc.Text()
		}
		close(ch)
		io.Copy(io.Discard, out)
	}()
	return ch, &stderr
}

// waitLine returns the first submatch of re in the lines.
func waitLine(t *testing.T, ch <-chan string, re *regexp.Regexp, stderr *bytes.Buffer) []string {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatalf("the process ended without printing %s:\n%s", re, stderr.String())
			}
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-timeout:
			t.Fatalf("no line %s in 60 s:\n%s", re, stderr.String())
		}
	}
}

func helperChromium(t *testing.T) context.Context {
	t.Helper()
	path := testenv.NeedCommand(t, "chromium", "chromium")
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.WindowSize(900, 1000), chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true))
	t.Cleanup(cancelA)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// shot saves a screenshot of the page under $EGATE_SHOTS_DIR (when set),
// for people to look at.
func shot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("EGATE_SHOTS_DIR")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err == nil {
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
	}
}

// TestHelperBrowserLogin: headless Chromium logs in at level 4 with a
// 1st-generation U-shield (a SoftHSM2 token enrolled by egate admin ushield
// enroll) through `egate helper`, started with the page's autostart link;
// and at level 5 with a 2nd-generation U-shield played by `egate sim
// ushield`, whose confirm button the test presses after checking that its
// display shows exactly the page's text. The page follows the order and
// goes on by itself to the platform, which gets acr level 4 and 5. A real
// `egate authsvc` process serves the passport.
func TestHelperBrowserLogin(t *testing.T) {
	testenv.NeedCommand(t, "chromium", "chromium")
	b := newAdminBench(t)
	b.caInit(t)
	pid := b.customer(t, "alice")
	ctx := context.Background()
	const shieldPIN = "24681357"
	for _, l := range []string{"ushield-1", "ushield-2"} {
		if _, _, err := b.sh.InitToken(ctx, l, "11223344", shieldPIN); err != nil {
			t.Fatal(err)
		}
	}
	b.env = append(b.env, "EGATE_TEST_SHIELD_PIN="+shieldPIN, "EGATE_TEST_EBANK_SECRET=ebank-secret-0123456789abcdef")
	for gen, l := range map[string]string{"1": "ushield-1", "2": "ushield-2"} {
		if r := b.admin(t, "ushield", "enroll", "--module", b.sh.Module, "--token", l, "--customer", pid, "--generation", gen,
			"--pin-source", "env:EGATE_TEST_SHIELD_PIN"); r.code != 0 {
			t.Fatalf("enroll %s: %+v", l, r)
		}
	}
	rp := newHelperRP(t, "ebank-secret-0123456789abcdef")
	addr := freePort(t)
	conf := filepath.Join(b.dir, "egate.yaml")
	os.WriteFile(conf, []byte(`http: {listen: "`+addr+`"}
database: {driver: sqlite, dsn: "`+b.db+`"}
hsm: {module: "`+b.sh.Module+`", token: `+benchHSMToken+`, pin-source: "env:EGATE_TEST_HSM_PIN"}
factors: {enabled: [ushield, ushield2]}
authsvc:
  oidc:
    clients:
      - {id: ebank, secret: "ebank-secret-0123456789abcdef", redirect-uris: ["`+rp.ts.URL+`/cb"], min-level: 1}
`), 0o600)
	base, _ := startAuthsvc(t, b, conf)
	rp.issuer = base

	// toFactorPage walks the platform's start, name and password to the
	// U-shield's page and returns the autostart link and the text shown.
	toFactorPage := func(t *testing.T, ctx context.Context, level, pick string) (string, string) {
		t.Helper()
		step := stepper(t, ctx, 30*time.Second)
		step("the name page", chromedp.Navigate(rp.ts.URL+"/start?level="+level), chromedp.WaitVisible(chromedp.ID("login_name")))
		step("the password page", chromedp.SendKeys(chromedp.ID("login_name"), "alice"), chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("password")))
		step("signing in", chromedp.SendKeys(chromedp.ID("password"), "Blue-Kite-47"), chromedp.Click(chromedp.ID("signin")))
		if pick != "" {
			// Level 4: both U-shields qualify; choose one.
			step("the choice page", chromedp.WaitVisible(chromedp.ID("factor-"+pick)), chromedp.Click(chromedp.ID("factor-"+pick)))
		}
		step("the U-shield page", chromedp.WaitVisible(chromedp.ID("autostart")))
		link, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("autostart"), "href"))
		if err != nil || !strings.HasPrefix(link.Value, "egate://order?") {
			t.Fatalf("autostart link %+v %v", link, err)
		}
		text, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.ID("challenge")))
		if err != nil || !strings.HasPrefix(text, "egate login for "+pid+"\nChallenge: ") {
			t.Fatalf("text on the page %q %v", text, err)
		}
		return link.Value, text
	}
	welcome := func(t *testing.T, ctx context.Context) string {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.ID("welcome"))); err != nil {
			t.Fatalf("the page did not go on to the platform: %v", err)
		}
		w, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("welcome")))
		if err != nil {
			t.Fatal(err)
		}
		return w
	}

	t.Run("level 4 with a 1st-generation U-shield through egate helper", func(t *testing.T) {
		bctx := helperChromium(t)
		link, text := toFactorPage(t, bctx, "4", "ushield")
		shot(t, bctx, "factor-ushield-order")
		h := run(t, b.dir, b.env, "helper", link, "--module", b.sh.Module, "--token", "ushield-1", "--pin-source", "env:EGATE_TEST_SHIELD_PIN", "--yes")
		if h.code != 0 || !strings.Contains(h.stdout, "│ "+strings.ReplaceAll(text, "\n", "\n│ ")) || !strings.Contains(h.stdout, "Signed.") {
			t.Fatalf("egate helper: %+v", h)
		}
		if strings.Contains(h.stdout+h.stderr, shieldPIN) {
			t.Fatal("the PIN reached the helper's output")
		}
		if w := welcome(t, bctx); w != "urn:egate:loa:4" {
			t.Fatalf("acr %q", w)
		}
	})

	t.Run("level 5 with a 2nd-generation U-shield whose button the test presses", func(t *testing.T) {
		bctx := helperChromium(t)
		link, text := toFactorPage(t, bctx, "5", "")
		if h := confirmOnUShield2(t, b, "ushield-2", link, text, func() { shot(t, bctx, "factor-ushield2-waiting") }); h.code != 0 || !strings.Contains(h.stdout, "Signed.") {
			t.Fatalf("egate helper: %+v", h)
		}
		if w := welcome(t, bctx); w != "urn:egate:loa:5" {
			t.Fatalf("acr %q", w)
		}
	})
}

// stepper returns step(what, actions…): the actions run in the browser
// bctx within d, and a failure ends t with the page's HTML. Make one per
// test (or subtest) that drives the browser.
func stepper(t *testing.T, bctx context.Context, d time.Duration) func(string, ...chromedp.Action[chromedp.Void]) {
	return func(what string, acts ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, d)
		defer cancel()
		if err := chromedp.Do(sctx, acts...); err != nil {
			body, _ := chromedp.Run(bctx, chromedp.Evaluate[string]("document.documentElement.outerHTML"))
			t.Fatalf("browser, %s: %v\n%s", what, err, body)
		}
	}
}

// confirmOnUShield2 answers the order of the autostart link with the
// 2nd-generation U-shield token played by `egate sim ushield` through
// `egate helper --ushield2`: the token's display must show exactly text;
// waiting runs while it does, then the test presses the confirm button.
// It returns how the helper ended.
func confirmOnUShield2(t *testing.T, b *adminBench, token, link, text string, waiting func()) result {
	t.Helper()
	devAddr := freePort(t)
	sim := exec.Command(egateBin, "sim", "ushield", "--module", b.sh.Module, "--token", token, "--pin-source", "env:EGATE_TEST_SHIELD_PIN", "--listen", devAddr)
	sim.Dir, sim.Env = b.dir, append(os.Environ(), b.env...)
	simOut, simErr := startLines(t, sim)
	waitLine(t, simOut, regexp.MustCompile(`^U-shield "`+regexp.QuoteMeta(token)+`"`), simErr)
	helperDone := make(chan result, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		helperDone <- run(t, b.dir, b.env, "helper", link, "--ushield2", "http://"+devAddr, "--yes")
	})
	defer wg.Wait()
	// The token's display: the request id, then exactly the text.
	id := waitLine(t, simOut, regexp.MustCompile(`U-shield display ─ request ([0-9a-f]+)`), simErr)[1]
	var shown []string
	for l := range simOut {
		if strings.HasPrefix(l, "└─") {
			break
		}
		shown = append(shown, l)
	}
	if strings.Join(shown, "\n") != text {
		t.Fatalf("the U-shield shows %q, the page %q", strings.Join(shown, "\n"), text)
	}
	if waiting != nil {
		waiting()
	}
	resp, err := http.Post("http://"+devAddr+"/confirm?id="+id, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return <-helperDone
}

// scanWithPhone takes a screenshot of the page's QR code (#qr) and has
// `egate sim phone scan` read it from the PNG and sign with the app PIN of
// EGATE_TEST_APP_PIN; it returns how the app ended.
func scanWithPhone(t *testing.T, b *adminBench, bctx context.Context, state string) result {
	t.Helper()
	png, err := chromedp.Run(bctx, chromedp.Screenshot(chromedp.ID("qr")))
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "qr.png")
	if err := os.WriteFile(img, png, 0o644); err != nil {
		t.Fatal(err)
	}
	return run(t, b.dir, b.env, "sim", "phone", "scan", img, "--state", state, "--pin-source", "env:EGATE_TEST_APP_PIN", "--yes")
}

// lastSMSCode is the code of the latest SMS to alice's mobile in the
// development sink.
func lastSMSCode(t *testing.T, b *adminBench) string {
	t.Helper()
	body := lastSMS(t, b)
	code := regexp.MustCompile(`(\d{6}) is your code|】验证码 (\d{6})，`).FindStringSubmatch(body)
	if code == nil {
		t.Fatalf("SMS %q", body)
	}
	return code[1] + code[2]
}

// lastSMS is the newest SMS to alice's phone in the development sink.
func lastSMS(t *testing.T, b *adminBench) string {
	t.Helper()
	var body string
	db := openBenchDB(t, b)
	defer db.Close()
	if err := db.QueryRow(context.Background(), `SELECT body FROM sms_outbox WHERE phone = '13812345678' ORDER BY created_ms DESC LIMIT 1`).Scan(&body); err != nil {
		t.Fatal(err)
	}
	return body
}

// TestPhoneBrowserLogin: `egate sim phone bind` binds the app to alice
// (password, then the SMS code, read here from the development sink and
// typed on the app's stdin); headless Chromium then reaches the phone step
// at level 3, the test takes a screenshot of the page's QR code, `egate sim
// phone scan` decodes it from the PNG with gozxing, shows the order, signs
// with the app PIN, and the page goes on by itself to the platform with acr
// level 3. A real `egate authsvc` process serves the passport.
func TestPhoneBrowserLogin(t *testing.T) {
	testenv.NeedCommand(t, "chromium", "chromium")
	b := newAdminBench(t)
	b.customer(t, "alice")
	b.env = append(b.env, "EGATE_TEST_APP_PIN=2468")
	rp := newHelperRP(t, "ebank-secret-0123456789abcdef")
	addr := freePort(t)
	conf := filepath.Join(b.dir, "egate.yaml")
	os.WriteFile(conf, []byte(`http: {listen: "`+addr+`"}
database: {driver: sqlite, dsn: "`+b.db+`"}
hsm: {module: "`+b.sh.Module+`", token: `+benchHSMToken+`, pin-source: "env:EGATE_TEST_HSM_PIN"}
factors: {enabled: [sms, phone], sms: {dev-sink: true}}
authsvc:
  oidc:
    clients:
      - {id: ebank, secret: "ebank-secret-0123456789abcdef", redirect-uris: ["`+rp.ts.URL+`/cb"], min-level: 1}
`), 0o600)
	base, _ := startAuthsvc(t, b, conf)
	rp.issuer = base
	state := bindPhone(t, b, base)
	// The operator sees the bound phone among alice's tools.
	if r := b.run(t, "admin", "user", "show", "alice", "--db", b.db); r.code != 0 ||
		!regexp.MustCompile(`(?m)^phone\s+phone device \S+ bound \d{4}-\d\d-\d\d \d\d:\d\d UTC\s+active\s+-\s+-$`).MatchString(r.stdout) {
		t.Fatalf("user show: %+v", r)
	}
	// The app's state holds its key sealed under the app PIN: no PKCS#8
	// key, no unsealed field.
	if st, err := os.ReadFile(state); err != nil || strings.Contains(string(st), `"key"`) || !strings.Contains(string(st), `"sealed_key"`) {
		t.Fatalf("the app's state: %s %v", st, err)
	}

	bctx := helperChromium(t)
	step := stepper(t, bctx, 30*time.Second)
	step("the name page", chromedp.Navigate(rp.ts.URL+"/start?level=3"), chromedp.WaitVisible(chromedp.ID("login_name")))
	step("the password page", chromedp.SendKeys(chromedp.ID("login_name"), "alice"), chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("password")))
	step("the phone page", chromedp.SendKeys(chromedp.ID("password"), "Blue-Kite-47"), chromedp.Click(chromedp.ID("signin")), chromedp.WaitVisible(chromedp.ID("qr")))
	shot(t, bctx, "factor-phone-qr")
	r := scanWithPhone(t, b, bctx, state)
	if r.code != 0 || !strings.Contains(r.stdout, "│ egate login for ") || !strings.Contains(r.stdout, "Signed.") {
		t.Fatalf("sim phone scan: %+v", r)
	}
	wctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.ID("welcome"))); err != nil {
		t.Fatalf("the page did not go on to the platform: %v", err)
	}
	if w, _ := chromedp.Run(bctx, chromedp.Text(chromedp.ID("welcome"))); w != "urn:egate:loa:3" {
		t.Fatalf("acr %q", w)
	}
}

// bindPhone binds `egate sim phone` to alice at the passport base (the
// password, then the SMS code read from the development sink and typed on
// the app's stdin), with the app PIN of EGATE_TEST_APP_PIN, and returns
// the app's state file.
func bindPhone(t *testing.T, b *adminBench, base string) string {
	t.Helper()
	state := filepath.Join(b.dir, "phone.json")

	// Bind: the app asks the SMS code on stdin after the password.
	bind := exec.Command(egateBin, "sim", "phone", "bind", "--server", base, "--login", "alice", "--password-source", "env:EGATE_NEW_PASSWORD",
		"--pin-source", "env:EGATE_TEST_APP_PIN", "--state", state)
	bind.Dir, bind.Env = b.dir, append(os.Environ(), b.env...)
	stdin, _ := bind.StdinPipe()
	out, _ := bind.StdoutPipe()
	var bindErr bytes.Buffer
	bind.Stderr = &bindErr
	if err := bind.Start(); err != nil {
		t.Fatal(err)
	}
	asked := make(chan struct{})
	var outBuf bytes.Buffer
	var mu sync.Mutex
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 256)
		once := sync.Once{}
		for {
			n, err := out.Read(buf)
			mu.Lock()
			outBuf.Write(buf[:n])
			if strings.Contains(outBuf.String(), "SMS code: ") {
				once.Do(func() { close(asked) })
			}
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-asked:
	case <-time.After(60 * time.Second):
		bind.Process.Kill()
		t.Fatalf("the app never asked the SMS code: %s %s", outBuf.String(), bindErr.String())
	}
	io.WriteString(stdin, lastSMSCode(t, b)+"\n")
	stdin.Close()
	<-readDone
	if err := bind.Wait(); err != nil || !strings.Contains(outBuf.String(), "bound: device") {
		t.Fatalf("bind: %v %s %s", err, outBuf.String(), bindErr.String())
	}
	if st, err := os.Stat(state); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", st, err)
	}

	return state
}

func openBenchDB(t *testing.T, b *adminBench) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Config{Driver: store.SQLite, DSN: b.db})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestHelperEnrol: the customer enrols a new U-shield (a fresh SoftHSM2
// token) by themselves: signed in at level 2 (password and the SMS code,
// read here from the development sink), headless Chromium opens the
// passport's enrolment page, `egate helper` started with its autostart
// link makes the key on the token and sends its CSR, the bank CA (in the
// HSM) certifies it, the helper writes the certificate back (pkcs11-tool
// sees it), and the page goes on by itself to "Enrolled". The new token
// then logs in at level 4 through the helper, and egate admin ushield list
// shows it.
func TestHelperEnrol(t *testing.T) {
	testenv.NeedCommand(t, "chromium", "chromium")
	tool := testenv.NeedCommand(t, "pkcs11-tool", "opensc")
	b := newAdminBench(t)
	b.caInit(t)
	pid := b.customer(t, "alice")
	const shieldPIN = "24681357"
	if _, _, err := b.sh.InitToken(context.Background(), "ushield-new", "11223344", shieldPIN); err != nil {
		t.Fatal(err)
	}
	b.env = append(b.env, "EGATE_TEST_SHIELD_PIN="+shieldPIN)
	rp := newHelperRP(t, "ebank-secret-0123456789abcdef")
	addr := freePort(t)
	conf := filepath.Join(b.dir, "egate.yaml")
	os.WriteFile(conf, []byte(`http: {listen: "`+addr+`"}
database: {driver: sqlite, dsn: "`+b.db+`"}
hsm: {module: "`+b.sh.Module+`", token: `+benchHSMToken+`, pin-source: "env:EGATE_TEST_HSM_PIN"}
factors: {enabled: [sms, ushield], sms: {dev-sink: true}}
authsvc:
  oidc:
    clients:
      - {id: ebank, secret: "ebank-secret-0123456789abcdef", redirect-uris: ["`+rp.ts.URL+`/cb"], min-level: 1}
`), 0o600)
	base, _ := startAuthsvc(t, b, conf)
	rp.issuer = base

	bctx := helperChromium(t)
	step := stepper(t, bctx, 30*time.Second)
	// Level 2: password and SMS code.
	step("the name page", chromedp.Navigate(rp.ts.URL+"/start?level=2"), chromedp.WaitVisible(chromedp.ID("login_name")))
	step("the password page", chromedp.SendKeys(chromedp.ID("login_name"), "alice"), chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("password")))
	step("the SMS page", chromedp.SendKeys(chromedp.ID("password"), "Blue-Kite-47"), chromedp.Click(chromedp.ID("signin")), chromedp.WaitVisible(chromedp.ID("response")))
	step("back at the platform", chromedp.SendKeys(chromedp.ID("response"), lastSMSCode(t, b)), chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("welcome")))

	// The enrolment page and the helper.
	step("the enrolment page", chromedp.Navigate(base+"/account/enrol?tool=ushield"), chromedp.WaitVisible(chromedp.ID("autostart")))
	shot(t, bctx, "enrol-ushield-order")
	link, err := chromedp.Run(bctx, chromedp.AttributeValue(chromedp.ID("autostart"), "href"))
	if err != nil {
		t.Fatal(err)
	}
	h := run(t, b.dir, b.env, "helper", link.Value, "--module", b.sh.Module, "--token", "ushield-new", "--pin-source", "env:EGATE_TEST_SHIELD_PIN", "--yes")
	if h.code != 0 || !strings.Contains(h.stdout, "Enrolled:") || !strings.Contains(h.stdout, "│ Enrol a new U-shield for "+pid) {
		t.Fatalf("egate helper: %+v", h)
	}
	step("the enrolled page", chromedp.WaitVisible(chromedp.ID("enrolled")))
	shot(t, bctx, "enrol-ushield-done")
	cmd := exec.Command(tool, "--module", b.sh.Module, "--token-label", "ushield-new", "--login", "--pin", shieldPIN, "--list-objects")
	cmd.Env = append(os.Environ(), b.sh.Env())
	objs, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(objs), "Certificate Object") || !strings.Contains(string(objs), "Private Key Object") {
		t.Fatalf("pkcs11-tool: %v\n%s", err, objs)
	}
	if r := b.admin(t, "ushield", "list", "--customer", pid); r.code != 0 || !strings.Contains(r.stdout, "ushield-new") {
		t.Fatalf("ushield list: %+v", r)
	}

	// The new token at level 4 (single sign-on from level 2: no password).
	step("the U-shield page", chromedp.Navigate(rp.ts.URL+"/start?level=4"), chromedp.WaitVisible(chromedp.ID("autostart")))
	link, _ = chromedp.Run(bctx, chromedp.AttributeValue(chromedp.ID("autostart"), "href"))
	if h := run(t, b.dir, b.env, "helper", link.Value, "--module", b.sh.Module, "--token", "ushield-new", "--pin-source", "env:EGATE_TEST_SHIELD_PIN", "--yes"); h.code != 0 {
		t.Fatalf("egate helper: %+v", h)
	}
	step("back at the platform", chromedp.WaitVisible(chromedp.ID("welcome")))
	if w, _ := chromedp.Run(bctx, chromedp.Text(chromedp.ID("welcome"))); w != "urn:egate:loa:4" {
		t.Fatalf("acr %q", w)
	}
}
