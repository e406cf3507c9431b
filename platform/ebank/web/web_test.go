package web

import (
	"cmp"
	"context"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/txauth"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// fakeAuth stands in for txauth in these unit tests of the pages: level 3
// with an OTP token, the code 123456, a single-use grant bound to the
// intent's hash. (txauth itself is tested against its real stacks.)
type fakeAuth struct {
	mu       sync.Mutex
	decision string // allow (default), deny, review
	used     map[string]bool
	// swapGrant makes Proof return the grant of another intent.
	swapGrant bool
	executed  int
	alerts    []txclient.BalanceAlert
	// reasons and level, when set, are the decision's (a limit's step-up
	// or refusal); intents are the intents authorized, by hash.
	reasons []txclient.Reason
	level   int
	message string // the decision's Message, when set
	intents map[string]intent.Intent
	// open are the intents whose challenge was begun with the decision;
	// withChallenge and challenges count the calls that begin one.
	open                      map[string]bool
	withChallenge, challenges int
}

// AuthorizeWithChallenge is Authorize with the challenge begun as
// txauth begins it: only when allowed, the tool reaches the level and none
// of the intent's is open; otherwise the decision says why.
func (f *fakeAuth) AuthorizeWithChallenge(ctx context.Context, in intent.Intent, ch txclient.ChallengeRequest) (txclient.Decision, error) {
	d, err := f.Authorize(ctx, in)
	if err != nil || d.Decision != txclient.Allow {
		return d, err
	}
	f.mu.Lock()
	f.withChallenge++
	defer f.mu.Unlock()
	if f.open[d.Intent] {
		d.ChallengeError = &txclient.ChallengeError{Status: 409, Code: "challenge_open", Message: "a challenge is still open"}
		return d, nil
	}
	c, err := f.challenge(d.Intent, ch)
	if err != nil {
		ae := err.(*txclient.APIError)
		d.ChallengeError = &txclient.ChallengeError{Status: ae.Status, Code: ae.Code, Message: "no"}
		return d, nil
	}
	if f.open == nil {
		f.open = map[string]bool{}
	}
	f.open[d.Intent] = true
	d.Challenge = &c
	return d, nil
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
	defer f.mu.Unlock()
	if f.intents == nil {
		f.intents = map[string]intent.Intent{}
	}
	f.intents[in.HashHex()] = in
	d := f.decision
	if d == "" {
		d = txclient.Allow
	}
	level := f.level
	if level == 0 {
		level = 3
	}
	return txclient.Decision{Intent: in.HashHex(), Decision: d, Level: level, Tools: []txclient.Tool{{Name: "sms", Level: 2}, {Name: "otp", Level: 3}},
		Reasons: f.reasons, Message: cmp.Or(f.message, "Confirm with your dynamic-password token.")}, nil
}

func (f *fakeAuth) Challenge(_ context.Context, hash string, r txclient.ChallengeRequest) (txclient.Challenge, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.challenges++
	return f.challenge(hash, r)
}

// challenge is Challenge's answer, with f.mu held.
func (f *fakeAuth) challenge(hash string, r txclient.ChallengeRequest) (txclient.Challenge, error) {
	if r.Factor != "otp" {
		return txclient.Challenge{}, &txclient.APIError{Status: 422, Code: "level_too_low"}
	}
	in := f.intents[hash]
	return txclient.Challenge{ID: "c-" + hash, Factor: "otp", Level: 3, Prompt: "Enter the code shown on your token …4321", Text: txauth.Text(in)}, nil
}

func (f *fakeAuth) Proof(_ context.Context, hash string, r txclient.ProofRequest) (txclient.Grant, error) {
	if r.ChallengeID != "c-"+hash || r.Response != "123456" || r.Intent == nil || r.Intent.HashHex() != hash {
		return txclient.Grant{}, &txclient.APIError{Status: 403, Code: "proof_failed"}
	}
	if f.swapGrant {
		return txclient.Grant{Token: "g-someother"}, nil
	}
	return txclient.Grant{Token: "g-" + hash, Intent: hash, Level: 3}, nil
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
	f.executed++
	return txclient.Executed{Intent: in.HashHex(), State: "executed", Amount: in.Amount}, nil
}

func (f *fakeAuth) Cancel(context.Context, string, string) (txclient.Cancelled, error) {
	return txclient.Cancelled{State: "cancelled"}, nil
}

type rig struct {
	db         *store.DB
	l          *ledger.Ledger
	auth       *fakeAuth
	srv        *httptest.Server
	pages      *Pages
	alice, bob []ledger.Account // current, savings
}

func newRig(t *testing.T, db *store.DB) *rig {
	t.Helper()
	ctx := context.Background()
	r := &rig{db: db, l: ledger.New(db, nil), auth: &fakeAuth{}}
	var err error
	if r.alice, err = ebank.OpenCustomerAccounts(ctx, r.l, "p-alice", "Alice", ebank.Opening{Current: 1_000_000_00, Savings: 50_000_00}); err != nil {
		t.Fatal(err)
	}
	if r.bob, err = ebank.OpenCustomerAccounts(ctx, r.l, "p-bob", "Bob", ebank.Opening{Current: 100_00}); err != nil {
		t.Fatal(err)
	}
	p := &Pages{Ledger: r.l, Auth: r.auth, Alerts: r.auth, Payees: &ebank.Payees{DB: db}, Customer: func(req *http.Request) (Customer, bool) {
		c, err := req.Cookie("test_who")
		if err != nil || c.Value == "" {
			return Customer{}, false
		}
		level := 3
		if l, err := req.Cookie("test_level"); err == nil {
			level, _ = strconv.Atoi(l.Value)
		}
		return Customer{ID: c.Value, Name: strings.TrimPrefix(c.Value, "p-"), Level: level, Token: "tok-" + c.Value}, true
	}, OnError: func(_ *http.Request, err error) { t.Errorf("unexpected: %v", err) }}
	p.Mobiles = &ebank.Mobiles{DB: db, Ledger: r.l}
	for who, reg := range map[string][2]string{"p-alice": {"13800138000", r.alice[0].Number}, "p-bob": {"13900139000", r.bob[0].Number}} {
		if err := p.Mobiles.Register(ctx, who, reg[0], reg[1]); err != nil {
			t.Fatal(err)
		}
	}
	r.pages = p
	r.srv = httptest.NewServer(p.Handler())
	t.Cleanup(r.srv.Close)
	return r
}

// client is a browser logged in as who, speaking lang.
type client struct {
	t    *testing.T
	c    *http.Client
	base string
	lang string
}

func (r *rig) as(t *testing.T, who, lang string) *client {
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(r.srv.URL)
	jar.SetCookies(u, []*http.Cookie{{Name: "test_who", Value: who}})
	return &client{t: t, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, base: r.srv.URL, lang: lang}
}

func (c *client) do(method, path string, form url.Values) (int, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept-Language", c.lang)
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var hiddenKey = regexp.MustCompile(`name="key" value="([^"]+)"`)

// books is the ledger's state, to prove a refusal changed nothing.
func (r *rig) books(t *testing.T) string {
	t.Helper()
	rep, err := ledger.Check(context.Background(), r.db)
	if err != nil {
		t.Fatalf("ledger check: %v", err)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%+v", rep)
	for _, a := range append(append([]ledger.Account{}, r.alice...), r.bob...) {
		got, _ := r.l.Account(context.Background(), a.Number)
		fmt.Fprintf(&sb, " %s=%d/%d", a.Number, got.Balance(), got.Available())
	}
	return sb.String()
}

func TestAccountsPageInBothLanguages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		hold := ledger.Request{Origin: "mall", Key: "h1", Debit: r.alice[0].Number, Credit: r.bob[0].Number, Amount: 300_00, Grant: "g", Timeout: time.Hour}
		if _, err := r.l.Hold(context.Background(), hold); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name, lang string
			want       []string
		}{
			{"Chinese", "zh-CN", []string{`lang="zh-Hans"`, "我的账户", "可用余额（元）", "1,000,000.00", "999,700.00", "300.00", "50,000.00", "活期", `href="/accounts?lang=en"`}},
			{"English", "en-US", []string{`lang="en"`, "My accounts", "Available (yuan)", "1,000,000.00", "999,700.00", "Current", "Savings", `href="/accounts?lang=zh"`}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				status, body := r.as(t, "p-alice", c.lang).do("GET", "/accounts", nil)
				if status != 200 {
					t.Fatalf("status %d", status)
				}
				for _, w := range c.want {
					if !strings.Contains(body, w) {
						t.Errorf("page lacks %q", w)
					}
				}
				if strings.Contains(body, r.bob[0].Number) {
					t.Error("alice's page shows bob's account")
				}
				if strings.Contains(body, "xfer.") || strings.Contains(body, "acct.") || strings.Contains(body, "kind.") || strings.Contains(body, "tool.") {
					t.Error("a message key is missing from the catalogue")
				}
			})
		}
		// The switch link sets the cookie, which then beats the browser.
		c := r.as(t, "p-alice", "zh-CN")
		c.do("GET", "/accounts?lang=en", nil)
		if _, body := c.do("GET", "/accounts", nil); !strings.Contains(body, "My accounts") {
			t.Error("the language choice did not stick")
		}
		if status, _ := r.as(t, "", "en").do("GET", "/accounts", nil); status != http.StatusFound {
			t.Errorf("no session: status %d, want a redirect to /login", status)
		}
	})
}

