package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/internal/readmetest"
	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/platform"
	simphone "github.com/egate-bank/egate/simulators/phone"
)

// readmeURL is one URL of the README's "egate demo" table.
type readmeURL struct {
	line         int
	method, port string // port: 8080 the passport, 8081–8083 the platforms
	path         string // as written, {placeholders} and all
}

func (u readmeURL) String() string {
	return fmt.Sprintf("README.md:%d: %s :%s%s", u.line, u.method, u.port, u.path)
}

var (
	methodOnly = regexp.MustCompile(`^(GET|POST|PUT|DELETE|PATCH)$`)
	methodPath = regexp.MustCompile(`^(?:(GET|POST|PUT|DELETE|PATCH) )?(?:http://127\.0\.0\.1)?(?::(\d+))?(/\S*)?$`)
)

// readmeURLs reads the URL table of the README's "egate demo" section: the
// first column's code spans, and those of the second that are a path
// (`/.well-known/openid-configuration`, `POST /sim/atm/pin`). A method
// carries to the spans after it in the cell (`POST /v1/otp/verify`,
// `/v1/otp/resync`); `GET`/`PUT /x` is two methods of one path; `…/proof`
// is the path before with its last part replaced (or, after a
// {placeholder}, added to).
func readmeURLs(t *testing.T, doc readmetest.Doc) []readmeURL {
	t.Helper()
	sec, ok := doc.Section("egate demo")
	if !ok {
		t.Fatal("README has no section \"egate demo\"")
	}
	var rows []readmetest.Row
	for _, tb := range readmetest.Tables(sec) {
		if len(tb) > 0 && strings.Contains(tb[0].Cells[0], "http://127.0.0.1:8080/") {
			rows = tb
		}
	}
	if len(rows) < 10 {
		t.Fatalf("the URL table of \"egate demo\" has %d rows; the parser lost it", len(rows))
	}
	var urls []readmeURL
	for _, r := range rows {
		rowPort := "8080" // a path of the second column is on the row's host
		for col, cell := range r.Cells[:2] {
			var pending []string // methods written alone: `GET`/`PUT /x`
			method := ""
			var prev readmeURL
			for _, s := range readmetest.CodeSpans(cell) {
				if methodOnly.MatchString(s) {
					pending = append(pending, s)
					continue
				}
				if rest, ok := strings.CutPrefix(s, "…/"); ok && prev.path != "" && col == 0 {
					u := prev
					if strings.HasSuffix(u.path, "}") {
						u.path += "/" + rest
					} else {
						u.path = u.path[:strings.LastIndex(u.path, "/")+1] + rest
					}
					urls = append(urls, u)
					prev = u
					continue
				}
				m := methodPath.FindStringSubmatch(s)
				if m == nil || m[2] == "" && m[3] == "" || col == 1 && m[3] == "" {
					pending = nil
					continue
				}
				if m[1] != "" {
					method = m[1]
				}
				u := readmeURL{line: r.Line, method: method, port: m[2], path: m[3]}
				switch {
				case u.port == "" && col == 1:
					u.port = rowPort
				case u.port == "":
					u.port = "8080"
				case col == 0:
					rowPort = u.port
				}
				if u.path == "" {
					u.path = "/"
				}
				if u.method == "" {
					u.method = "GET"
				}
				for _, pm := range pending {
					v := u
					v.method = pm
					urls = append(urls, v)
				}
				pending = nil
				urls = append(urls, u)
				prev = u
			}
		}
	}
	return urls
}

var errCodeRE = regexp.MustCompile(`^\s*\{"error":\{"code":"([a-z_]+)"|data-code="([a-z_]+)"`)

// errCode is the stable code of an egate JSON error body or error page,
// or "".
func errCode(body string) string {
	if m := errCodeRE.FindStringSubmatch(body); m != nil {
		return m[1] + m[2]
	}
	return ""
}

// beside is a path that is not a route, next to path: its last part that
// is not a {placeholder} made up (/aa/{id} → /aa-no-such-route/{id}).
func beside(path string) string {
	parts := strings.Split(path, "/")
	for i := len(parts) - 1; i >= 0; i-- {
		if parts[i] != "" && !strings.HasPrefix(parts[i], "{") {
			parts[i] += "-no-such-route"
			return strings.Join(parts, "/")
		}
	}
	return "/no-such-route"
}

