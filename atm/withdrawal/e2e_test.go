package withdrawal_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egate-bank/egate/atm"
	"github.com/egate-bank/egate/atm/atmtest"
	"github.com/egate-bank/egate/atm/gateway"
	"github.com/egate-bank/egate/atm/withdrawal"
	"github.com/egate-bank/egate/authsvc/limits"
	"github.com/egate-bank/egate/internal/app"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
	simatm "github.com/egate-bank/egate/simulators/atm"
)

// limitAuth authorizes a withdrawal by the real limit counter
// (authsvc/limits) at the level the customer's phone proves: "level2"
// proves level 2 (1,000 yuan a transaction), "level4" level 4. authsvc/txauth's challenge and
// proof are not run here: the phone simulator that answers them is not on
// main yet.
type limitAuth struct{ c *limits.Counter }

func (a limitAuth) Authorize(ctx context.Context, in withdrawal.Intent, proof string) (string, error) {
	level := map[string]int{"level2": 2, "level4": 4}[proof]
	if level == 0 {
		return "", errors.New("the proof does not verify")
	}
	if _, err := a.c.Count(ctx, in.Account, "atm-wd:"+in.Session, in.AmountFen, level); err != nil {
		return "", err
	}
	return "grant-" + in.Session, nil
}

// bank is the data centre's side of a withdrawal: the ledger with a
// customer's account, the limit counter, the withdrawal service (rebuilt by
// restart), and a pump of the gateway's events into the service.
type bank struct {
	db      *store.DB
	d       *dc
	atm     withdrawal.Commander // the gateway, or a test's stand-in in front of it
	led     *ledger.Ledger
	wl      app.WithdrawalLedger
	auth    limitAuth
	account string
	svc     atomic.Pointer[withdrawal.Service]
	settled atomic.Int64 // withdrawals that reached an end (the balance alert's hook)
	days    atomic.Int64 // how far the limit counter's clock runs ahead, in days
	refused []string     // sessions whose approval was refused (still QR_SHOWN)
}