func TestHistoryAndStatement(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		ctx := context.Background()
		if _, err := r.l.Transfer(ctx, ledger.Request{Origin: "test", Key: "formula", Debit: r.bob[0].Number, Credit: r.alice[0].Number, Amount: 1, Grant: "g", Code: "transfer", Memo: "=HYPERLINK(1)"}); err != nil {
			t.Fatal(err)
		}
		for i, amt := range []int64{12_34, 500_00, 7_00} {
			if _, err := r.l.Transfer(ctx, ledger.Request{Origin: "test", Key: fmt.Sprint("k", i), Debit: r.alice[0].Number, Credit: r.bob[0].Number, Amount: amt, Grant: "g", Code: "transfer", Memo: fmt.Sprint("memo", i)}); err != nil {
				t.Fatal(err)
			}
		}
		today := time.Now().In(time.FixedZone("CST", 8*3600)).Format("2006-01-02")
		a := r.alice[0].Number
		cases := []struct {
			name, query string
			status      int
			want, not   []string
		}{
			{"all", "", 200, []string{"12.34", "500.00", "7.00", "1,000,000.00", "Opening deposit", "memo1"}, nil},
			{"amount range", "?min=10&max=100", 200, []string{"12.34"}, []string{"500.00", "7.00</td>"}},
			{"today", "?from=" + today + "&to=" + today, 200, []string{"500.00"}, nil},
			{"before any", "?to=2020-01-01", 200, []string{"No transactions match."}, []string{"500.00"}},
			{"bad date", "?from=01/12/2026", 400, []string{"Give dates as 2026-12-31."}, nil},
			{"fractional fen", "?min=1.001", 400, []string{"at most two decimals"}, nil},
			{"upside down", "?min=100&max=10", 400, []string{"must not be after"}, nil},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				status, body := r.as(t, "p-alice", "en").do("GET", "/accounts/"+a+c.query, nil)
				if status != c.status {
					t.Fatalf("status %d, want %d", status, c.status)
				}
				for _, w := range c.want {
					if !strings.Contains(body, w) {
						t.Errorf("page lacks %q", w)
					}
				}
				for _, w := range c.not {
					if strings.Contains(body, w) {
						t.Errorf("page has %q", w)
					}
				}
			})
		}
		if status, _ := r.as(t, "p-bob", "en").do("GET", "/accounts/"+a, nil); status != 404 {
			t.Errorf("bob reads alice's history: status %d", status)
		}
		if _, csv := r.as(t, "p-alice", "en").do("GET", "/accounts/"+a+"/statement.csv?max=0.01", nil); !strings.Contains(csv, ",'=HYPERLINK(1)") {
			t.Errorf("a memo read as a formula: %q", csv)
		}
		// The English PDF: the account, the lines in range and their total;
		// a Chinese memo printed as "?" and said so (the Chinese one:
		// TestStatementPDF).
		if _, err := r.l.Transfer(ctx, ledger.Request{Origin: "test", Key: "zh", Debit: r.alice[0].Number, Credit: r.bob[0].Number, Amount: 33_00, Grant: "g", Code: "transfer", Memo: "房租 rent"}); err != nil {
			t.Fatal(err)
		}
		status, pdf := r.as(t, "p-alice", "en").do("GET", "/accounts/"+a+"/statement.pdf?min=10&max=600", nil)
		for _, want := range []string{"%PDF-", "eBank statement", "Account " + a, "(500.00)", "(12.34)", "(33.00)", "(545.34)", "(?? rent)", "printed as '?'"} {
			if !strings.Contains(pdf, want) {
				t.Errorf("the PDF (%d) lacks %q", status, want)
			}
		}
		if strings.Contains(pdf, "(7.00)") || strings.Contains(pdf, "1,000,000.00)") {
			t.Error("the PDF has lines outside the amount range")
		}
		if status, _ := r.as(t, "p-bob", "en").do("GET", "/accounts/"+a+"/statement.pdf", nil); status != 404 {
			t.Errorf("bob's PDF of alice's account: %d", status)
		}
		status, csv := r.as(t, "p-alice", "zh-CN").do("GET", "/accounts/"+a+"/statement.csv?min=10&max=600", nil)
		want := "\ufeff时间,摘要,对方账户,收入（元）,支出（元）,附言\n"
		if status != 200 || !strings.HasPrefix(csv, want) {
			t.Fatalf("csv %d %q", status, csv)
		}
		if n := strings.Count(csv, "\n"); n != 4 || !strings.Contains(csv, ",500.00,memo1\n") || !strings.Contains(csv, "房租 rent") {
			t.Errorf("csv rows: %q", csv)
		}
	})
}