// readmeMethods: URLs the table names without a method that answer
// another (a GET of a POST-only API is 405), with the reason.
var readmeMethods = map[string]struct{ method, why string }{
	":8081/v1/holds":     {"POST", "the holds API places a hold (POST /v1/holds, platform/ebank/README.md)"},
	":8081/v1/transfers": {"POST", "the transfers API posts a transfer"},
}

// TestREADMEURLs starts the demo and makes the request each URL of the
// README's "egate demo" table describes: every one must be served (no 405,
// no 5xx, no 404 but a handler's own, with a refusal code the made-up path
// does not get), and a made-up path beside it must not be, so that a
// catch-all (a login redirect, a 401 for a whole prefix) cannot pass for a
// route. The README is read at run time: a row added for a route that does
// not exist fails. The files under var/ that the section names must be there.
func TestREADMEURLs(t *testing.T) {
	testenv.NeedCommand(t, "softhsm2-util", "softhsm2")
	doc := readmetest.Load(t)
	urls := readmeURLs(t, doc)
	if len(urls) < 40 {
		t.Fatalf("found %d URLs in the table; the parser lost them", len(urls))
	}
	varDir := t.TempDir()
	base, out, stop := startDemo(t, varDir)
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	cfg := lastCfg
	hosts := map[string]string{"8080": base, "8081": "http://" + cfg.Platforms.Ebank.Listen,
		"8082": "http://" + cfg.Platforms.Mall.Listen, "8083": "http://" + cfg.Platforms.Messenger.Listen}

	// alice logged in to ebank at level 2, and so (single sign-on) to the
	// mall and the messenger: the platforms' pages answer her, not a
	// redirect that any path would get.
	c, _ := ebankLogin(t, base, varDir, "alice", "13800138000", func(string, string) {})
	c.Timeout = 30 * time.Second
	for _, p := range []string{"8082", "8083"} {
		resp, err := c.Get(hosts[p] + "/login")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	// The placeholders: alice's current account; an intent authorized as
	// the demo's back-end client; the session of the QR the ATM shows
	// once its button is pressed.
	acct := regexp.MustCompile(`Accounts\s+alice\s+current (\d+)`).FindStringSubmatch(out.String())
	if acct == nil {
		t.Fatalf("the demo does not print alice's accounts:\n%s", out.String())
	}
	secret, err := os.ReadFile(filepath.Join(varDir, backendSecretFile))
	if err != nil {
		t.Fatal(err)
	}
	backend := strings.TrimSpace(string(secret))
	tc := &txclient.Client{BaseURL: base, ID: BackendClientID, Secret: backend}
	pid := regexp.MustCompile(`passport_id\\":\\"([^\\]+)\\"`).FindStringSubmatch(out.String())
	if pid == nil {
		t.Fatalf("the demo prints no passport id of alice:\n%s", out.String())
	}
	d, err := tc.Authorize(context.Background(), intent.Intent{Customer: pid[1], Channel: intent.Web, Kind: intent.Transfer, Payer: DemoAccount,
		Payee: "6222020000000002", Amount: 100_00, Currency: "CNY", IdempotencyKey: "readme-" + randomHex(4)})
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	choose, err := http.Post(base+"/sim/atm/choose-qr", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	choose.Body.Close()
	qr, err := simphone.ScanImage(filepath.Join(varDir, "atm-qr.png"))
	if err != nil {
		t.Fatalf("the ATM's QR button (%d) left no readable var/atm-qr.png: %v", choose.StatusCode, err)
	}
	// /chats/{id}: alice's conversation with customer service, which
	// /service opens. Other {id}s and {token} (AA collections, receive
	// codes) stand for ids nobody made: the page answers an unknown one
	// with its own refusal code, which a route that is not there cannot.
	resp, err := c.Get(hosts["8083"] + "/service")
	svc := readBody(t, resp, err)
	chat := regexp.MustCompile(`/chats/([A-Za-z0-9_-]+)`).FindStringSubmatch(svc)
	if chat == nil {
		t.Fatalf("the messenger's /service links no conversation:\n%.2000s", svc)
	}
	replacer := strings.NewReplacer("{number}", acct[1], "{hash}", d.Intent, "{session}", qr[strings.LastIndex(qr, ":")+1:],
		"{id}", "readme-unknown", "{token}", "readme-unknown")
	subst := func(p string) string {
		if rest, ok := strings.CutPrefix(p, "/chats/{id}"); ok {
			p = "/chats/" + chat[1] + rest
		}
		return replacer.Replace(p)
	}

	noRedirect := &http.Client{Jar: c.Jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(u readmeURL, path string) (int, string) {
		t.Helper()
		var body io.Reader
		if u.method != "GET" {
			body = strings.NewReader("{}")
		}
		req, err := http.NewRequest(u.method, hosts[u.port]+path, body)
		if err != nil {
			t.Fatal(err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if strings.HasPrefix(path, "/v1/") {
			req.SetBasicAuth(BackendClientID, backend) // back-end clients only (HTTP Basic)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatalf("%v: %v", u, err)
		}
		defer resp.Body.Close()
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			return resp.StatusCode, "" // a live stream: its status is the answer
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(b)
	}
	for _, u := range urls {
		if m, ok := readmeMethods[":"+u.port+u.path]; ok {
			u.method = m.method
		}
		path := subst(u.path)
		if strings.ContainsAny(path, "{}…") {
			t.Errorf("%v: no substitution for a placeholder (add one to subst)", u)
			continue
		}
		code, b := do(u, path)
		missing := subst(beside(u.path))
		mc, mb := do(u, missing)
		// A 404 is the handler's when it names what is missing in a code
		// of its own (POST /v1/tx/{hash}/proof without a challenge:
		// unknown_challenge; /aa/{id} of an unknown id), not the one a
		// path that does not exist gets.
		handlers404 := code == http.StatusNotFound && errCode(b) != "" && errCode(b) != errCode(mb)
		if code == http.StatusNotFound && !handlers404 || code == http.StatusMethodNotAllowed || code >= 500 {
			t.Errorf("%v: not served: %d %.300s", u, code, b)
			continue
		}
		if mc != http.StatusNotFound && mc != http.StatusMethodNotAllowed {
			t.Errorf("%v: answers %d, and a path that does not exist, %s, answers %d (%.300s): the test cannot tell the route is there", u, code, missing, mc, mb)
		}
		t.Logf("%v → %d", u, code)
	}

	// Every file under var/ the section names is there.
	sec, _ := doc.Section("egate demo")
	files := 0
	for _, s := range readmetest.CodeSpans(sec.Text) {
		f, ok := strings.CutPrefix(s, "var/")
		if !ok || strings.ContainsAny(f, " <…") {
			continue
		}
		files++
		if _, err := os.Stat(filepath.Join(varDir, f)); err != nil {
			t.Errorf("README names var/%s, which the demo did not make: %v", f, err)
		}
	}
	if files < 10 {
		t.Errorf("the section names %d files under var/; the parser lost them", files)
	}
}

// TestREADMEPlatformLevels holds the README's "ebank asks for level 2 …,
// mall and messenger for level 1" to the platforms' configured levels,
// which the demo runs with (loginThroughEbank sees ebank ask level 2).
func TestREADMEPlatformLevels(t *testing.T) {
	t.Parallel()
	doc := readmetest.Load(t)
	text := strings.Join(strings.Fields(doc.Text), " ")
	said := map[string]int{}
	re := regexp.MustCompile(`\b(ebank|mall|messenger)(?: and (ebank|mall|messenger))? (?:asks )?for level (\d)\b`)
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		for _, p := range m[1:3] {
			if p != "" {
				said[p] = int(m[3][0] - '0')
			}
		}
	}
	cfg := config.Defaults()
	for _, n := range platform.Names {
		p, err := cfg.Platforms.ByName(n)
		if err != nil {
			t.Fatal(err)
		}
		if l, ok := said[n]; !ok {
			t.Errorf("README does not say which level %s asks for (\"%s asks for level N\")", n, n)
		} else if l != p.Level {
			t.Errorf("README: %s asks for level %d; platforms.%s.level is %d", n, l, n, p.Level)
		}
	}
}
