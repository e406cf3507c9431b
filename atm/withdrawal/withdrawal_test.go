package withdrawal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var rigs struct {
	mu sync.Mutex
	n  int
}

type rig struct {
	id   string // the ATM, one per rig: the rigs of a test share its database
	db   *store.DB
	atm  *fakeATM
	led  *fakeLedger
	clk  *clock
	auth fakeAuth
	svc  *Service
}

func newRig(t *testing.T, db *store.DB) *rig {
	t.Helper()
	rigs.mu.Lock()
	rigs.n++
	id := fmt.Sprintf("ATM-%04d", rigs.n)
	rigs.mu.Unlock()
	r := &rig{id: id, db: db, atm: newFakeATM(id), led: newFakeLedger(), clk: &clock{t: time.Unix(1_800_000_000, 0)},
		auth: fakeAuth{limit: 500000, calls: new(atomic.Int64)}}
	r.restart(t)
	return r
}

// restart drops the service and builds a new one over the same database:
// the data centre killed and started again.
func (r *rig) restart(t *testing.T) {
	t.Helper()
	svc, err := New(Options{DB: r.db, ATM: r.atm, Ledger: r.led, Authorizer: r.auth, Now: r.clk.now})
	if err != nil {
		t.Fatal(err)
	}
	r.svc = svc
}

func (r *rig) open(t *testing.T) *Withdrawal {
	t.Helper()
	w, err := r.svc.Open(context.Background(), r.id)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (r *rig) approve(w *Withdrawal, fen int64) (*Withdrawal, error) {
	return r.svc.Approve(context.Background(), Approval{ATM: r.id, Session: w.Session, Account: "acct-1", AmountFen: fen, Proof: "ok"})
}

func (r *rig) state(t *testing.T, session string) *Withdrawal {
	t.Helper()
	w, err := r.svc.Get(context.Background(), session)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// check is the invariant of every test: per withdrawal held + captured +
// released = requested, captured = cash out; the ATM's cash out equals
// what was captured; no transaction dispensed twice; nothing unresolved but
// SUSPECT with a reason.
func (r *rig) check(t *testing.T) {
	t.Helper()
	// sessions not approved expire; a later run resolves the rest
	r.clk.add(10 * time.Minute)
	if err := r.svc.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	all, err := r.svc.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ws []*Withdrawal
	for _, w := range all {
		if w.ATM == r.id {
			ws = append(ws, w)
		}
	}
	var captured int64
	for _, w := range ws {
		if w.Unresolved() && w.State != Suspect {
			t.Errorf("withdrawal %s left unresolved in %s", w.Session, w.State)
		}
		if w.State == Suspect && w.Reason == "" {
			t.Errorf("SUSPECT withdrawal %s has no reason", w.Session)
		}
		if w.Hold != "" {
			h := r.led.holds[w.Hold]
			var held int64
			if !h.settled {
				held = h.amount
			}
			if held+w.Captured+w.Released != w.AmountFen || h.captured != w.Captured {
				t.Errorf("withdrawal %s (%s): held %d + captured %d + released %d ≠ requested %d (ledger captured %d)",
					w.Session, w.State, held, w.Captured, w.Released, w.AmountFen, h.captured)
			}
		}
		if w.State == Captured && w.Captured != w.CashOutFen {
			t.Errorf("withdrawal %s: captured %d, cash out %d", w.Session, w.Captured, w.CashOutFen)
		}
		captured += w.Captured
	}
	if out := r.atm.cashOut(); out != captured {
		t.Errorf("the ATM paid out %d fen, the ledger captured %d", out, captured)
	}
	for txn, n := range r.atm.dispenses {
		if n > 1 {
			t.Errorf("transaction %s dispensed %d times", txn, n)
		}
	}
}

func TestForwardOnly(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		from, to State
		ok       bool
	}{
		{QRShown, Authorized, true}, {Authorized, QRShown, false}, {DispenseSent, Taken, true},
		{Presented, Retracted, true}, {Captured, Suspect, false}, {Suspect, Captured, true},
		{Suspect, Retracted, false}, {Expired, Authorized, false}, {Taken, Presented, false},
	} {
		if got := Forward(c.from, c.to); got != c.ok {
			t.Errorf("Forward(%s, %s) = %v", c.from, c.to, got)
		}
	}
}

func TestQR(t *testing.T) {
	t.Parallel()
	a, s, err := ParseQR(QRText("ATM-0101", "0123456789abcdef0123456789abcdef"))
	if err != nil || a != "ATM-0101" || s != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("ParseQR: %q %q %v", a, s, err)
	}
	for _, bad := range []string{"", "hello", "egate-wd:1::0123456789abcdef0123456789abcdef", "egate-wd:1:ATM-1x0123456789abcdef0123456789abcdef"} {
		if _, _, err := ParseQR(bad); !errors.Is(err, ErrBadRequest) {
			t.Errorf("ParseQR(%q): %v", bad, err)
		}
	}
}