// transfer walks the three steps; it returns the last page.
func (c *client) transfer(f url.Values, code string) (int, string) {
	c.t.Helper()
	_, page := c.do("GET", "/transfer", nil)
	m := hiddenKey.FindStringSubmatch(page)
	if m == nil {
		c.t.Fatalf("no key on the form: %s", page)
	}
	if f.Get("key") == "" {
		f.Set("key", m[1])
	}
	status, page := c.do("POST", "/transfer", f)
	if status != 200 || !strings.Contains(page, `action="/transfer/challenge"`) {
		return status, page
	}
	f.Set("factor", "otp")
	status, page = c.do("POST", "/transfer/challenge", f)
	if status != 200 {
		return status, page
	}
	cid := regexp.MustCompile(`name="challenge_id" value="([^"]+)"`).FindStringSubmatch(page)
	f.Set("challenge_id", cid[1])
	f.Set("response", code)
	return c.do("POST", "/transfer/confirm", f)
}

func TestTransfer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		alice := r.as(t, "p-alice", "en")
		f := url.Values{"from": {r.alice[0].Number}, "to_kind": {"account"}, "to": {r.bob[0].Number}, "amount": {"1,234.56"}, "memo": {"rent"}}
		status, page := alice.transfer(f, "123456")
		if status != 200 || !strings.Contains(page, "Done: 1,234.56 yuan from "+r.alice[0].Number+" to "+r.bob[0].Number) {
			t.Fatalf("transfer: %d %s", status, page)
		}
		// The same form posted again (a double submit): one transfer.
		status, page = alice.do("POST", "/transfer/confirm", f)
		if status != 200 || !strings.Contains(page, "already made") {
			t.Fatalf("double submit: %d %s", status, page)
		}
		bob, _ := r.l.Account(context.Background(), r.bob[0].Number)
		if bob.Balance() != 100_00+1_234_56 || r.auth.executed != 1 {
			t.Fatalf("bob %d, executed %d", bob.Balance(), r.auth.executed)
		}
		// One alert each to alice (out) and bob (in), none for the replay.
		if al := r.auth.alerts; len(al) != 2 || al[0].Customer != "p-alice" || al[0].Amount != -1_234_56 || al[0].Balance != 1_000_000_00-1_234_56 ||
			al[1].Customer != "p-bob" || al[1].Amount != 1_234_56 || al[1].Balance != 100_00+1_234_56 || al[0].ID == al[1].ID {
			t.Fatalf("balance alerts %+v", al)
		}
		// By bob's mobile number: into the account he registered for it.
		if status, page := alice.transfer(url.Values{"from": {r.alice[0].Number}, "to_kind": {"mobile"}, "to_mobile": {"139 0013 9000"}, "amount": {"1"}}, "123456"); status != 200 ||
			!strings.Contains(page, "Done: 1.00 yuan from "+r.alice[0].Number+" to "+r.bob[0].Number) {
			t.Fatalf("transfer by mobile: %d %s", status, page)
		}
		if al := r.auth.alerts; len(al) != 4 {
			t.Fatalf("alerts after the mobile transfer: %+v", al)
		}
		r.auth.alerts = r.auth.alerts[:2]
		bob, _ = r.l.Account(context.Background(), r.bob[0].Number)
		if bob.Balance() != 100_00+1_234_56+1_00 {
			t.Fatalf("bob %d after the mobile transfer", bob.Balance())
		}
		// Own savings, and another bank through clearing.
		for _, f := range []url.Values{
			{"from": {r.alice[0].Number}, "to_kind": {"own"}, "to_own": {r.alice[1].Number}, "amount": {"10"}},
			{"from": {r.alice[0].Number}, "to_kind": {"bank"}, "to": {"6222020000000099"}, "to_name": {"Carol"}, "bank": {"ICBC"}, "amount": {"20.5"}, "save": {"1"}},
		} {
			if status, page := r.as(t, "p-alice", "zh-CN").transfer(f, "123456"); status != 200 || !strings.Contains(page, "转账成功") {
				t.Fatalf("transfer %v: %d %s", f, status, page)
			}
		}
		if n := len(r.auth.alerts); n != 2+2+1 { // own: out and in; other bank: out only
			t.Errorf("%d alerts: %+v", n, r.auth.alerts)
		}
		// The saved payee is offered on the form, and its link fills it in.
		_, form := alice.do("GET", "/transfer", nil)
		if !strings.Contains(form, `<ul id="payees"><li><a href="/transfer?to_kind=bank&amp;to=6222020000000099&amp;to_name=Carol&amp;bank=ICBC">Carol 6222020000000099 (ICBC)</a></li></ul>`) {
			t.Fatalf("no saved payee on the form:\n%s", form)
		}
		_, form = alice.do("GET", "/transfer?to_kind=bank&to=6222020000000099&to_name=Carol&bank=ICBC", nil)
		if !strings.Contains(form, `id="to_kind_bank" name="to_kind" value="bank" checked`) || !strings.Contains(form, `name="to_name" value="Carol"`) {
			t.Fatalf("the payee's link does not fill the form:\n%s", form)
		}
		if _, other := r.as(t, "p-bob", "en").do("GET", "/transfer", nil); strings.Contains(other, "Carol") {
			t.Fatal("bob sees alice's payees")
		}
		clearing, _ := r.l.BankAccount(context.Background(), "clearing")
		if clearing.DebitsPosted-clearing.CreditsPosted != -20_50 && clearing.CreditsPosted != 20_50 {
			t.Errorf("clearing %+v", clearing)
		}
		if _, err := ledger.Check(context.Background(), r.db); err != nil {
			t.Fatal(err)
		}
	})
}

