package demo

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/limits"
	"github.com/egate-bank/egate/authsvc/orders"
	"github.com/egate-bank/egate/authsvc/txauth"
	"github.com/egate-bank/egate/authsvc/wdpin"
	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/platform/ebank/ledger"
	simphone "github.com/egate-bank/egate/simulators/phone"
)

// wdRig drives the demo's QR withdrawal as a customer does: the ATM's
// button, the QR image scanned with gozxing, the phone app's two posts, the
// PIN typed on the ATM's PIN pad when the phone says so.
type wdRig struct {
	t                *testing.T
	base, varDir     string
	st               *simphone.State
	appPIN, wdPIN    string
	current, savings string
	db               *store.DB
	pp               interface {
		Failures(context.Context, string, string) (int, error)
	}
	alice string
	// lang is the app's language for the next withdrawals; shown is the
	// text the app was last asked to confirm.
	lang, shown string
}

// wdUI is the customer at the phone: confirms, gives the app PIN, and types
// typed on the ATM's PIN pad once the app says to (nothing when typed is "").
type wdUI struct {
	r     *wdRig
	typed url.Values
	shown string
}

func (u *wdUI) ShowText(text string, level int)       { u.shown = text }
func (u *wdUI) Confirm(context.Context) (bool, error) { return true, nil }
func (u *wdUI) PIN(context.Context) ([]byte, error)   { return []byte(u.r.appPIN), nil }
func (u *wdUI) Say(msg string) {
	if strings.Contains(msg, "PIN pad") && u.typed != nil {
		u.r.post("/sim/atm/pin", u.typed, http.StatusNoContent)
	}
}

func (r *wdRig) post(path string, form url.Values, want int) string {
	r.t.Helper()
	resp, err := http.PostForm(r.base+path, form)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		r.t.Fatalf("POST %s: %d %s, want %d", path, resp.StatusCode, b, want)
	}
	return string(b)
}

// choose presses the ATM's QR withdrawal button and scans the QR image.
func (r *wdRig) choose() string {
	r.t.Helper()
	r.post("/sim/atm/choose-qr", nil, http.StatusNoContent)
	qr, err := simphone.ScanImage(filepath.Join(r.varDir, "atm-qr.png"))
	if err != nil {
		r.t.Fatal(err)
	}
	if !strings.HasPrefix(qr, "egate-wd:1:"+DemoATM+":") {
		r.t.Fatalf("the ATM's QR says %q", qr)
	}
	return qr
}

func (r *wdRig) withdraw(qr, account string, fen int64, typed url.Values) (*simphone.WithdrawalResult, error) {
	ui := &wdUI{r: r, typed: typed}
	defer func() { r.shown = ui.shown }()
	return r.st.Withdraw(context.Background(), &http.Client{Timeout: 3 * time.Minute}, r.base,
		simphone.Withdrawal{QR: qr, Account: account, AmountFen: fen, Lang: r.lang}, ui)
}

type atmCounts struct {
	Taken  int `json:"taken"`
	Txns   int `json:"txns"`
	AtExit int `json:"at_exit"`
}

func (r *wdRig) atm() atmCounts {
	var c atmCounts
	getJSON(r.t, r.base+"/sim/atm/state", &c)
	return c
}

func (r *wdRig) balances() [2]int64 {
	r.t.Helper()
	l := ledger.New(r.db, nil)
	var out [2]int64
	for i, n := range []string{r.current, r.savings} {
		a, err := l.Account(context.Background(), n)
		if err != nil {
			r.t.Fatal(err)
		}
		out[i] = a.Available()
	}
	return out
}

type wdView struct {
	State     string `json:"state"`
	ExpiresMS int64  `json:"expires_ms"`
	Captured  int64  `json:"captured_fen"`
}

func (r *wdRig) view(qr string) wdView {
	var v wdView
	getJSON(r.t, r.base+"/atm/withdrawals/"+qr[strings.LastIndex(qr, ":")+1:], &v)
	return v
}

