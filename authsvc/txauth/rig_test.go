package txauth

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/alerts"
	"github.com/egate-bank/egate/authsvc/backend"
	"github.com/egate-bank/egate/authsvc/factors"
	"github.com/egate-bank/egate/authsvc/gridcard"
	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/oath"
	"github.com/egate-bank/egate/authsvc/risk"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	devotp "github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/internal/store"
)

func TestMain(m *testing.M) { hsmtest.Main(m) }

// clock is the tests' clock; TOTP codes move with it.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testRules are the rules of these tests: one rule per action on values
// no other case uses.
const testRules = `rules:
  - name: blocked-payee
    when: intent.payee == "6222000000009999"
    action: deny
    reason: Payments to this account are blocked.
  - name: odd-amount
    when: intent.amount == 123400
    action: review
    reason: This amount is checked by a person.
  - name: aa-step-up
    when: intent.kind == "aa_share"
    action: step-up
    level: 3
    reason: Shares of a collection are confirmed with a token.
  - name: watch-refunds
    when: intent.kind == "refund"
    action: deny
    dry-run: true
    reason: Refunds would be refused.
`

const (
	clientID     = "ebank"
	clientSecret = "0123456789abcdef0123456789abcdef0123456789abcdef"
	payer        = "6222000000000001"
	payee        = "6222000000000002"
	mobile       = "13912345678"
)

var totpSeed = []byte("12345678901234567890")

// rig is one service over one database with the SMS, grid card and OTP
// tools on SoftHSM2, served over HTTP to one back-end client.
type rig struct {
	db       *store.DB
	clk      *clock
	set      *factors.Set
	svc      *Service
	accounts *MapAccounts
	srv      *httptest.Server
	c        *txclient.Client
}

type rigOpt struct {
	hsm   *hsm.Service
	clk   *clock
	rules string
	audit Auditor // nil: the database's audit log
}