// Bad input is refused with a sentence and leaves the ledger as it was.
func TestTransferRefusals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		a, s, b := r.alice[0].Number, r.alice[1].Number, r.bob[0].Number
		cases := []struct {
			name   string
			who    string
			f      url.Values
			code   string
			setup  func()
			status int
			want   string
		}{
			{"to oneself", "p-alice", url.Values{"from": {a}, "to_kind": {"own"}, "to_own": {a}, "amount": {"1"}}, "123456", nil, 422, "into itself"},
			{"unknown account", "p-alice", url.Values{"from": {a}, "to_kind": {"account"}, "to": {"6299880000000000001"}, "amount": {"1"}}, "123456", nil, 422, "No such payee"},
			{"unknown mobile", "p-alice", url.Values{"from": {a}, "to_kind": {"mobile"}, "to_mobile": {"13700137000"}, "amount": {"1"}}, "123456", nil, 422, "No customer of this bank receives at this mobile"},
			{"not a mobile number", "p-alice", url.Values{"from": {a}, "to_kind": {"mobile"}, "to_mobile": {"12"}, "amount": {"1"}}, "123456", nil, 422, "No customer of this bank receives at this mobile"},
			{"own mobile into the same account", "p-alice", url.Values{"from": {a}, "to_kind": {"mobile"}, "to_mobile": {"13800138000"}, "amount": {"1"}}, "123456", nil, 422, "into itself"},
			{"not a number", "p-alice", url.Values{"from": {a}, "to_kind": {"account"}, "to": {"bob"}, "amount": {"1"}}, "123456", nil, 422, "No such payee"},
			{"the bank's own account", "p-alice", url.Values{"from": {a}, "to_kind": {"account"}, "to": {r.clearing(t)}, "amount": {"1"}}, "123456", nil, 422, "No such payee"},
			{"over balance", "p-bob", url.Values{"from": {b}, "to_kind": {"account"}, "to": {a}, "amount": {"100.01"}}, "123456", nil, 422, "Not enough"},
			{"zero", "p-alice", url.Values{"from": {a}, "to_kind": {"account"}, "to": {b}, "amount": {"0"}}, "123456", nil, 400, "positive number"},
			{"negative", "p-alice", url.Values{"from": {a}, "to_kind": {"account"}, "to": {b}, "amount": {"-5"}}, "123456", nil, 400, "positive number"},
			{"fractional fen", "p-alice", url.Values{"from": {a}, "to_kind": {"account"}, "to": {b}, "amount": {"1.005"}}, "123456", nil, 400, "two decimals"},
			{"someone else's account", "p-bob", url.Values{"from": {a}, "to_kind": {"account"}, "to": {b}, "amount": {"1"}}, "123456", nil, 422, "not one of yours"},
			{"someone else's as own", "p-alice", url.Values{"from": {a}, "to_kind": {"own"}, "to_own": {b}, "amount": {"1"}}, "123456", nil, 422, "No such payee"},
			{"wrong code", "p-alice", url.Values{"from": {a}, "to_kind": {"own"}, "to_own": {s}, "amount": {"1"}}, "654321", nil, 422, "code is wrong"},
			{"a grant for another transfer", "p-alice", url.Values{"from": {a}, "to_kind": {"own"}, "to_own": {s}, "amount": {"1"}}, "123456",
				func() { r.auth.swapGrant = true }, 422, "for another transfer"},
			{"denied", "p-alice", url.Values{"from": {a}, "to_kind": {"account"}, "to": {b}, "amount": {"1"}}, "123456",
				func() { r.auth.swapGrant, r.auth.decision = false, txclient.Deny }, 422, "refused"},
			{"over a limit", "p-alice", url.Values{"from": {a}, "to_kind": {"account"}, "to": {b}, "amount": {"60000"}}, "123456",
				func() {
					r.auth.reasons = []txclient.Reason{{Code: "limit", Limit: "per-day", Level: 5, Max: 5_000_000_00, Used: 4_950_000_00}}
					r.auth.message = "60,000.00 yuan is over what is left of the bank's level-5 daily limit: 50,000.00 of 5,000,000.00 yuan. No tool can allow more: pay a smaller amount, or try again tomorrow."
				}, 422, "try again tomorrow"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if c.setup != nil {
					c.setup()
				}
				before := r.books(t)
				status, page := r.as(t, c.who, "en").transfer(c.f, c.code)
				if status != c.status || !strings.Contains(page, c.want) {
					t.Errorf("status %d, want %d with %q: %s", status, c.status, c.want, page)
				}
				if !strings.Contains(page, `id="error"`) {
					t.Error("no error shown")
				}
				if after := r.books(t); after != before {
					t.Errorf("the ledger changed:\n%s\n%s", before, after)
				}
			})
		}
	})
}