// TestFlow runs one withdrawal per case through the state machine on both
// engines.
func TestFlow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		t.Run("happy path: taken, captured", func(t *testing.T) {
			r := newRig(t, db)
			w := r.open(t)
			w, err := r.approve(w, 30000)
			if err != nil || w.State != Presented {
				t.Fatalf("approve: %v %+v", err, w)
			}
			if err := r.svc.Event(ctx, r.atm.customer(w.Txn, true)); err != nil {
				t.Fatal(err)
			}
			w = r.state(t, w.Session)
			if w.State != Captured || w.Captured != 30000 || r.led.balance["acct-1"] != 1_000_000-30000 {
				t.Fatalf("after taken: %+v balance %d", w, r.led.balance["acct-1"])
			}
			if _, err := r.approve(w, 30000); !errors.Is(err, ErrSessionUsed) {
				t.Fatalf("replayed session: %v", err)
			}
			r.check(t)
		})
		t.Run("Recover dispenses first", func(t *testing.T) {
			// Recover (every few seconds beside the approvals) takes the
			// AUTHORIZED withdrawal while its approval is at the hold and
			// dispenses it: the approval answers where it is, not a
			// conflict, and nothing is held or dispensed twice
			r := newRig(t, db)
			r.led.afterHold = func() {
				if err := r.svc.Recover(ctx); err != nil {
					t.Error(err)
				}
			}
			w, err := r.approve(r.open(t), 30000)
			if err != nil || w.State != Presented {
				t.Fatalf("approve: %v %+v", err, w)
			}
			if len(r.led.holds) != 1 || len(r.atm.dispenses) != 1 {
				t.Fatalf("%d holds, %d dispenses", len(r.led.holds), len(r.atm.dispenses))
			}
			r.svc.Event(ctx, r.atm.customer(w.Txn, true))
			r.check(t)
		})
		t.Run("session expires while the approval is at the hold", func(t *testing.T) {
			// Recover ends the expired AUTHORIZED withdrawal while its
			// approval waits for the ledger: the approval must not then
			// dispense against the hold Recover released
			r := newRig(t, db)
			w := r.open(t)
			atHold, resume, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
			r.led.afterHold = func() { close(atHold); <-resume }
			go func() {
				_, err := r.approve(w, 30000)
				done <- err
			}()
			<-atHold
			r.clk.add(5 * time.Minute)
			var approveErr error
			r.led.afterRelease = func() { close(resume); approveErr = <-done }
			if err := r.svc.Recover(ctx); err != nil {
				t.Fatal(err)
			}
			t.Logf("the approval answered %v", approveErr)
			if got := r.state(t, w.Session); got.State != NotDispensed || len(r.atm.dispenses) != 0 {
				t.Fatalf("%s (%s), %d dispenses", got.State, got.Reason, len(r.atm.dispenses))
			}
			r.check(t)
		})
		t.Run("expired session", func(t *testing.T) {
			r := newRig(t, db)
			w := r.open(t)
			r.clk.add(3 * time.Minute)
			if _, err := r.approve(w, 30000); !errors.Is(err, ErrExpired) {
				t.Fatalf("expired: %v", err)
			}
			if w := r.state(t, w.Session); w.State != Expired {
				t.Fatalf("state %s", w.State)
			}
			if len(r.led.holds) != 0 || len(r.atm.dispenses) != 0 {
				t.Fatal("an expired session moved money")
			}
			r.check(t)
		})
		t.Run("foreign and unknown session", func(t *testing.T) {
			r := newRig(t, db)
			w := r.open(t)
			_, err := r.svc.Approve(ctx, Approval{ATM: "ATM-2", Session: w.Session, Account: "acct-1", AmountFen: 10000, Proof: "ok"})
			if !errors.Is(err, ErrForeignSession) {
				t.Fatalf("foreign: %v", err)
			}
			_, err = r.svc.Approve(ctx, Approval{ATM: r.id, Session: "00000000000000000000000000000000", Account: "acct-1", AmountFen: 10000, Proof: "ok"})
			if !errors.Is(err, ErrUnknownSession) {
				t.Fatalf("unknown: %v", err)
			}
			if w := r.state(t, w.Session); w.State != QRShown {
				t.Fatalf("a foreign scan changed the session: %s", w.State)
			}
			r.check(t)
		})
		t.Run("replaced session", func(t *testing.T) {
			r := newRig(t, db)
			w1 := r.open(t)
			r.open(t)
			if _, err := r.approve(w1, 10000); !errors.Is(err, ErrSessionUsed) {
				t.Fatalf("the first session after a second was opened: %v", err)
			}
		})
		refusals := []struct {
			name string
			fen  int64
			want error
		}{
			{"over the limit", 600000, ErrRefused},
			{"over the balance", 600000, ErrRefused}, // balance 5,000 yuan
			{"not a multiple of the smallest note", 10050, ErrCannotMix},
			{"more than the cassettes hold", 10_000_000, ErrCannotMix},
		}
		for _, c := range refusals {
			t.Run(c.name, func(t *testing.T) {
				r := newRig(t, db)
				w := r.open(t)
				if c.name == "over the balance" {
					r.svc.opt.Authorizer = fakeAuth{limit: 1 << 40}
					r.led.balance["acct-1"] = 500000
				}
				before := r.led.balance["acct-1"]
				if _, err := r.approve(w, c.fen); !errors.Is(err, c.want) {
					t.Fatalf("got %v, want %v", err, c.want)
				}
				if len(r.atm.dispenses) != 0 || r.led.balance["acct-1"] != before {
					t.Fatal("a refused withdrawal moved money")
				}
				if c.name == "over the limit" {
					// the refusal gave up its claim: the same QR, a smaller amount
					if w, err := r.approve(w, 30000); err != nil || w.State != Presented {
						t.Fatalf("the same QR approved again after a refusal: %v", err)
					}
					r.svc.Event(ctx, r.atm.customer(r.state(t, w.Session).Txn, true))
				}
				r.check(t)
			})
		}
		t.Run("second withdrawal while cash sits at the exit", func(t *testing.T) {
			r := newRig(t, db)
			w, err := r.approve(r.open(t), 20000)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.svc.Open(ctx, r.id); !errors.Is(err, ErrCashAtExit) {
				t.Fatalf("open with cash at the exit: %v", err)
			}
			if err := r.svc.Event(ctx, r.atm.customer(w.Txn, true)); err != nil {
				t.Fatal(err)
			}
			if _, err := r.approve(r.open(t), 20000); err != nil {
				t.Fatalf("after the cash was taken: %v", err)
			}
		})
		for _, jam := range []int{0, 3} {
			t.Run("jam after "+string(rune('0'+jam))+" notes", func(t *testing.T) {
				r := newRig(t, db)
				r.atm.jamAfter = jam
				w, err := r.approve(r.open(t), 50000)
				if err != nil {
					t.Fatal(err)
				}
				if w.State != NotDispensed || w.Released != 50000 || r.led.balance["acct-1"] != 1_000_000 {
					t.Fatalf("jam: %+v", w)
				}
				r.check(t)
			})
		}
		t.Run("retracted", func(t *testing.T) {
			r := newRig(t, db)
			w, _ := r.approve(r.open(t), 40000)
			if err := r.svc.Event(ctx, r.atm.customer(w.Txn, false)); err != nil {
				t.Fatal(err)
			}
			if w := r.state(t, w.Session); w.State != Retracted || w.Released != 40000 {
				t.Fatalf("retract: %+v", w)
			}
			r.check(t)
		})
		t.Run("retract count unknown is SUSPECT, settled by an operator", func(t *testing.T) {
			r := newRig(t, db)
			r.atm.retractN = 1
			w, _ := r.approve(r.open(t), 40000)
			if err := r.svc.Event(ctx, r.atm.customer(w.Txn, false)); err != nil {
				t.Fatal(err)
			}
			w = r.state(t, w.Session)
			if w.State != Suspect || w.Reason == "" {
				t.Fatalf("partial retract: %+v", w)
			}
			r.restart(t)
			if err := r.svc.Recover(ctx); err != nil {
				t.Fatal(err)
			}
			if w := r.state(t, w.Session); w.State != Suspect {
				t.Fatalf("recover reversed a SUSPECT one: %s", w.State)
			}
			if _, err := r.svc.Settle(ctx, Settlement{Session: w.Session, Operator: "alice", CaptureFen: 50000, Reason: "x"}); !errors.Is(err, ErrBadRequest) {
				t.Fatalf("capture above the amount: %v", err)
			}
			w, err := r.svc.Settle(ctx, Settlement{Session: w.Session, Operator: "alice", CaptureFen: 0, Reason: "counted the bin: all notes back"})
			if err != nil || w.State != NotDispensed || w.SettledBy != "alice" {
				t.Fatalf("settle: %v %+v", err, w)
			}
			if _, err := r.svc.Settle(ctx, Settlement{Session: w.Session, Operator: "bob", Reason: "again"}); !errors.Is(err, ErrNotSuspect) {
				t.Fatalf("settle twice: %v", err)
			}
			r.check(t)
		})
	})
}

