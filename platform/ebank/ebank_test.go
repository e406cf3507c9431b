package ebank

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/backend"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

func TestOpenCustomerAccounts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := ledger.New(db, nil)
		for range 2 { // the second run opens and posts nothing new
			accts, err := OpenCustomerAccounts(ctx, l, "p-alice", "Alice", Opening{Current: 1_000_000, Savings: 5_000})
			if err != nil {
				t.Fatal(err)
			}
			if len(accts) != 2 || accts[0].Kind != ledger.KindCurrent || accts[0].Balance() != 1_000_000 ||
				accts[1].Kind != ledger.KindSavings || accts[1].Balance() != 5_000 || accts[0].Owner != "p-alice" {
				t.Fatalf("accounts %+v", accts)
			}
		}
		if all, err := l.Accounts(ctx, "p-alice"); err != nil || len(all) != 2 {
			t.Fatalf("alice has %d accounts, %v", len(all), err)
		}
		eq, err := l.BankAccount(ctx, LabelEquity)
		if err != nil || eq.DebitsPosted != 1_005_000 {
			t.Fatalf("equity %+v, %v", eq, err)
		}
		bank, err := EnsureBankAccounts(ctx, l)
		if err != nil || len(bank) != len(bankAccounts) || bank[LabelEquity].Number != eq.Number {
			t.Fatalf("bank accounts %v, %v", bank, err)
		}
		rep, err := ledger.Check(ctx, db)
		if err != nil || rep.Transfers != 2 || rep.Accounts != 7 {
			t.Fatalf("check %+v, %v", rep, err)
		}
	})
}

// recordingChecker refuses grants that do not start with "ok-" and
// remembers what it was asked.
type recordingChecker struct{ asked []Movement }

func (c *recordingChecker) CheckGrant(_ context.Context, grant string, m Movement) error {
	c.asked = append(c.asked, m)
	if !strings.HasPrefix(grant, "ok-") {
		return fmt.Errorf("%w (test checker)", ErrGrantRefused)
	}
	return nil
}

func TestRequireGrant(t *testing.T) {
	t.Parallel()
	if err := (RequireGrant{}).CheckGrant(context.Background(), "", Movement{}); !errors.Is(err, ErrNoGrant) {
		t.Fatalf("empty grant: %v", err)
	}
	if err := (RequireGrant{}).CheckGrant(context.Background(), "g-1", Movement{}); err != nil {
		t.Fatalf("a grant: %v", err)
	}
}

// The service asks the grant checker once per new movement, with the
// movement, and not for a replay (the grant was spent on the first).
func TestHoldsChecksGrants(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := ledger.New(db, nil)
		accts, err := OpenCustomerAccounts(ctx, l, "p-alice", "Alice", Opening{Current: 100_000})
		if err != nil {
			t.Fatal(err)
		}
		bank, _ := EnsureBankAccounts(ctx, l)
		c := &recordingChecker{}
		h := &Holds{Ledger: l, Grants: c, DefaultTimeout: time.Minute}
		req := HoldRequest{Origin: "atm-agent", Key: "w-1", Debit: accts[0].Number, Credit: bank[LabelATMCash].Number, Amount: 50_000, Grant: "bad", Code: "atm-withdrawal"}
		if _, err := h.Hold(ctx, req); !errors.Is(err, ErrGrantRefused) {
			t.Fatalf("refused grant: %v", err)
		}
		req.Grant = "ok-1"
		hold, err := h.Hold(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := h.Hold(ctx, req)
		if err != nil || again.ID != hold.ID || !again.Replayed {
			t.Fatalf("replay %+v, %v", again, err)
		}
		want := Movement{Kind: "hold", Origin: "atm-agent", Key: "w-1", Debit: accts[0].Number, Credit: bank[LabelATMCash].Number, Amount: 50_000, Code: "atm-withdrawal"}
		if len(c.asked) != 2 || c.asked[0] != want || c.asked[1] != want {
			t.Fatalf("checker asked %+v, want twice %+v", c.asked, want)
		}
		// The ATM paid out 300 yuan of the 500 held.
		if _, err := h.Capture(ctx, "atm-agent", "w-1-cap", hold.ID, 30_000, "ok-other"); !errors.Is(err, ErrGrantMismatch) {
			t.Fatalf("capture with another grant: %v", err)
		}
		if _, err := h.Capture(ctx, "mall", "w-1-cap", hold.ID, 30_000, "ok-1"); !errors.Is(err, ledger.ErrUnknownTransfer) {
			t.Fatalf("capture by another client: %v", err)
		}
		if _, err := h.Capture(ctx, "atm-agent", "w-1-cap", hold.ID, 30_000, "ok-1"); err != nil {
			t.Fatal(err)
		}
		if a, _ := l.Account(ctx, accts[0].Number); a.Balance() != 70_000 || a.Available() != 70_000 {
			t.Fatalf("alice %+v", a)
		}
		if len(c.asked) != 2 {
			t.Fatalf("capture asked the checker: %+v", c.asked)
		}
		// The bank's own origins are not for back-end clients.
		for _, o := range []string{ledger.BankOwner, ledger.OriginLedger} {
			r := req
			r.Origin, r.Key = o, "x"
			if _, err := h.Hold(ctx, r); !errors.Is(err, ledger.ErrInvalidRequest) {
				t.Fatalf("hold as %q: %v", o, err)
			}
		}
		if _, err := ledger.Check(ctx, db); err != nil {
			t.Fatal(err)
		}
	})
}