// The decision and the challenge are said in the page's language: the
// Chinese page says txauth's English reasons, prompt and transaction text
// in Chinese with the same facts.
func TestDecisionInBothLanguages(t *testing.T) {
	r := newRig(t, storetest.SQLite(t))
	r.auth.reasons = []txclient.Reason{{Code: "limit", Limit: "per-transaction", Level: 2, Max: 1_000_00,
		Text: "1,234.56 yuan is over the bank's level-2 limit of 1,000.00 yuan per transaction."}}
	r.auth.message = "1,234.56 yuan is over the bank's level-2 limit of 1,000.00 yuan per transaction. Confirm with your dynamic-password token."
	a, b := r.alice[0].Number, r.bob[0].Number
	for _, c := range []struct {
		lang                     string
		decision, txText, prompt string
		english                  []string // what must not be on the page
	}{
		{"zh-CN", "1,234.56 元超过了银行规定的认证级别 2 的单笔限额 1,000.00 元。请用动态口令牌确认。",
			"向 " + txauth.Mask(b) + " 转账 1,234.56 元（付款账户 " + txauth.Mask(a) + "）", "请输入动态口令牌 …4321 上显示的口令",
			[]string{"Confirm with", "Transfer ", "Enter the code", "yuan"}},
		{"en", r.auth.message, "Transfer 1,234.56 yuan to " + txauth.Mask(b) + " from " + txauth.Mask(a), "Enter the code shown on your token …4321", nil},
	} {
		t.Run(c.lang, func(t *testing.T) {
			cl := r.as(t, "p-alice", c.lang)
			_, page := cl.do("GET", "/transfer", nil)
			f := url.Values{"key": {hiddenKey.FindStringSubmatch(page)[1]}, "from": {a}, "to_kind": {"account"}, "to": {b}, "amount": {"1234.56"}}
			_, dec := cl.do("POST", "/transfer", f)
			f.Set("factor", "otp")
			_, chal := cl.do("POST", "/transfer/challenge", f)
			if !strings.Contains(dec, `data-level="3">`+template.HTMLEscapeString(c.decision)+`</p>`) {
				t.Errorf("decision page lacks %q:\n%s", c.decision, dec)
			}
			if !strings.Contains(chal, `id="tx-text">`+c.txText+`</p>`) || !strings.Contains(chal, `<span id="prompt">`+c.prompt+`</span>`) {
				t.Errorf("challenge page lacks %q or %q:\n%s", c.txText, c.prompt, chal)
			}
			for _, e := range c.english {
				if strings.Contains(dec, e) || strings.Contains(chal, e) {
					t.Errorf("English %q on the %s pages", e, c.lang)
				}
			}
		})
	}
}