// TestRecoverEveryState kills the data centre (drops the service, builds a
// new one over the same database) in each persisted state and recovers.
func TestRecoverEveryState(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		cases := []struct {
			name  string
			crash func(r *rig) // makes the approval stop in the state
			at    State
			later func(r *rig, w *Withdrawal) // what happens at the ATM while down
			want  State
		}{
			{"QR_SHOWN, session expires", nil, QRShown, func(r *rig, w *Withdrawal) { r.clk.add(5 * time.Minute) }, Expired},
			{"AUTHORIZED, hold not made", func(r *rig) { r.led.failNext = "hold" }, Authorized, nil, Presented},
			{"AUTHORIZED, session expired meanwhile", func(r *rig) { r.led.failNext = "hold" }, Authorized,
				func(r *rig, w *Withdrawal) { r.clk.add(5 * time.Minute) }, NotDispensed},
			{"DISPENSE_SENT, command never arrived", func(r *rig) { r.atm.drop = "dispense" }, DispenseSent, nil, Presented},
			{"DISPENSE_SENT, command never arrived, the ATM says UNKNOWN_TXN", func(r *rig) { r.atm.drop = "dispense"; r.atm.unknownAsError = true }, DispenseSent, nil, Presented},
			{"DISPENSE_SENT, answer lost", func(r *rig) { r.atm.lose = "dispense" }, DispenseSent, nil, Presented},
			{"DISPENSE_SENT, answer lost, taken meanwhile", func(r *rig) { r.atm.lose = "dispense"; r.atm.autoTake = true }, DispenseSent, nil, Captured},
			{"DISPENSE_SENT, never arrived, expired", func(r *rig) { r.atm.drop = "dispense" }, DispenseSent,
				func(r *rig, w *Withdrawal) { r.clk.add(5 * time.Minute) }, Suspect},
			{"PRESENTED, taken while down", nil, Presented, func(r *rig, w *Withdrawal) { r.atm.customer(w.Txn, true) }, Captured},
			{"PRESENTED, retracted while down", nil, Presented, func(r *rig, w *Withdrawal) { r.atm.customer(w.Txn, false) }, Retracted},
			{"TAKEN, capture not made", func(r *rig) { r.atm.autoTake = true; r.led.failNext = "capture" }, Taken, nil, Captured},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := newRig(t, db)
				w := r.open(t)
				if c.at != QRShown {
					if c.crash != nil {
						c.crash(r)
					}
					r.approve(w, 30000)
				}
				w = r.state(t, w.Session)
				if w.State != c.at {
					t.Fatalf("stopped in %s, want %s (%s)", w.State, c.at, w.Reason)
				}
				r.atm.autoTake = false
				if c.later != nil {
					c.later(r, w)
				}
				r.restart(t)
				if err := r.svc.Recover(ctx); err != nil {
					t.Fatal(err)
				}
				w = r.state(t, w.Session)
				if w.State != c.want {
					t.Fatalf("recovered to %s (%s), want %s", w.State, w.Reason, c.want)
				}
				if w.State == Presented {
					r.svc.Event(ctx, r.atm.customer(w.Txn, true))
				}
				r.check(t)
			})
		}
	})
}

// TestConcurrentApprovals: the same QR approved many times at once (two
// replicas, a replayed request): exactly one wins the guarded UPDATE, one
// hold, one dispense; the others are told the session was used.
func TestConcurrentApprovals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		w := r.open(t)
		r.atm.arrived, r.atm.gate = make(chan struct{}, 8), make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := r.approve(w, 20000)
				errs <- err
			}()
		}
		for range 8 {
			<-r.atm.arrived // every approval has read the session as QR_SHOWN
		}
		close(r.atm.gate)
		wg.Wait()
		close(errs)
		ok := 0
		for err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, ErrSessionUsed) && !errors.Is(err, ErrCashAtExit):
				t.Errorf("a losing approval: %v", err)
			}
		}
		if ok != 1 || len(r.led.holds) != 1 || len(r.atm.dispenses) != 1 || r.auth.calls.Load() != 1 {
			t.Fatalf("%d approvals won, %d holds, %d dispenses, %d authorizations", ok, len(r.led.holds), len(r.atm.dispenses), r.auth.calls.Load())
		}
		r.svc.Event(context.Background(), r.atm.customer(r.state(t, w.Session).Txn, true))
		r.check(t)
	})
}