// apiFixture is the HTTP API behind the back-end registry with two
// clients: mall and atm-agent hold the scope, desk does not.
type apiFixture struct {
	api                *API
	srv                *httptest.Server
	db                 *store.DB
	alice, bob, savers ledger.Account
}

const secret = "0123456789abcdef0123456789abcdef"

func newAPI(t *testing.T, db *store.DB) *apiFixture {
	t.Helper()
	ctx := context.Background()
	l := ledger.New(db, nil)
	a, err := OpenCustomerAccounts(ctx, l, "p-alice", "Alice", Opening{Current: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenCustomerAccounts(ctx, l, "p-bob", "Bob", Opening{})
	if err != nil {
		t.Fatal(err)
	}
	h := backend.HashSecret([]byte(secret))
	reg, err := backend.New([]backend.ClientConfig{
		{ID: "mall", SecretSHA256: h, Scopes: []string{backend.ScopeEbankHolds}},
		{ID: "atm-agent", SecretSHA256: h, Scopes: []string{backend.ScopeEbankHolds}},
		{ID: "desk", SecretSHA256: h, Scopes: []string{backend.ScopeOTPVerify}},
	})
	if err != nil {
		t.Fatal(err)
	}
	api := &API{Holds: &Holds{Ledger: l, Grants: RequireGrant{}, DefaultTimeout: 10 * time.Minute}}
	srv := httptest.NewServer(reg.Require(backend.ScopeEbankHolds, api.Handler()))
	t.Cleanup(srv.Close)
	return &apiFixture{api: api, srv: srv, db: db, alice: a[0], savers: a[1], bob: b[0]}
}

type answer struct {
	status int
	t      ledger.Transfer
	code   string
	msg    string
}

func (f *apiFixture) call(t *testing.T, client, method, path, body string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if client != "" {
		req.SetBasicAuth(client, secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode}
	if resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, &a.t); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		return a
	}
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	a.code, a.msg = e.Error.Code, e.Error.Message
	return a
}

// state is what the ledger holds: every account's columns and the
// number of transfers.
func state(t *testing.T, db *store.DB) string {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM ebank_transfers`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(context.Background(), `SELECT id, debits_posted, credits_posted, debits_pending, credits_pending FROM ebank_accounts ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	s := fmt.Sprint(n)
	for rows.Next() {
		var v [5]int64
		rows.Scan(&v[0], &v[1], &v[2], &v[3], &v[4])
		s += fmt.Sprint(v)
	}
	return s
}

func TestAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newAPI(t, db)
		hold := func(key string, amount string, grant string) string {
			return fmt.Sprintf(`{"key":%q,"debit_account":%q,"credit_account":%q,"amount":%s,"grant":%q,"code":"checkout"}`, key, f.alice.Number, f.bob.Number, amount, grant)
		}
		ok := f.call(t, "mall", "POST", "/v1/holds", hold("order-1", "40000", "g-1"))
		if ok.status != 201 || ok.t.Kind != ledger.KindPending || ok.t.Amount != 40_000 || ok.t.Origin != "mall" || ok.t.Grant != "g-1" {
			t.Fatalf("hold: %+v", ok)
		}
		id := ok.t.ID
		if again := f.call(t, "mall", "POST", "/v1/holds", hold("order-1", "40000", "g-1")); again.status != 200 || again.t.ID != id || !again.t.Replayed {
			t.Fatalf("double-submitted hold: %+v", again)
		}
		for _, tc := range []struct {
			name, client, method, path, body string
			status                           int
			code                             string
			says                             string
		}{
			{"no credentials", "", "POST", "/v1/holds", hold("k", "100", "g"), 401, "unauthorized", "HTTP Basic"},
			{"a client without the scope", "desk", "POST", "/v1/holds", hold("k", "100", "g"), 403, "insufficient_scope", "ebank:holds"},
			{"no grant", "mall", "POST", "/v1/holds", hold("k", "100", ""), 403, "grant_required", "grant"},
			{"a fraction of a fen", "mall", "POST", "/v1/holds", hold("k", "100.5", "g"), 400, "invalid_amount", "whole number of fen"},
			{"an exponent", "mall", "POST", "/v1/holds", hold("k", "1e3", "g"), 400, "invalid_amount", "1e3"},
			{"a string amount", "mall", "POST", "/v1/holds", hold("k", `"100"`, "g"), 400, "invalid_amount", "string"},
			{"no amount", "mall", "POST", "/v1/holds", hold("k", "null", "g"), 400, "invalid_amount", "missing"},
			{"zero", "mall", "POST", "/v1/holds", hold("k", "0", "g"), 400, "invalid_amount", "above zero"},
			{"negative", "mall", "POST", "/v1/holds", hold("k", "-100", "g"), 400, "invalid_amount", "above zero"},
			{"beyond int64", "mall", "POST", "/v1/holds", hold("k", "99999999999999999999", "g"), 400, "invalid_amount", "whole number"},
			{"over the balance less the hold", "mall", "POST", "/v1/holds", hold("k", "60001", "g"), 422, "insufficient_funds", "600.00 yuan available"},
			{"to oneself", "mall", "POST", "/v1/transfers", fmt.Sprintf(`{"key":"k","debit_account":%q,"credit_account":%q,"amount":100,"grant":"g"}`, f.alice.Number, f.alice.Number), 422, "same_account", f.alice.Number},
			{"to an unknown account", "mall", "POST", "/v1/transfers", fmt.Sprintf(`{"key":"k","debit_account":%q,"credit_account":"6299880000000000000","amount":100,"grant":"g"}`, f.alice.Number), 422, "unknown_account", "6299880000000000000"},
			{"an unknown field", "mall", "POST", "/v1/holds", `{"key":"k","amount":1,"payee":"x"}`, 400, "invalid_json", "payee"},
			{"the key of another movement", "mall", "POST", "/v1/holds", hold("order-1", "40001", "g-1"), 409, "idempotency_key_reused", "order-1"},
			{"a transfer with a timeout", "mall", "POST", "/v1/transfers", `{"key":"k","amount":1,"timeout_seconds":60}`, 400, "invalid_request", "timeout"},
			{"another client's hold", "atm-agent", "GET", "/v1/holds/" + id, "", 404, "unknown_transfer", id},
			{"capture another client's hold", "atm-agent", "POST", "/v1/holds/" + id + "/capture", `{"key":"c","amount":100,"grant":"g-1"}`, 404, "unknown_transfer", id},
			{"capture with another grant", "mall", "POST", "/v1/holds/" + id + "/capture", `{"key":"c","amount":100,"grant":"g-2"}`, 403, "grant_mismatch", "another grant"},
			{"capture over the hold", "mall", "POST", "/v1/holds/" + id + "/capture", `{"key":"c","amount":40001,"grant":"g-1"}`, 422, "amount_over_hold", "400.00 yuan"},
			{"capture a fraction", "mall", "POST", "/v1/holds/" + id + "/capture", `{"key":"c","amount":0.5,"grant":"g-1"}`, 400, "invalid_amount", "0.5"},
			{"release with an amount", "mall", "POST", "/v1/holds/" + id + "/release", `{"key":"r","amount":5,"grant":"g-1"}`, 400, "invalid_request", "no amount"},
			{"an unknown hold", "mall", "POST", "/v1/holds/123/capture", `{"key":"c","amount":1,"grant":"g-1"}`, 404, "unknown_transfer", "123"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := state(t, db)
				a := f.call(t, tc.client, tc.method, tc.path, tc.body)
				if a.status != tc.status || a.code != tc.code || !strings.Contains(a.msg, tc.says) {
					t.Fatalf("got %d %s %q; want %d %s saying %q", a.status, a.code, a.msg, tc.status, tc.code, tc.says)
				}
				if state(t, db) != before {
					t.Fatal("a refused request changed the ledger")
				}
			})
		}

		// Capture 350 of the 400 held; the rest goes back to alice.
		cap1 := f.call(t, "mall", "POST", "/v1/holds/"+id+"/capture", `{"key":"ship-1","amount":35000,"grant":"g-1"}`)
		if cap1.status != 201 || cap1.t.Kind != ledger.KindPost || cap1.t.PendingID != id || cap1.t.Amount != 35_000 {
			t.Fatalf("capture: %+v", cap1)
		}
		if again := f.call(t, "mall", "POST", "/v1/holds/"+id+"/capture", `{"key":"ship-1","amount":35000,"grant":"g-1"}`); again.status != 200 || again.t.ID != cap1.t.ID {
			t.Fatalf("capture replay: %+v", again)
		}
		before := state(t, db)
		if a := f.call(t, "mall", "POST", "/v1/holds/"+id+"/capture", `{"key":"ship-2","amount":35000,"grant":"g-1"}`); a.status != 409 || a.code != "hold_captured" {
			t.Fatalf("second capture: %+v", a)
		}
		if a := f.call(t, "mall", "POST", "/v1/holds/"+id+"/release", `{"key":"undo","grant":"g-1"}`); a.status != 409 || a.code != "hold_captured" {
			t.Fatalf("release after capture: %+v", a)
		}
		if state(t, db) != before {
			t.Fatal("a refused capture or release changed the ledger")
		}
		if g := f.call(t, "mall", "GET", "/v1/holds/"+id, ""); g.status != 200 || g.t.State != ledger.HoldCaptured || g.t.Captured != 35_000 || g.t.ResolvedBy != cap1.t.ID {
			t.Fatalf("get: %+v", g)
		}

		// A hold released, then a capture of it refused.
		h2 := f.call(t, "atm-agent", "POST", "/v1/holds", fmt.Sprintf(`{"key":"w-1","debit_account":%q,"credit_account":%q,"amount":10000,"grant":"g-9","timeout_seconds":60}`, f.alice.Number, f.bob.Number))
		if h2.status != 201 || h2.t.TimeoutMS-h2.t.CreatedMS != 60_000 {
			t.Fatalf("ATM hold: %+v", h2)
		}
		if a := f.call(t, "atm-agent", "POST", "/v1/holds/"+h2.t.ID+"/release", `{"key":"w-1-rel","grant":"g-9"}`); a.status != 201 || a.t.Kind != ledger.KindVoid {
			t.Fatalf("release: %+v", a)
		}
		before = state(t, db)
		if a := f.call(t, "atm-agent", "POST", "/v1/holds/"+h2.t.ID+"/capture", `{"key":"w-1-cap","amount":10000,"grant":"g-9"}`); a.status != 409 || a.code != "hold_released" {
			t.Fatalf("capture after release: %+v", a)
		}
		if state(t, db) != before {
			t.Fatal("a capture after release changed the ledger")
		}

		// A refund as a transfer posted at once.
		if a := f.call(t, "mall", "POST", "/v1/transfers", fmt.Sprintf(`{"key":"refund-1","debit_account":%q,"credit_account":%q,"amount":5000,"grant":"g-r","code":"refund"}`, f.bob.Number, f.alice.Number)); a.status != 201 || a.t.Kind != ledger.KindPosted {
			t.Fatalf("refund: %+v", a)
		}
		l := ledger.New(db, nil)
		if a, _ := l.Account(context.Background(), f.alice.Number); a.Balance() != 70_000 || a.Available() != 70_000 {
			t.Fatalf("alice %+v", a)
		}
		if _, err := ledger.Check(context.Background(), db); err != nil {
			t.Fatal(err)
		}
	})
}

// A fault that is not the request's (here the database gone) answers 503
// "try again" with nothing internal, and OnError hears the cause.
func TestAPIHidesFaults(t *testing.T) {
	f := newAPI(t, storetest.SQLite(t))
	var heard []error
	f.api.OnError = func(_ *http.Request, err error) { heard = append(heard, err) }
	f.db.Close()
	a := f.call(t, "mall", "POST", "/v1/holds", fmt.Sprintf(`{"key":"k","debit_account":%q,"credit_account":%q,"amount":100,"grant":"g"}`, f.alice.Number, f.bob.Number))
	if a.status != 503 || a.code != "ledger_unavailable" || strings.Contains(a.msg, "sql") || !strings.Contains(a.msg, "same key") {
		t.Fatalf("got %+v", a)
	}
	if len(heard) != 1 || !strings.Contains(heard[0].Error(), "closed") {
		t.Fatalf("OnError heard %v", heard)
	}
}