func newBank(t *testing.T, d *dc, db *store.DB) *bank {
	t.Helper()
	ctx := context.Background()
	l := ledger.New(db, nil)
	if _, err := ebank.EnsureBankAccounts(ctx, l); err != nil {
		t.Fatal(err)
	}
	accts, err := ebank.OpenCustomerAccounts(ctx, l, "P-ALICE", "Alice", ebank.Opening{Current: 500_000})
	if err != nil {
		t.Fatal(err)
	}
	wl, err := app.NewWithdrawalLedger(ctx, &ebank.Holds{Ledger: l, Grants: ebank.RequireGrant{}, DefaultTimeout: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	b := &bank{db: db, d: d, atm: d.GW, led: l, wl: wl, account: accts[0].Number}
	// the limit counter's clock runs b.days ahead (a long soak spends more
	// than a day's limit)
	c, err := limits.NewCounter(db, limits.Default(), nil, func() time.Time { return time.Now().AddDate(0, 0, int(b.days.Load())) })
	if err != nil {
		t.Fatal(err)
	}
	b.auth = limitAuth{c}
	b.restart(t)
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-pctx.Done():
				return
			case ev := <-d.Events:
				b.svc.Load().Event(pctx, ev)
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return b
}

// fund credits the customer's account from the bank's equity.
func (b *bank) fund(t *testing.T, fen int64) {
	t.Helper()
	eq, err := b.led.BankAccount(context.Background(), ebank.LabelEquity)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.led.Transfer(context.Background(), ledger.Request{Origin: "bank", Key: "fund", Debit: eq.Number, Credit: b.account, Amount: fen}); err != nil {
		t.Fatal(err)
	}
}

// clockless records a refused approval; its session stays QR_SHOWN until
// it expires, which the check does not wait for.
func (b *bank) clockless(t *testing.T, w *withdrawal.Withdrawal, err error) {
	t.Helper()
	b.refused = append(b.refused, w.Session)
	t.Logf("approval of %s refused: %v", w.Session, err)
}

// restart drops the service and builds a new one over the database (the
// data centre killed and started again).
func (b *bank) restart(t *testing.T) {
	t.Helper()
	s, err := withdrawal.New(withdrawal.Options{DB: b.db, ATM: b.atm, Ledger: b.wl, Authorizer: b.auth,
		OnSettled: func(w withdrawal.Withdrawal) { b.settled.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	b.svc.Store(s)
}

func (b *bank) withdraw(t *testing.T, atmID string, fen int64) (*withdrawal.Withdrawal, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w, err := b.svc.Load().Open(ctx, atmID)
	if err != nil {
		t.Fatal(err)
	}
	return b.svc.Load().Approve(ctx, withdrawal.Approval{ATM: atmID, Session: w.Session, Account: b.account, AmountFen: fen, Proof: "level2"})
}

// wait waits for the withdrawal to reach an end (or SUSPECT).
func (b *bank) wait(t *testing.T, session string) *withdrawal.Withdrawal {
	t.Helper()
	var w *withdrawal.Withdrawal
	atmtest.WaitFor(t, "withdrawal "+session+" to settle", func() bool {
		var err error
		w, err = b.svc.Load().Get(context.Background(), session)
		return err == nil && (w.State.Final() || w.State == withdrawal.Suspect)
	})
	return w
}

// check is the invariant: per withdrawal held + captured + released =
// requested (the ledger's own hold record), captured = cash out; the
// ATMs' cash out equals what was captured; no transaction dispensed twice
// (the agent executed each dispense command once per transaction and the
// ATMs' journals pick each transaction's notes once); nothing unresolved
// but SUSPECT with a reason; the ledger check passes.
func (b *bank) check(t *testing.T, sims map[string]*simatm.Running) {
	t.Helper()
	ctx := context.Background()
	ws, err := b.svc.Load().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var captured int64
	for _, w := range ws {
		if w.Unresolved() && w.State != withdrawal.Suspect && !(w.State == withdrawal.QRShown && slices.Contains(b.refused, w.Session)) {
			t.Errorf("withdrawal %s left in %s", w.Session, w.State)
		}
		if w.State == withdrawal.Suspect && w.Reason == "" {
			t.Errorf("SUSPECT withdrawal %s without a reason", w.Session)
		}
		if w.Hold != "" {
			h, err := b.led.Get(ctx, w.Hold)
			if err != nil {
				t.Fatal(err)
			}
			var held int64
			if w.State == withdrawal.Suspect {
				held = h.Amount
			}
			if held+w.Captured+w.Released != w.AmountFen || h.Amount != w.AmountFen {
				t.Errorf("withdrawal %s (%s): held %d + captured %d + released %d ≠ requested %d", w.Session, w.State, held, w.Captured, w.Released, w.AmountFen)
			}
		}
		if w.Captured != w.CashOutFen && w.State == withdrawal.Captured {
			t.Errorf("withdrawal %s: captured %d ≠ cash out %d", w.Session, w.Captured, w.CashOutFen)
		}
		captured += w.Captured
	}
	var out int64
	notes := 0
	for _, w := range ws {
		if w.Txn == "" {
			continue
		}
		id, err := atm.ParseTxnID(w.Txn)
		if err != nil {
			t.Fatal(err)
		}
		r, ok := sims[w.ATM].Sim.Record(id)
		if !ok || r.State != atm.StateTaken {
			if w.Captured != 0 {
				t.Errorf("withdrawal %s (%s) captured %d fen, the ATM reports none taken (%v)", w.Session, w.State, w.Captured, r.State)
			}
			continue
		}
		var fen int64
		for _, c := range r.Cassettes {
			fen += int64(c.Presented) * denom(c.Cassette)
			notes += int(c.Presented)
		}
		if fen != w.Captured {
			t.Errorf("withdrawal %s (%s: %s) captured %d fen, the ATM reports %d taken", w.Session, w.State, w.Reason, w.Captured, fen)
		}
		out += fen
	}
	if out != captured {
		t.Errorf("the ATMs report %d fen taken, the withdrawals captured %d", out, captured)
	}
	taken := 0
	for _, s := range sims {
		taken += s.Sim.Totals().Taken
	}
	if taken != notes {
		t.Errorf("the ATMs' customers took %d notes, the withdrawals' records %d", taken, notes)
	}
	if _, err := ledger.Check(ctx, b.db); err != nil {
		t.Errorf("ledger check: %v", err)
	}
	var posted int64
	if err := b.db.QueryRow(ctx, `SELECT COALESCE(SUM(amount), 0) FROM ebank_transfers WHERE kind = 'post' AND origin = ?`, app.WithdrawalOrigin).Scan(&posted); err != nil {
		t.Fatal(err)
	}
	if posted != captured {
		t.Errorf("the ledger posted %d fen of withdrawals, the withdrawals captured %d", posted, captured)
	}
}

func denom(id uint8) int64 {
	for _, c := range simatm.DefaultCassettes() {
		if c.ID == id {
			return c.Denom
		}
	}
	return 0
}

var ctr struct {
	sync.Mutex
	n int
}

func object() string {
	ctr.Lock()
	defer ctr.Unlock()
	ctr.n++
	return fmt.Sprintf("wd-agent-%d", ctr.n)
}

// TestEndToEnd drives withdrawals through the real stack: the simulated
// ATM on a pty at 115200 baud, the branch agent over mutual TLS to the
// gateway, the ledger and the state in SQLite and PostgreSQL.
func TestEndToEnd(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		d := env.NewDC(t, db)
		if err := d.Reg.Assign(ctx, "BR-01", "ATM-0101"); err != nil {
			t.Fatal(err)
		}
		tok := d.Enroll(t, atmtest.BR01Token, object(), "BR-01")
		br := d.StartAgent(t, atmtest.AgentSpec{Branch: "BR-01", ATMs: []string{"ATM-0101"}, Token: &tok,
			Sim: simatm.Config{TakeAfter: 50 * time.Millisecond, TakeTimeout: 400 * time.Millisecond, PickTime: 5 * time.Millisecond}})
		br.WaitUp(t, 1)
		b := newBank(t, d, db)
		sim := br.Sims["ATM-0101"]
		faults := sim.Sim.Faults()
		set := func(spec string) {
			if err := faults.Set(spec); err != nil {
				t.Fatal(err)
			}
		}

		t.Run("happy path", func(t *testing.T) {
			w, err := b.withdraw(t, "ATM-0101", 30000)
			if err != nil {
				t.Fatal(err)
			}
			w = b.wait(t, w.Session)
			if w.State != withdrawal.Captured || w.Captured != 30000 || b.settled.Load() != 1 {
				t.Fatalf("%+v (settled %d)", w, b.settled.Load())
			}
			a, _ := b.led.Account(ctx, b.account)
			if a.Balance() != 500_000-30000 {
				t.Fatalf("balance %d", a.Balance())
			}
			// the same QR again (a replay), and a session of this ATM
			// presented as another's: refused, nothing dispensed
			if _, err := b.svc.Load().Approve(ctx, withdrawal.Approval{ATM: "ATM-0101", Session: w.Session, Account: b.account, AmountFen: 30000, Proof: "level2"}); !errors.Is(err, withdrawal.ErrSessionUsed) {
				t.Fatalf("replayed QR: %v", err)
			}
			o, err := b.svc.Load().Open(ctx, "ATM-0101")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.svc.Load().Approve(ctx, withdrawal.Approval{ATM: "ATM-0999", Session: o.Session, Account: b.account, AmountFen: 30000, Proof: "level2"}); !errors.Is(err, withdrawal.ErrForeignSession) {
				t.Fatalf("foreign QR: %v", err)
			}
			if n := br.Up.Status().Executed["dispense"]; n != 1 {
				t.Fatalf("%d dispenses executed, want 1", n)
			}
			// the operators' view asks the ATM for its own record
			h := d.GW.Handler()
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, httptest.NewRequest("GET", "/agent-gateway/atms/ATM-0101/txns/"+w.Txn, nil))
			var rec withdrawal.TxnRecord
			if err := json.Unmarshal(rr.Body.Bytes(), &rec); rr.Code != 200 || err != nil || rec.State != "TAKEN" || rec.Txn != w.Txn {
				t.Fatalf("GET txns: %d %s", rr.Code, rr.Body)
			}
			rr = httptest.NewRecorder()
			h.ServeHTTP(rr, httptest.NewRequest("GET", "/agent-gateway/atms/ATM-0101/txns/XYZ", nil))
			if rr.Code != 400 || !strings.Contains(rr.Body.String(), "bad_txn") {
				t.Fatalf("GET a bad txn id: %d %s", rr.Code, rr.Body)
			}
		})
		t.Run("over the limit", func(t *testing.T) {
			if _, err := b.withdraw(t, "ATM-0101", 150000); !errors.Is(err, withdrawal.ErrRefused) || !errors.Is(err, limits.ErrExceeded) {
				t.Fatalf("got %v", err)
			}
		})
		t.Run("not a multiple of the smallest note", func(t *testing.T) {
			if _, err := b.withdraw(t, "ATM-0101", 10050); !errors.Is(err, withdrawal.ErrCannotMix) {
				t.Fatalf("got %v", err)
			}
		})
		t.Run("jam after 2 notes", func(t *testing.T) {
			set("jam-after=2")
			w, err := b.withdraw(t, "ATM-0101", 40000)
			if err != nil {
				t.Fatal(err)
			}
			w = b.wait(t, w.Session)
			if w.State != withdrawal.NotDispensed || w.Released != 40000 {
				t.Fatalf("%+v", w)
			}
		})
		t.Run("jam before the first note", func(t *testing.T) {
			set("jam-after=0")
			w, err := b.withdraw(t, "ATM-0101", 20000)
			if err != nil {
				t.Fatal(err)
			}
			if w = b.wait(t, w.Session); w.State != withdrawal.NotDispensed {
				t.Fatalf("%+v", w)
			}
		})
		t.Run("not taken: retracted", func(t *testing.T) {
			set("customer-takes=false")
			defer set("customer-takes=true")
			w, err := b.withdraw(t, "ATM-0101", 20000)
			if err != nil {
				t.Fatal(err)
			}
			if w = b.wait(t, w.Session); w.State != withdrawal.Retracted || w.Released != 20000 {
				t.Fatalf("%+v", w)
			}
		})
		t.Run("link loss mid-dispense", func(t *testing.T) {
			set("pick-delay=100ms")
			defer set("pick-delay=0s")
			got := make(chan error, 1)
			var w *withdrawal.Withdrawal
			go func() {
				var err error
				w, err = b.withdraw(t, "ATM-0101", 50000)
				got <- err
			}()
			atmtest.WaitFor(t, "the dispense to start", func() bool {
				ws, _ := b.svc.Load().List(ctx, withdrawal.DispenseSent)
				return len(ws) > 0
			})
			time.Sleep(150 * time.Millisecond) // let a note or two be picked; the outcome is the same either way
			d.Proxy.Cut()
			if err := <-got; err != nil {
				t.Fatal(err)
			}
			if w = b.wait(t, w.Session); w.State != withdrawal.Captured || w.Captured != 50000 {
				t.Fatalf("%+v", w)
			}
		})
		t.Run("data centre killed after DISPENSE_SENT, before the dispense left", func(t *testing.T) {
			// The agent answers txn_status of a transaction the ATM never
			// accepted with a record in state NONE: recovery sends the same
			// dispense (same id) once, and the cash comes out once.
			before := br.Up.Status().Executed["dispense"]
			b.atm = dieBefore{Commander: d.GW, op: "dispense"}
			b.restart(t)
			o, err := b.svc.Load().Open(ctx, "ATM-0101")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.svc.Load().Approve(ctx, withdrawal.Approval{ATM: "ATM-0101", Session: o.Session, Account: b.account, AmountFen: 30000, Proof: "level2"}); err == nil {
				t.Fatal("the approval whose process died says nothing")
			}
			w, err := b.svc.Load().Get(ctx, o.Session)
			if err != nil || w.State != withdrawal.DispenseSent {
				t.Fatalf("%v %+v", err, w)
			}
			b.atm = d.GW
			b.restart(t)
			if err := b.svc.Load().Recover(ctx); err != nil {
				t.Fatal(err)
			}
			if w = b.wait(t, o.Session); w.State != withdrawal.Captured || w.Captured != 30000 {
				t.Fatalf("%+v", w)
			}
			if n := br.Up.Status().Executed["dispense"] - before; n != 1 {
				t.Fatalf("%d dispenses executed, want 1", n)
			}
		})
		t.Run("data centre killed after DISPENSE_SENT", func(t *testing.T) {
			set("pick-delay=50ms")
			defer set("pick-delay=0s")
			o, err := b.svc.Load().Open(ctx, "ATM-0101")
			if err != nil {
				t.Fatal(err)
			}
			actx, cancel := context.WithCancel(ctx)
			got := make(chan error, 1)
			go func() {
				_, err := b.svc.Load().Approve(actx, withdrawal.Approval{ATM: "ATM-0101", Session: o.Session, Account: b.account, AmountFen: 30000, Proof: "level2"})
				got <- err
			}()
			atmtest.WaitFor(t, "DISPENSE_SENT", func() bool {
				w, _ := b.svc.Load().Get(ctx, o.Session)
				return w != nil && w.State == withdrawal.DispenseSent
			})
			cancel() // the process dies: its call never returns a record
			<-got
			b.restart(t)
			var last string
			defer func() {
				if t.Failed() {
					t.Log("last recovery:", last)
				}
			}()
			atmtest.WaitFor(t, "the recovery to settle it", func() bool {
				err := b.svc.Load().Recover(ctx)
				w, _ := b.svc.Load().Get(ctx, o.Session)
				last = fmt.Sprintf("%s %s %v", w.State, w.Reason, err)
				return w.State.Final()
			})
			if w, _ := b.svc.Load().Get(ctx, o.Session); w.State != withdrawal.Captured || w.Captured != 30000 {
				t.Fatalf("%+v", w)
			}
		})
		// the events of this test's withdrawals are in; recovery leaves
		// nothing to do
		if err := b.svc.Load().Recover(ctx); err != nil {
			t.Fatal(err)
		}
		b.check(t, br.Sims)
	})
}

// dieBefore stands for a data centre that dies after writing its state and
// before the command op leaves: the command is never sent.
type dieBefore struct {
	withdrawal.Commander
	op string
}

func (d dieBefore) Send(ctx context.Context, cmd gateway.Command) (json.RawMessage, error) {
	if cmd.Op == d.op {
		return nil, fmt.Errorf("the data centre died before sending %s: %w", cmd.Op, context.Canceled)
	}
	return d.Commander.Send(ctx, cmd)
}