// fullView reads the withdrawal as the bank's ATM application (the demo
// back-end client): an anonymous read shows its state only.
func (r *wdRig) fullView(qr string) wdView {
	r.t.Helper()
	secret, err := os.ReadFile(filepath.Join(r.varDir, backendSecretFile))
	if err != nil {
		r.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, r.base+"/atm/withdrawals/"+qr[strings.LastIndex(qr, ":")+1:], nil)
	req.SetBasicAuth(BackendClientID, strings.TrimSpace(string(secret)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	var v wdView
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != http.StatusOK {
		r.t.Fatalf("the ATM application's read: %d, %v", resp.StatusCode, err)
	}
	var anon map[string]any
	getJSON(r.t, req.URL.String(), &anon)
	if _, shown := anon["captured_fen"]; shown || anon["state"] != v.State {
		r.t.Fatalf("the anonymous read %v shows more than the state %s", anon, v.State)
	}
	return v
}

func (r *wdRig) waitState(qr, state string) {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for r.view(qr).State != state {
		if time.Now().After(deadline) {
			r.t.Fatalf("withdrawal %s is %s, not %s after 30 s", qr, r.view(qr).State, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func pin(digits string) url.Values { return url.Values{"digits": {digits}} }

// TestDemoQRWithdrawal takes cash out of the demo ATM (simulated on a pty,
// reached through the agent over mutual TLS) with the phone simulator, on
// SQLite and on PostgreSQL, and refuses each bad input with its code on the
// phone: nothing dispensed (the ATM's own counts), nothing debited (the
// ledger's available balances).
func TestDemoQRWithdrawal(t *testing.T) {
	testenv.NeedCommand(t, "softhsm2-util", "softhsm2")
	const ttl = 10 * time.Second
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			varDir := t.TempDir()
			var dbc store.Config
			tune := func(c *config.Config) {
				c.Demo.WithdrawalTTL = ttl
				if engine == "postgres" {
					if dbc.DSN == "" {
						dbc = store.Config{Driver: store.Postgres, DSN: storetest.PostgresDSN(t)}
					}
					c.Database = dbc
				}
			}
			if engine == "postgres" {
				testenv.NeedEnv(t, "EGATE_TEST_PG_DSN", "PostgreSQL")
			}
			base, out, stop := startDemo(t, varDir, tune)
			defer func() {
				if err := stop(); err != nil {
					t.Errorf("demo: %v", err)
				}
			}()
			db, err := store.Open(context.Background(), lastCfg.Database)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			r := newWDRig(t, base, varDir, out.String(), db)
			runWithdrawalCases(t, r, ttl)
		})
	}
}

func newWDRig(t *testing.T, base, varDir, out string, db *store.DB) *wdRig {
	t.Helper()
	r := &wdRig{t: t, base: base, varDir: varDir, db: db}
	st, err := simphone.Load(filepath.Join(varDir, alicePhoneFile))
	if err != nil {
		t.Fatal(err)
	}
	r.st, r.alice = st, st.PassportID
	read := func(f string) string {
		b, err := os.ReadFile(filepath.Join(varDir, f))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	r.appPIN, r.wdPIN = read(aliceAppPINFile), read(aliceWdPINFile)
	accts, err := ledger.New(db, nil).Accounts(context.Background(), r.alice)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accts {
		switch a.Kind {
		case ledger.KindCurrent:
			r.current = a.Number
		case ledger.KindSavings:
			r.savings = a.Number
		}
	}
	// The recipe printed names the files and alice's current account.
	for _, want := range []string{"egate sim phone scan " + filepath.Join(varDir, "atm-qr.png"), "--account " + r.current, aliceWdPINFile, "/sim/atm/choose-qr"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the demo's recipe lacks %q:\n%s", want, out)
		}
	}
	return r
}

func runWithdrawalCases(t *testing.T, r *wdRig, ttl time.Duration) {
	// Opening a session is the ATM application's (the button does it as
	// demo-backend): an anonymous caller gets 401 and the ATM shows no QR.
	resp, err := http.Post(r.base+"/atm/withdrawals", "application/json", strings.NewReader(`{"atm":"`+DemoATM+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") || !strings.Contains(string(b), `"unauthorized"`) {
		t.Fatalf("an anonymous open on the demo: %d %s", resp.StatusCode, b)
	}
	if resp, err = http.Get(r.base + "/sim/atm/"); err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(page), "egate-wd:") {
		t.Fatalf("an anonymous open put a QR on the demo ATM:\n%s", page)
	}

	// The happy path first: 300 yuan out, captured, alerted.
	before, counts := r.balances(), r.atm()
	qr := r.choose()
	r.screenShowsQR()
	res, err := r.withdraw(qr, r.current, 300_00, pin(r.wdPIN))
	if err != nil {
		t.Fatalf("withdrawal: %v", err)
	}
	if res.CashOut != 300_00 {
		t.Fatalf("withdrawal: %+v", res)
	}
	r.waitState(qr, "CAPTURED")
	if after := r.balances(); after[0] != before[0]-300_00 || after[1] != before[1] {
		t.Fatalf("balances %v → %v, want 300 yuan less on the current account", before, after)
	}
	if c := r.atm(); c.Taken != counts.Taken+3 || c.Txns != counts.Txns+1 {
		t.Fatalf("ATM counts %+v → %+v, want 3 notes of 100 taken in one transaction", counts, c)
	}
	// The balance alert reaches alice's phone by SMS (the demo's sink).
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(r.base + "/sim/sms/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "-300.00 yuan (cash withdrawal at ATM "+DemoATM+")") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no balance alert of the withdrawal in the SMS sink:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}

	type refusal struct {
		name   string
		qr     func() string // the QR the phone scans
		acct   func() string
		fen    int64
		typed  url.Values
		status int
		code   string
		pinErr int // wrong PINs counted by it
		then   func()
	}
	var fresh string
	cases := []refusal{
		{name: "replayed QR", qr: func() string { return qr }, acct: func() string { return r.current }, fen: 100_00,
			status: http.StatusConflict, code: "session_used"},
		{name: "foreign QR", qr: func() string {
			fresh = r.choose()
			return strings.Replace(fresh, DemoATM, "ATM-OTHER-09", 1)
		}, acct: func() string { return r.current }, fen: 100_00, status: http.StatusForbidden, code: "foreign_session"},
		{name: "amount not a multiple of the smallest note", qr: r.choose, acct: func() string { return r.current }, fen: 305_00,
			status: http.StatusUnprocessableEntity, code: "cannot_make_amount"},
		{name: "amount the cassettes cannot make", qr: r.choose, acct: func() string { return r.current }, fen: 95_000_00,
			status: http.StatusUnprocessableEntity, code: "cannot_make_amount"},
		{name: "amount over the balance", qr: r.choose, acct: func() string { return r.current }, fen: 49_800_00,
			status: http.StatusUnprocessableEntity, code: "insufficient_funds"},
		// alice lowered her own limits to 500 yuan a withdrawal at every
		// level: 600 yuan fits no level (in the demo's default table a
		// larger amount trips the new-customer review rule first).
		{name: "amount over the limit", qr: func() string { r.ownLimit(500_00); return r.choose() }, acct: func() string { return r.current }, fen: 600_00,
			status: http.StatusForbidden, code: "denied", then: func() { r.ownLimit(0) }},
		{name: "another customer's account", qr: r.choose, acct: func() string { return "6299000000000000001" }, fen: 100_00,
			status: http.StatusForbidden, code: "not_your_account"},
		{name: "wrong withdrawal PIN", qr: r.choose, acct: func() string { return r.current }, fen: 100_00, typed: pin("0000000"),
			status: http.StatusForbidden, code: "wrong_pin", pinErr: 1},
		{name: "PIN entry cancelled", qr: r.choose, acct: func() string { return r.current }, fen: 100_00, typed: url.Values{"cancel": {"1"}},
			status: http.StatusForbidden, code: "pin_cancelled"},
		{name: "expired QR", qr: func() string {
			q := r.choose()
			end := time.UnixMilli(r.view(q).ExpiresMS)
			for time.Now().Before(end.Add(100 * time.Millisecond)) {
				time.Sleep(100 * time.Millisecond) // the customer dawdles past the session's end
			}
			return q
		}, acct: func() string { return r.current }, fen: 100_00, status: http.StatusGone, code: "session_expired"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r.t = t
			before, counts := r.balances(), r.atm()
			fails, _ := r.failures()
			_, err := r.withdraw(tc.qr(), tc.acct(), tc.fen, tc.typed)
			if tc.then != nil {
				tc.then()
			}
			var ae *orders.APIError
			if !errors.As(err, &ae) || ae.Status != tc.status || ae.Code != tc.code || ae.Message == "" {
				t.Fatalf("err = %#v (%v), want %d %s with a message", ae, err, tc.status, tc.code)
			}
			t.Logf("the phone says: %s", ae.Message)
			if strings.Contains(ae.Message, r.wdPIN) {
				t.Fatalf("the message shows the PIN: %s", ae.Message)
			}
			if after := r.balances(); after != before {
				t.Fatalf("available balances %v → %v: something was held or debited", before, after)
			}
			if c := r.atm(); c.Taken != counts.Taken || c.Txns != counts.Txns || c.AtExit != 0 {
				t.Fatalf("ATM counts %+v → %+v: something was dispensed", counts, c)
			}
			if n, _ := r.failures(); n != fails+tc.pinErr {
				t.Fatalf("wrong PINs counted %d → %d, want +%d", fails, n, tc.pinErr)
			}
		})
	}
	r.t = t

	// Cash at the exit: the customer does not take it; a second withdrawal
	// on the ATM is refused until the cash is taken.
	// (This one by an app in Chinese: it confirms and signs the Chinese text.)
	r.post("/sim/atm/faults", url.Values{"customer-takes": {"false"}}, http.StatusNoContent)
	qr = r.choose()
	r.lang = "zh-CN"
	if res, err := r.withdraw(qr, r.current, 100_00, pin(r.wdPIN)); err != nil || res.State != "PRESENTED" {
		t.Fatalf("withdrawal left at the exit: %+v, %v", res, err)
	}
	r.lang = ""
	if !strings.HasPrefix(r.shown, "在 ") || !strings.Contains(r.shown, " 取款 100.00 元（取款账户 ") {
		t.Fatalf("the app in Chinese was asked to confirm %q", r.shown)
	}
	before, counts = r.balances(), r.atm()
	resp, err = http.PostForm(r.base+"/sim/atm/choose-qr", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "cash is waiting at the ATM's exit") {
		t.Fatalf("QR withdrawal with cash at the exit: %d %s", resp.StatusCode, b)
	}
	if after, c := r.balances(), r.atm(); after != before || c.Txns != counts.Txns {
		t.Fatalf("the refused second withdrawal moved something: %v → %v, %+v → %+v", before, after, counts, c)
	}
	r.post("/sim/atm/take", nil, http.StatusNoContent)
	r.waitState(qr, "CAPTURED")
	v := r.fullView(qr)
	if v.Captured != 100_00 {
		t.Fatalf("captured %d fen, want 10000", v.Captured)
	}

	// A jam before the first note: nothing out, the hold released, and the
	// intent cancelled, which gives alice's limit usage back.
	usage := func() int64 {
		// the day as txauth counts it (the demo's time zone), not UTC's:
		// between 16:00 and 24:00 UTC those are different days
		loc, err := time.LoadLocation(txauth.DefaultTimeZone)
		if err != nil {
			t.Fatal(err)
		}
		c, err := limits.NewCounter(r.db, limits.Default(), loc, nil)
		if err != nil {
			t.Fatal(err)
		}
		u, err := c.Usage(context.Background(), r.alice)
		if err != nil {
			t.Fatal(err)
		}
		return u.Day
	}
	before, counts, used := r.balances(), r.atm(), usage()
	if used < 400_00 {
		t.Fatalf("alice's limit usage today is %d fen after 400 yuan taken out", used)
	}
	r.post("/sim/atm/faults", url.Values{"jam-after": {"0"}}, http.StatusNoContent)
	qr = r.choose()
	if res, err := r.withdraw(qr, r.current, 100_00, pin(r.wdPIN)); err != nil || res.State != "NOT_DISPENSED" || res.CashOut != 0 {
		t.Fatalf("a jam before the first note: %+v, %v", res, err)
	}
	for deadline := time.Now().Add(30 * time.Second); usage() != used; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("alice's limit usage today is %d fen after a withdrawal that paid nothing, was %d", usage(), used)
		}
	}
	if after, c := r.balances(), r.atm(); after != before || c.Taken != counts.Taken {
		t.Fatalf("a jammed withdrawal moved something: %v → %v, %+v → %+v", before, after, counts, c)
	}
}

// screenShowsQR checks that the ATM's screen page, as a browser reads it
// under /sim/atm/, shows the QR image.
func (r *wdRig) screenShowsQR() {
	r.t.Helper()
	resp, err := http.Get(r.base + "/sim/atm/")
	if err != nil {
		r.t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`<img src="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		r.t.Fatalf("the ATM's screen shows no image:\n%s", page)
	}
	u, _ := url.Parse(r.base + "/sim/atm/")
	src, _ := u.Parse(string(m[1]))
	resp, err = http.Get(src.String())
	if err != nil {
		r.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" {
		r.t.Fatalf("the screen's QR image %s: %d %s", src, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// ownLimit sets alice's own per-transaction limit at every level (0: the
// bank's).
func (r *wdRig) ownLimit(fen int64) {
	r.t.Helper()
	c, err := limits.NewCounter(r.db, limits.Default(), nil, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, l := range limits.Default() {
		if fen > 0 && l.PerTxn > 0 {
			l.PerTxn = min(l.PerTxn, fen)
		}
		if err := c.SetOwn(context.Background(), r.alice, l); err != nil {
			r.t.Fatal(err)
		}
	}
}

func (r *wdRig) failures() (int, error) {
	var n int
	err := r.db.QueryRow(context.Background(), `SELECT COALESCE(SUM(n), 0) FROM auth_failures WHERE subject = ? AND factor = ?`, "pid:"+r.alice, wdpin.Factor).Scan(&n)
	return n, err
}
