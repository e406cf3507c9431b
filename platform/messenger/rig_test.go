package messenger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

	"github.com/egate-bank/egate/authsvc/backend"
	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/txauth"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// fakeAuth stands in for txauth in these tests of the pages (txauth is
// tested against its real stacks; internal/demo runs the messenger on it):
// level 2 with an SMS code, the code 123456, a single-use grant bound to
// the intent's hash.
type fakeAuth struct {
	mu        sync.Mutex
	decision  string // allow (default), deny, review
	used      map[string]bool
	authorize int
	alerts    []txclient.BalanceAlert
	// challengeErr, when set, is what Challenge answers (the SMS service's
	// send limit, say).
	challengeErr error
	// proofErr, when set, is what Proof answers (a limit reached).
	proofErr error
	// cancelled are the intents cancelled.
	cancelled []string
	// intents are the intents authorized, by hash.
	intents map[string]intent.Intent
}

func (f *fakeAuth) Balance(_ context.Context, a txclient.BalanceAlert) (txclient.AlertPosted, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.alerts = append(f.alerts, a)
	return txclient.AlertPosted{Posted: true}, nil
}

func (f *fakeAuth) Authorize(_ context.Context, in intent.Intent) (txclient.Decision, error) {
	if err := in.Validate(); err != nil {
		return txclient.Decision{}, &txclient.APIError{Status: 400, Code: "invalid_intent", Message: err.Error()}
	}
	f.mu.Lock()
	f.authorize++
	if f.intents == nil {
		f.intents = map[string]intent.Intent{}
	}
	f.intents[in.HashHex()] = in
	f.mu.Unlock()
	d := f.decision
	if d == "" {
		d = txclient.Allow
	}
	return txclient.Decision{Intent: in.HashHex(), Decision: d, Level: 2, Tools: []txclient.Tool{{Name: "sms", Level: 2}, {Name: "otp", Level: 3}},
		Message: "Confirm with an SMS code."}, nil
}

func (f *fakeAuth) Challenge(_ context.Context, hash string, r txclient.ChallengeRequest) (txclient.Challenge, error) {
	if f.challengeErr != nil {
		return txclient.Challenge{}, f.challengeErr
	}
	f.mu.Lock()
	in := f.intents[hash]
	f.mu.Unlock()
	return txclient.Challenge{ID: "c-" + hash, Factor: r.Factor, Level: 2, Prompt: "the code sent to 138****8000", Text: txauth.Text(in)}, nil
}

func (f *fakeAuth) Proof(_ context.Context, hash string, r txclient.ProofRequest) (txclient.Grant, error) {
	if f.proofErr != nil {
		return txclient.Grant{}, f.proofErr
	}
	if r.ChallengeID != "c-"+hash || r.Response != "123456" || r.Intent == nil || r.Intent.HashHex() != hash {
		return txclient.Grant{}, &txclient.APIError{Status: 403, Code: "proof_failed"}
	}
	return txclient.Grant{Token: "g-" + hash, Intent: hash, Level: 2}, nil
}

func (f *fakeAuth) Execute(_ context.Context, grant string, in intent.Intent) (txclient.Executed, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if grant != "g-"+in.HashHex() {
		return txclient.Executed{}, &txclient.APIError{Status: 403, Code: "grant_mismatch"}
	}
	if f.used[grant] {
		return txclient.Executed{}, &txclient.APIError{Status: 409, Code: "grant_used"}
	}
	if f.used == nil {
		f.used = map[string]bool{}
	}
	f.used[grant] = true
	return txclient.Executed{Intent: in.HashHex(), State: "executed", Amount: in.Amount}, nil
}

func (f *fakeAuth) Cancel(_ context.Context, hash, _ string) (txclient.Cancelled, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled = append(f.cancelled, hash)
	return txclient.Cancelled{State: "cancelled"}, nil
}

// clock is a settable test clock.
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

type rig struct {
	t     testing.TB
	db    *store.DB
	l     *ledger.Ledger
	auth  *fakeAuth
	clock *clock
	svc   *Service
	pages *Pages
	srv   *httptest.Server
	ids   map[string]string // login name -> passport id
	acct  map[string]string // login name -> current account
}

const rigSecret = "messenger-test-secret-0123456789abcdef"