// TestTransferChallengeWithTheDecision: the pages begin the challenge in
// the authorize call where they know the tool: chosen on the decision
// page (one call where there were two), or on the form (the decision page
// skipped); a tool chosen on the form below the level (a limit's step-up)
// or not the customer's brings the decision page with a note, and the
// transfer completes with the tool chosen there; the challenge page posted
// again begins a new challenge.
func TestTransferChallengeWithTheDecision(t *testing.T) {
	a, b := func(r *rig) string { return r.alice[0].Number }, func(r *rig) string { return r.bob[0].Number }
	for _, tc := range []struct {
		name       string
		formTool   string // chosen on the form
		notice     string // on the decision page; "": the decision page is skipped
		again      bool   // the decision page's form posted twice
		with, sent int    // AuthorizeWithChallenge and Challenge calls
	}{
		{name: "chosen after the decision", with: 1},
		{name: "chosen on the form", formTool: "otp", with: 1},
		{name: "below the level on the form", formTool: "sms", notice: "does not reach the level", with: 2},
		{name: "the decision page posted again", again: true, with: 2, sent: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, storetest.SQLite(t))
			cl := r.as(t, "p-alice", "en")
			_, page := cl.do("GET", "/transfer", nil)
			f := url.Values{"key": {hiddenKey.FindStringSubmatch(page)[1]}, "from": {a(r)}, "to_kind": {"account"}, "to": {b(r)}, "amount": {"12.34"}}
			if tc.formTool != "" {
				f.Set("factor", tc.formTool)
			}
			status, page := cl.do("POST", "/transfer", f)
			if tc.formTool == "" || tc.notice != "" {
				if status != 200 || !strings.Contains(page, `action="/transfer/challenge"`) || !strings.Contains(page, tc.notice) {
					t.Fatalf("want the decision page with %q: %d %s", tc.notice, status, page)
				}
				f.Set("factor", "otp")
				if tc.again {
					cl.do("POST", "/transfer/challenge", f)
				}
				status, page = cl.do("POST", "/transfer/challenge", f)
			}
			cid := regexp.MustCompile(`name="challenge_id" value="([^"]+)"`).FindStringSubmatch(page)
			if status != 200 || !strings.Contains(page, `action="/transfer/confirm"`) || cid == nil {
				t.Fatalf("want the challenge page: %d %s", status, page)
			}
			if r.auth.withChallenge != tc.with || r.auth.challenges != tc.sent {
				t.Fatalf("%d authorize calls with a challenge, %d challenge calls; want %d, %d", r.auth.withChallenge, r.auth.challenges, tc.with, tc.sent)
			}
			f.Set("challenge_id", cid[1])
			f.Set("response", "123456")
			if status, page := cl.do("POST", "/transfer/confirm", f); status != 200 || !strings.Contains(page, "Done: 12.34 yuan") {
				t.Fatalf("confirm: %d %s", status, page)
			}
			if r.auth.executed != 1 {
				t.Fatalf("%d executed", r.auth.executed)
			}
		})
	}
}

