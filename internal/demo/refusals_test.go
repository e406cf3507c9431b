package demo

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// Issue 12's bad input through the running demo (the real passport, txauth
// and ledger, not the pages' stand-in): each transfer is refused with a
// sentence and leaves the books as they were; a form submitted twice is
// one transfer; a proof for one transfer buys no other (the amount changed
// after the challenge). ledger.Check passes afterwards.
func TestTransferRefusalsThroughTxauth(t *testing.T) {
	testenv.NeedCommand(t, "softhsm2-util", "softhsm2")
	varDir := t.TempDir()
	passport, out, stop := startDemo(t, varDir)
	defer stop()
	ebank := "http://" + lastCfg.Platforms.Ebank.Listen
	printed := out.String()
	bob := regexp.MustCompile(`Accounts\s+bob\s+current (\d+)`).FindStringSubmatch(printed)
	alice := regexp.MustCompile(`Accounts\s+alice\s+current (\d+) \([\d,.]+ yuan\) savings (\d+)`).FindStringSubmatch(printed)
	if bob == nil || alice == nil {
		t.Fatalf("the demo does not print the accounts:\n%s", printed)
	}
	db, err := store.Open(context.Background(), store.Config{Driver: lastCfg.Database.Driver, DSN: lastCfg.Database.DSN})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	books := func() string {
		t.Helper()
		rep, err := ledger.Check(context.Background(), db)
		if err != nil {
			t.Fatalf("ledger check: %v", err)
		}
		return fmt.Sprintf("%+v", rep)
	}
	c, _ := ebankLogin(t, passport, varDir, "alice", "13800138000", func(string, string) {})
	post := func(path string, f url.Values) (int, string) {
		t.Helper()
		resp, err := c.PostForm(ebank+path+"?lang=en", f)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	newKey := func() string {
		t.Helper()
		resp, err := c.Get(ebank + "/transfer?lang=en")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m := regexp.MustCompile(`name="key" value="([^"]+)"`).FindStringSubmatch(string(b))
		if m == nil {
			t.Fatalf("no key on the form:\n%s", b)
		}
		return m[1]
	}
	// challenge takes f through the decision to an SMS challenge and
	// returns the form to confirm with (challenge id and code set).
	challenge := func(f url.Values) url.Values {
		t.Helper()
		if st, body := post("/transfer", f); st != 200 || !strings.Contains(body, `id="factor_sms"`) {
			t.Fatalf("decision: %d\n%s", st, body)
		}
		f.Set("factor", "sms")
		st, body := post("/transfer/challenge", f)
		cid := regexp.MustCompile(`name="challenge_id" value="([^"]+)"`).FindStringSubmatch(body)
		if st != 200 || cid == nil {
			t.Fatalf("challenge: %d\n%s", st, body)
		}
		f.Set("challenge_id", cid[1])
		f.Set("response", smsCodeTo(t, passport, "13800138000"))
		return f
	}
	// alice caps every level at 500 yuan a payment (self-service: her own
	// limits, never above the bank's), so that a payment can be over every
	// limit without being over her balance.
	if st, body := post("/settings/limits", url.Values{"level": {"5"}, "per_transaction": {"500"}, "per_day": {"5000000"}, "per_year": {"100000000"}}); st != 200 || !strings.Contains(body, "limits are changed") {
		t.Fatalf("lowering her limits: %d\n%s", st, body)
	}
	start := books()

	cases := []struct {
		name   string
		f      url.Values
		status int
		want   string
	}{
		{"to oneself", url.Values{"from": {alice[1]}, "to_kind": {"own"}, "to_own": {alice[1]}, "amount": {"1"}}, 422, "into itself"},
		{"unknown account", url.Values{"from": {alice[1]}, "to_kind": {"account"}, "to": {"6299880000000000001"}, "amount": {"1"}}, 422, "No such payee"},
		{"unknown mobile", url.Values{"from": {alice[1]}, "to_kind": {"mobile"}, "to_mobile": {"13600136000"}, "amount": {"1"}}, 422, "No customer of this bank receives"},
		{"someone else's account as payer", url.Values{"from": {bob[1]}, "to_kind": {"account"}, "to": {alice[1]}, "amount": {"1"}}, 422, "not one of yours"},
		{"over the balance", url.Values{"from": {alice[1]}, "to_kind": {"account"}, "to": {bob[1]}, "amount": {"50000.01"}}, 422, "Not enough available balance"},
		{"over every limit", url.Values{"from": {alice[2]}, "to_kind": {"account"}, "to": {bob[1]}, "amount": {"600"}}, 422, "over your own level-5 limit of 500.00 yuan per transaction"},
		{"zero", url.Values{"from": {alice[1]}, "to_kind": {"account"}, "to": {bob[1]}, "amount": {"0"}}, 400, "positive number"},
		{"negative", url.Values{"from": {alice[1]}, "to_kind": {"account"}, "to": {bob[1]}, "amount": {"-5"}}, 400, "positive number"},
		{"fractional fen", url.Values{"from": {alice[1]}, "to_kind": {"account"}, "to": {bob[1]}, "amount": {"1.001"}}, 400, "two decimals"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.f.Set("key", newKey())
			st, body := post("/transfer", tc.f)
			if st != tc.status || !strings.Contains(body, tc.want) || !strings.Contains(body, `id="error"`) {
				t.Errorf("%d, want %d with %q:\n%s", st, tc.status, tc.want, body)
			}
			if now := books(); now != start {
				t.Errorf("the books changed:\n%s\n%s", start, now)
			}
		})
	}

	t.Run("a proof for another transfer", func(t *testing.T) {
		f := challenge(url.Values{"key": {newKey()}, "from": {alice[1]}, "to_kind": {"account"}, "to": {bob[1]}, "amount": {"100"}})
		f.Set("amount", "900") // the hidden field changed after the challenge
		st, body := post("/transfer/confirm", f)
		if st != 422 || !strings.Contains(body, `id="error"`) || strings.Contains(body, `id="done"`) {
			t.Errorf("%d:\n%s", st, body)
		}
		if now := books(); now != start {
			t.Errorf("the books changed:\n%s\n%s", start, now)
		}
	})

	t.Run("a form submitted twice", func(t *testing.T) {
		f := challenge(url.Values{"key": {newKey()}, "from": {alice[1]}, "to_kind": {"account"}, "to": {bob[1]}, "amount": {"100"}})
		st, body := post("/transfer/confirm", f)
		if st != 200 || !strings.Contains(body, "Done: 100.00 yuan") {
			t.Fatalf("first: %d\n%s", st, body)
		}
		once := books()
		st, body = post("/transfer/confirm", f)
		if st != 200 || !strings.Contains(body, "already made") {
			t.Errorf("second: %d\n%s", st, body)
		}
		if now := books(); now != once {
			t.Errorf("the second submit moved money:\n%s\n%s", once, now)
		}
		var n int
		if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM ebank_transfers WHERE origin = 'ebank-web'`).Scan(&n); err != nil || n != 1 {
			t.Errorf("%d transfers made by the pages (%v), want 1", n, err)
		}
	})
}
