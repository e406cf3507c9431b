package mall

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/backend"
	"github.com/egate-bank/egate/authsvc/factors"
	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/risk"
	"github.com/egate-bank/egate/authsvc/txauth"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/platform/ebank"
)

func TestMain(m *testing.M) { hsmtest.Main(m) }

// benchRules are the benchmark's risk rules: evaluated on every intent,
// refusing none of its payments.
const benchRules = `rules:
  - name: blocked-payee
    when: intent.payee == "6222000000009999"
    action: deny
    reason: Payments to this account are blocked.
  - name: big-payment
    when: intent.amount > 10000000
    action: step-up
    level: 3
    reason: Large payments are confirmed with a token.
`

var smsCode = regexp.MustCompile(`\] (\d{6}) is your code`)

// BenchmarkCheckout: checkouts a second end to end on SQLite, as the
// mall's pages drive them, every call over HTTP to the real services on
// one database: the cart checked (Prepare), the intent authorized by
// authsvc/txauth (limits, risk rules), an SMS challenge begun and proved
// (the code from the development sink, verified with the HSM's key in
// SoftHSM2), the grant executed, the order placed and paid by an ebank
// hold through the holds API, and the hold captured as the merchant
// ships. Each goroutine pays from its own customers (1 yuan each, level 2;
// a new customer every 500 checkouts keeps under the day's limit and the SMS rate limits).
// checkouts/s is whole checkouts a second.
func BenchmarkCheckout(b *testing.B) {
	db := storetest.SQLite(b)
	r := newRig(b, db)
	ctx := context.Background()
	set, err := factors.Build(ctx, factors.Config{Enabled: []string{factors.SMS}, SMS: factors.SMSConfig{DevSink: true, PerCustomer: 1000, PerPhone: 1000, PerIP: 1000}},
		factors.Deps{DB: db, HSM: hsmtest.Open(b)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { set.Close() })
	// The bank's built-in rules would send the eleventh payment of an hour
	// to review (velocity-hour); the benchmark's customers pay hundreds.
	eng, err := risk.NewEngine(nil, map[string][]byte{"bench.yaml": []byte(benchRules)})
	if err != nil {
		b.Fatal(err)
	}
	svc, err := txauth.New(txauth.Config{}, txauth.Deps{DB: db, Tools: txauth.FromFactors(set), Accounts: ebank.Owners{Ledger: r.l}, Risk: eng})
	if err != nil {
		b.Fatal(err)
	}
	const id, secret = "mall", "bench-secret-0123456789abcdef0123456789"
	reg, err := backend.New([]backend.ClientConfig{{ID: id, SecretSHA256: backend.HashSecret([]byte(secret)), Scopes: []string{backend.ScopeTxAuthorize, backend.ScopeTxExecute}}})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler(reg))
	b.Cleanup(srv.Close)
	tx := &txclient.Client{BaseURL: srv.URL, ID: id, Secret: secret}
	tea := r.product(b, r.tea.ID, "Bench tea", 1_00, 1_000_000)

	var seq atomic.Int64
	newCustomer := func() (pid, mobile, payer string) {
		n := seq.Add(1)
		var rnd [4]byte
		rand.Read(rnd[:])
		pid, mobile = "PB"+hex.EncodeToString(rnd[:]), fmt.Sprintf("139%08d", n)
		if _, err := db.Exec(ctx, `INSERT INTO customers (passport_id, login_name, mobile, reserved_message, password_hash, password_changed_ms, created_ms)
VALUES (?, ?, ?, 'x', 'x', 0, ?)`, pid, pid, mobile, time.Now().Add(-400*24*time.Hour).UnixMilli()); err != nil {
			b.Fatal(err)
		}
		accts, err := ebank.OpenCustomerAccounts(ctx, r.l, pid, pid, ebank.Opening{Current: 100_000_00})
		if err != nil {
			b.Fatal(err)
		}
		return pid, mobile, accts[0].Number
	}
	checkout := func(pid, mobile, payer string) error {
		c, err := r.m.SetQty(ctx, pid, tea.ID, 1)
		if err != nil {
			return err
		}
		key := fmt.Sprintf("bench-%d", seq.Add(1))
		co := Checkout{Customer: pid, Key: key, Payer: payer, Rev: c.Rev}
		q, err := r.m.Prepare(ctx, co)
		if err != nil {
			return err
		}
		in := intent.Intent{Customer: pid, Channel: intent.Web, Kind: intent.Payment, Payer: payer, Payee: q.Payee, Amount: q.Cart.Total,
			Currency: "CNY", Device: "web:bench", ClientIP: "192.0.2.9", IdempotencyKey: key}
		d, err := tx.Authorize(ctx, in)
		if err != nil || d.Decision != txclient.Allow || d.Level != 2 {
			return fmt.Errorf("authorize: %+v %w", d, err)
		}
		ch, err := tx.Challenge(ctx, d.Intent, txclient.ChallengeRequest{Factor: "sms"})
		if err != nil {
			return err
		}
		msgs, err := set.SMSSink.List(ctx, mobile, 1)
		if err != nil || len(msgs) != 1 {
			return fmt.Errorf("no SMS: %w", err)
		}
		code := smsCode.FindStringSubmatch(msgs[0].Body)
		if code == nil {
			return fmt.Errorf("SMS %q", msgs[0].Body)
		}
		g, err := tx.Proof(ctx, d.Intent, txclient.ProofRequest{ChallengeID: ch.ID, Response: code[1], Intent: &in})
		if err != nil {
			return err
		}
		if _, err := tx.Execute(ctx, g.Token, in); err != nil {
			return err
		}
		o, err := r.m.Place(ctx, co, d.Intent)
		if err != nil {
			return err
		}
		_, err = r.m.Ship(ctx, r.tea.ID, o.ID)
		return err
	}
	b.SetParallelism(2)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		pid, mobile, payer := newCustomer()
		for n := 0; pb.Next(); n++ {
			if n > 0 && n%500 == 0 {
				pid, mobile, payer = newCustomer()
			}
			if err := checkout(pid, mobile, payer); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "checkouts/s")
	b.StopTimer()
	if rep := r.books(b); rep.Holds != 0 {
		b.Fatalf("holds left open: %+v", rep)
	}
}