// newRig: ebank's ledger and its transfers API (behind the back-end
// client check) on db; alice, bob and carol (and dave, who is in no
// group) with money and messenger profiles; the messenger's pages on an
// httptest server, the customer named by the cookie test_who.
func newRig(t testing.TB, db *store.DB) *rig {
	t.Helper()
	ctx := context.Background()
	r := &rig{t: t, db: db, l: ledger.New(db, nil), auth: &fakeAuth{}, clock: &clock{t: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)},
		ids: map[string]string{}, acct: map[string]string{}}
	if _, err := ebank.EnsureBankAccounts(ctx, r.l); err != nil {
		t.Fatal(err)
	}
	st := &Store{DB: db, Now: r.clock.Now}
	for _, c := range []struct {
		name  string
		money int64
	}{{"alice", 10_000_00}, {"bob", 1_000_00}, {"carol", 1_000_00}, {"dave", 1_000_00}} {
		id := "p-" + c.name
		accts, err := ebank.OpenCustomerAccounts(ctx, r.l, id, c.name, ebank.Opening{Current: c.money})
		if err != nil {
			t.Fatal(err)
		}
		r.ids[c.name], r.acct[c.name] = id, accts[0].Number
		if err := st.Profile(ctx, id, c.name); err != nil {
			t.Fatal(err)
		}
	}
	sum := sha256.Sum256([]byte(rigSecret))
	reg, err := backend.New([]backend.ClientConfig{{ID: "messenger", SecretSHA256: hex.EncodeToString(sum[:]), Scopes: []string{backend.ScopeEbankHolds}}})
	if err != nil {
		t.Fatal(err)
	}
	api := &ebank.API{Holds: &ebank.Holds{Ledger: r.l, Grants: ebank.RequireGrant{}}, OnError: func(_ *http.Request, err error) { t.Errorf("ebank API: %v", err) }}
	bank := httptest.NewServer(reg.Require(backend.ScopeEbankHolds, api.Handler()))
	t.Cleanup(bank.Close)
	r.svc = &Service{Store: st, Hub: &Hub{}, Auth: r.auth, Alerts: r.auth,
		Bank: &EbankAPI{Ledger: r.l, BaseURL: bank.URL, ID: "messenger", Secret: rigSecret}}
	r.pages = &Pages{Svc: r.svc, Poll: time.Hour, Customer: func(req *http.Request) (Customer, bool) {
		c, err := req.Cookie("test_who")
		if err != nil || c.Value == "" {
			return Customer{}, false
		}
		return Customer{ID: "p-" + c.Value, Name: c.Value}, true
	}, OnError: func(_ *http.Request, err error) { t.Errorf("unexpected: %v", err) }}
	r.srv = httptest.NewServer(r.pages.Handler())
	t.Cleanup(r.srv.Close)
	r.pages.PublicURL = r.srv.URL
	return r
}

// balance is the customer's current account's posted balance.
func (r *rig) balance(name string) int64 {
	r.t.Helper()
	a, err := r.l.Account(context.Background(), r.acct[name])
	if err != nil {
		r.t.Fatal(err)
	}
	return a.Balance()
}

func (r *rig) balances() map[string]int64 {
	out := map[string]int64{}
	for n := range r.acct {
		out[n] = r.balance(n)
	}
	return out
}

// checkLedger runs egate admin ledger check's proof.
func (r *rig) checkLedger() {
	r.t.Helper()
	if _, err := ledger.Check(context.Background(), r.db); err != nil {
		r.t.Fatalf("ledger check: %v", err)
	}
}

// browser is a customer's browser (no JavaScript, redirects not followed).
type browser struct {
	t    testing.TB
	c    *http.Client
	base string
}

func (r *rig) as(who string) *browser {
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(r.srv.URL)
	jar.SetCookies(u, []*http.Cookie{{Name: "test_who", Value: who}, {Name: "egate_lang", Value: "en"}})
	return &browser{t: r.t, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, base: r.srv.URL}
}

func (b *browser) do(req *http.Request) (int, string, http.Header) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest("GET", b.base+path, nil)
	s, body, _ := b.do(req)
	return s, body
}

func (b *browser) post(path string, v url.Values) (int, string, string) {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.base+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	s, body, h := b.do(req)
	return s, body, h.Get("Location")
}

var (
	challengeRe = regexp.MustCompile(`name="challenge_id" value="([^"]+)"`)
	codeRe      = regexp.MustCompile(`data-code="([a-z_]+)"`)
)

// pay goes through the three steps with form f and the SMS code; it
// returns the last step's status and page.
func (b *browser) pay(f url.Values) (int, string) {
	b.t.Helper()
	s, body, _ := b.post("/pay", f)
	if s != http.StatusOK || !strings.Contains(body, `id="decision"`) {
		return s, body
	}
	f2 := cloneValues(f)
	f2.Set("factor", "sms")
	s, body, _ = b.post("/pay/challenge", f2)
	if s != http.StatusOK {
		return s, body
	}
	m := challengeRe.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no challenge in:\n%s", body)
	}
	f2.Set("challenge_id", m[1])
	f2.Set("response", "123456")
	s, body, _ = b.post("/pay/confirm", f2)
	return s, body
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// code is the refusal code on a page.
func code(body string) string {
	if m := codeRe.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}