func newRig(t testing.TB, db *store.DB, o rigOpt) *rig {
	t.Helper()
	if o.clk == nil {
		// Mid-morning in Shanghai, at the start of a TOTP step.
		o.clk = &clock{t: time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)}
	}
	if o.hsm == nil {
		o.hsm = hsmtest.Open(t)
	}
	if o.rules == "" {
		o.rules = testRules
	}
	r := &rig{db: db, clk: o.clk, accounts: NewMapAccounts(nil)}
	set, err := factors.Build(context.Background(), factors.Config{Enabled: []string{factors.SMS, factors.GridCard, factors.OTP}, SMS: factors.SMSConfig{DevSink: true, PerCustomer: 1000, PerPhone: 1000, PerIP: 1000},
		// A grid card reserves an attempt before it compares, so a card
		// allows max-attempts answers in flight at once, right ones too:
		// TestLimitsUnderParallelProofs answers 8 challenges of one card
		// at once, which the default 5 would report as locked.
		GridCard: factors.GridCardConfig{MaxAttempts: 20}},
		factors.Deps{DB: db, HSM: o.hsm, Now: o.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	r.set = set
	eng, err := risk.NewEngine(nil, map[string][]byte{"test.yaml": []byte(o.rules)})
	if err != nil {
		t.Fatal(err)
	}
	r.svc, err = New(Config{}, Deps{DB: db, Tools: FromFactors(set), Accounts: r.accounts, Risk: eng, Audit: o.audit, Now: o.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := backend.New([]backend.ClientConfig{{ID: clientID, SecretSHA256: backend.HashSecret([]byte(clientSecret)),
		Scopes: []string{backend.ScopeTxAuthorize, backend.ScopeTxExecute, backend.ScopeAlertsBalance}}})
	if err != nil {
		t.Fatal(err)
	}
	r.srv = httptest.NewServer(r.svc.Handler(reg))
	t.Cleanup(r.srv.Close)
	// No Transport: txclient's pooled one, as the platforms call egate.
	r.c = &txclient.Client{BaseURL: r.srv.URL, ID: clientID, Secret: clientSecret, HTTP: &http.Client{Timeout: 30 * time.Second}}
	return r
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b))
}

// customer is one customer with a payer account; tools say which tools
// they get: "gridcard", "otp".
type customer struct {
	pid   string
	payer string
	card  *gridcard.Card
}

func (r *rig) customer(t testing.TB, tools ...string) *customer {
	t.Helper()
	ctx := context.Background()
	c := &customer{pid: "P" + randHex(8), payer: "6222" + randHex(6)}
	_, err := r.db.Exec(ctx, `INSERT INTO customers (passport_id, login_name, mobile, reserved_message, password_hash, password_changed_ms, created_ms)
		VALUES (?, ?, ?, 'x', 'x', 0, ?)`, c.pid, strings.ToLower(c.pid), mobile, r.clk.Now().Add(-400*24*time.Hour).UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	r.accounts.Add(c.pid, c.payer)
	for _, tool := range tools {
		switch tool {
		case "gridcard":
			if c.card, err = r.set.GridCard.Issue(ctx, c.pid); err != nil {
				t.Fatal(err)
			}
		case "otp":
			r.importTOTP(t, c.pid)
		default:
			t.Fatalf("no tool %q", tool)
		}
	}
	return c
}

// importTOTP imports a TOTP token (the seed wrapped in SoftHSM) through
// PSKC and assigns it to pid.
func (r *rig) importTOTP(t testing.TB, pid string) {
	t.Helper()
	r.importKey(t, pid, devotp.Params{Kind: devotp.KindTOTP, Hash: crypto.SHA1, Digits: 6, Period: 30 * time.Second}, totpSeed)
}

// importKey imports one OATH key (the seed wrapped in SoftHSM) through
// PSKC and assigns it to pid.
func (r *rig) importKey(t testing.TB, pid string, params devotp.Params, seed []byte) {
	t.Helper()
	ctx := context.Background()
	serial := "T" + randHex(4)
	path := filepath.Join(t.TempDir(), "t.pskc")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pskc.NewWriter(f, pskc.WriterOptions{})
	if err == nil {
		err = w.Add(&pskc.Key{ID: "1", Serial: serial, Manufacturer: "Acme", Secret: append([]byte(nil), seed...), Params: params})
	}
	if err == nil {
		err = w.Close()
	}
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.set.OTP.ImportPSKC(ctx, func() (io.ReadCloser, error) { return os.Open(path) }, oath.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.set.OTP.Assign(ctx, serial, "", pid); err != nil {
		t.Fatal(err)
	}
}

// totp is the token's code now, computed by oathtool (an independent
// implementation), or by devices/otp when oathtool is not wanted.
func (r *rig) totp(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("oathtool", "--totp", "-d", "6", "-N", r.clk.Now().UTC().Format("2006-01-02 15:04:05 UTC"), hex.EncodeToString(totpSeed)).Output()
	if err != nil {
		t.Fatalf("oathtool: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func (r *rig) totpSoft(t testing.TB) string {
	p := devotp.Params{Kind: devotp.KindTOTP, Hash: crypto.SHA1, Digits: 6, Period: 30 * time.Second}
	c, err := p.TOTP().Code(context.Background(), devotp.SoftwareMAC{Key: totpSeed}, r.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// gridAnswer answers a grid-card challenge from the card.
func gridAnswer(t testing.TB, c *customer, ch txclient.Challenge) string {
	t.Helper()
	var out []string
	for _, cell := range strings.Split(string(ch.Data), ",") {
		code, ok := c.card.Code(cell)
		if !ok {
			t.Fatalf("cell %q not on the card", cell)
		}
		out = append(out, code)
	}
	return strings.Join(out, " ")
}

var smsCode = regexp.MustCompile(`\] (\d{6}) is your code to (.*)\. Valid`)

// smsAnswer is the code of the newest SMS whose text names what.
func (r *rig) smsAnswer(t testing.TB, what string) string {
	t.Helper()
	msgs, err := r.set.SMSSink.List(context.Background(), mobile, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if sm := smsCode.FindStringSubmatch(m.Body); sm != nil && strings.Contains(sm[2], what) {
			return sm[1]
		}
	}
	t.Fatalf("no SMS naming %q", what)
	return ""
}

func (c *customer) intent(amount int64, key string) intent.Intent {
	return intent.Intent{Customer: c.pid, Channel: intent.Web, Kind: intent.Transfer, Payer: c.payer, Payee: payee, Amount: amount,
		Currency: "CNY", Device: "fp-1", ClientIP: "192.0.2.7", IdempotencyKey: key}
}

// prove begins a challenge with tool and answers it.
func (r *rig) prove(t testing.TB, c *customer, in intent.Intent, tool string) (txclient.Grant, error) {
	t.Helper()
	ctx := context.Background()
	h := in.HashHex()
	ch, err := r.c.Challenge(ctx, h, txclient.ChallengeRequest{Factor: tool})
	if err != nil {
		return txclient.Grant{}, err
	}
	return r.c.Proof(ctx, h, txclient.ProofRequest{ChallengeID: ch.ID, Response: r.answer(t, c, ch), Intent: &in})
}

func (r *rig) answer(t testing.TB, c *customer, ch txclient.Challenge) string {
	switch ch.Factor {
	case "gridcard":
		return gridAnswer(t, c, ch)
	case "otp":
		r.clk.Add(30 * time.Second) // a fresh code: the last one is spent
		return r.totp(t)
	case "sms":
		return r.smsAnswer(t, ch.Text)
	}
	t.Fatalf("no answer for %s", ch.Factor)
	return ""
}

func (r *rig) usage(t testing.TB, pid string) int64 {
	t.Helper()
	u, err := r.svc.Counter().Usage(context.Background(), pid)
	if err != nil {
		t.Fatal(err)
	}
	return u.Day
}

func (r *rig) count(t testing.TB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := r.db.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// riskAlerts are the customer's risk alerts.
func (r *rig) riskAlerts(t testing.TB, pid string) []alerts.Alert {
	t.Helper()
	all, err := alerts.New(r.db, nil).ForCustomer(context.Background(), pid, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []alerts.Alert
	for _, a := range all {
		if a.Kind == alerts.KindTxRisk {
			out = append(out, a)
		}
	}
	return out
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := txclient.Code(err); got != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
	var ae *txclient.APIError
	if errors.As(err, &ae) && ae.Message == "" {
		t.Fatalf("error %s without a message", code)
	}
}

type intentAlias = intent.Intent

// post sends body to path as the rig's client and returns the status and
// error code.
func post(t testing.TB, r *rig, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.srv.URL+path, strings.NewReader(body))
	req.SetBasicAuth(clientID, clientSecret)
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode >= 400 && e.Error.Message == "" {
		t.Fatalf("%d without a message", resp.StatusCode)
	}
	return resp.StatusCode, e.Error.Code
}