// TestTransferKeepsItsLanguage: a transfer is authorized in the language
// of the page that showed its form (the text the customer confirms is in
// it), and keeps it to the end when the customer switches the language in
// another tab halfway: one intent, not a second one in the new language.
func TestTransferKeepsItsLanguage(t *testing.T) {
	for _, c := range []struct{ first, then, want string }{
		{"zh-CN", "en", intent.LangZH},
		{"en", "zh", intent.LangEN},
	} {
		t.Run(c.first, func(t *testing.T) {
			r := newRig(t, storetest.SQLite(t))
			a, b := r.alice[0].Number, r.bob[0].Number
			cl := r.as(t, "p-alice", c.first)
			_, page := cl.do("GET", "/transfer", nil)
			lang := regexp.MustCompile(`name="txlang" value="([^"]*)"`).FindStringSubmatch(page)
			if lang == nil || lang[1] != c.want {
				t.Fatalf("the form's language %q, want %q", lang, c.want)
			}
			f := url.Values{"key": {hiddenKey.FindStringSubmatch(page)[1]}, "txlang": {lang[1]}, "from": {a}, "to_kind": {"account"}, "to": {b}, "amount": {"12.00"}}
			if status, _ := cl.do("POST", "/transfer", f); status != 200 {
				t.Fatalf("authorize: %d", status)
			}
			cl.do("GET", "/accounts?lang="+c.then, nil) // another tab (the cookie; the browser's Accept-Language, in its fingerprint, stays)
			f.Set("factor", "otp")
			_, chal := cl.do("POST", "/transfer/challenge", f)
			f.Set("challenge_id", regexp.MustCompile(`name="challenge_id" value="([^"]+)"`).FindStringSubmatch(chal)[1])
			f.Set("response", "123456")
			if status, done := cl.do("POST", "/transfer/confirm", f); status != 200 || !strings.Contains(done, `12.00`) {
				t.Fatalf("confirm: %d %s", status, done)
			}
			r.auth.mu.Lock()
			defer r.auth.mu.Unlock()
			if len(r.auth.intents) != 1 || r.auth.executed != 1 {
				t.Fatalf("%d intents authorized, %d executed; want one of each", len(r.auth.intents), r.auth.executed)
			}
			for _, in := range r.auth.intents {
				if in.Lang != c.want {
					t.Fatalf("the intent's language %q, want %q", in.Lang, c.want)
				}
			}
		})
	}
}

func (r *rig) clearing(t *testing.T) string {
	c, err := r.l.BankAccount(context.Background(), "clearing")
	if err != nil {
		t.Fatal(err)
	}
	return c.Number
}
