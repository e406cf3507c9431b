package withdrawal_test

import (
	"context"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/egate-bank/egate/atm"
	"github.com/egate-bank/egate/atm/atmtest"
	"github.com/egate-bank/egate/atm/gateway"
	"github.com/egate-bank/egate/atm/withdrawal"
	"github.com/egate-bank/egate/authsvc/limits"
	"github.com/egate-bank/egate/devices/agent"
	"github.com/egate-bank/egate/internal/store/storetest"
	simatm "github.com/egate-bank/egate/simulators/atm"
)

// soakBranch is one agent and its ATM simulator, each restartable: the
// simulator from its journal (its non-volatile memory) on a new
// pseudo-terminal, the agent with a new process state and link.
type soakBranch struct {
	t       *testing.T
	d       *dc
	tok     agent.TokenConfig
	journal string
	sim     *simatm.Running
	faults  *simatm.Faults
	up      *atmtest.Uplink
}

const soakATM = "ATM-0501"

func (s *soakBranch) startSim() {
	s.t.Helper()
	cs := simatm.DefaultCassettes()
	for i := range cs {
		cs[i].Count = 5000 // enough for the longest soak
	}
	sim, err := simatm.StartPTY(context.Background(), simatm.Config{Cassettes: cs, JournalPath: s.journal,
		Link: atm.LinkConfig{Baud: 115200}, Faults: s.faults, TakeAfter: 20 * time.Millisecond, TakeTimeout: 300 * time.Millisecond,
		PickTime: 2 * time.Millisecond, Crash: func() {}})
	if err != nil {
		s.t.Fatal(err)
	}
	s.sim = sim
}

func (s *soakBranch) startAgent() {
	s.t.Helper()
	cfg := agent.Config{ATMs: []agent.ATMConfig{{ID: soakATM, Port: s.sim.TTYName, Baud: 115200}}, Branch: "BR-05",
		DatacentreURL: "tls://" + s.d.Proxy.Addr, DatacentreCA: s.d.RootPEM, Token: s.tok}
	tok, err := agent.OpenToken(context.Background(), cfg.Token)
	if err != nil {
		s.t.Fatal(err)
	}
	cert, err := tok.TLSCertificate()
	if err != nil {
		s.t.Fatal(err)
	}
	s.up = s.d.RunAgent(s.t, cfg, cert, func() { tok.Close() })
}

func (s *soakBranch) stopAgent() { s.up.Stop() }

// restartAgent kills the agent (its link and its command cache go) and
// starts a new one on the same ATM.
func (s *soakBranch) restartAgent() {
	s.stopAgent()
	s.startAgent()
}

// restartSim powers the ATM off and on: a new simulator from the same
// journal on a new line, and so a new agent to drive it.
func (s *soakBranch) restartSim() {
	s.stopAgent()
	s.sim.Stop()
	s.startSim()
	s.startAgent()
}

// TestSoak runs hundreds of withdrawals over the whole stack with line and
// device faults at random, and the data centre, the agent and the ATM
// simulator restarted at random points; then the invariants of every test.
// In make test it is bounded to 400 withdrawals or 75 s (about a minute and
// a half on a loaded 2-core machine under -race); EGATE_SOAK=1 (make soak)
// runs 3,000 or 20 minutes. EGATE_SOAK_SEED replays a run's choices (not
// its timing), EGATE_SOAK_PG=1 runs it on PostgreSQL.
func TestSoak(t *testing.T) {
	iterations, budget := 400, 75*time.Second
	if testing.Short() {
		iterations, budget = 20, 20*time.Second
	}
	if os.Getenv("EGATE_SOAK") == "1" {
		iterations, budget = 3000, 20*time.Minute
	}
	seed := time.Now().UnixNano()
	if s := os.Getenv("EGATE_SOAK_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	t.Logf("soak seed %d (EGATE_SOAK_SEED=%d replays the choices)", seed, seed)
	rng := rand.New(rand.NewSource(seed))
	atmtest.NeedPTY(t)
	db := storetest.SQLite(t)
	if os.Getenv("EGATE_SOAK_PG") == "1" {
		db = storetest.Postgres(t)
	}
	ctx := context.Background()
	d := env.NewDC(t, db)
	if err := d.Reg.Assign(ctx, "BR-05", soakATM); err != nil {
		t.Fatal(err)
	}
	sb := &soakBranch{t: t, d: d, tok: d.Enroll(t, atmtest.BR02Token, object(), "BR-05"), journal: filepath.Join(t.TempDir(), "journal"),
		faults: simatm.NewFaults(seed)}
	sb.startSim()
	sb.startAgent()
	t.Cleanup(func() { sb.stopAgent(); sb.sim.Stop() })
	b := newBank(t, d, db)
	b.fund(t, 100_000_000_00)
	// Recover runs beside the approvals, as the data centre runs it (every
	// few seconds; here more often, for more interleavings).
	rctx, stopRecover := context.WithCancel(ctx)
	recovering := make(chan struct{})
	go func() {
		defer close(recovering)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-tick.C:
				b.svc.Load().Recover(rctx)
			}
		}
	}()
	defer func() { stopRecover(); <-recovering }()

	menu := []string{"", "", "", "", "flip-out=1", "flip-in=1", "garbage-out=2", "truncate-out=1", "drop-ack=1",
		"drop-reply=1", "nak-storm=3", "jam-after=0", "jam-after=1", "reject-every=3", "customer-takes=false",
		"events-duplicated=1", "events-reversed=1", "pick-delay=20ms", "line-down-mid=300ms"}
	counts := map[string]int{}
	// nextCustomer clears the faults a withdrawal did not use and waits
	// for the ATM's exit to be clear.
	nextCustomer := func() {
		sb.faults.Set("jam-after=-1")
		sb.faults.Set("reject-every=0")
		sb.faults.Set("customer-takes=true")
		sb.faults.Set("pick-delay=0s")
		// The next customer comes once the ATM's exit is clear.
		atmtest.WaitFor(t, "the ATM's exit clear", func() bool { return sb.sim.Sim.Totals().AtExit == 0 })
	}
	start := time.Now()
	n := 0
	for ; n < iterations && time.Since(start) < budget; n++ {
		began := time.Now()
		if n > 0 && n%1000 == 0 {
			// at most 900 yuan each: a thousand withdrawals stay within a
			// day's 1,000,000 yuan at level 4; the next thousand are the
			// next day's
			b.days.Add(1)
		}
		f := menu[rng.Intn(len(menu))]
		if f != "" {
			if err := sb.faults.Set(f); err != nil {
				t.Fatal(err)
			}
		}
		fen := int64(1+rng.Intn(9)) * 100_00
		o, err := b.svc.Load().Open(ctx, soakATM)
		var ce *gateway.CommandError
		switch {
		case errors.As(err, &ce) || errors.Is(err, gateway.ErrNoAgent) || errors.Is(err, gateway.ErrNoResult):
			// The line fault ran SHOW_QR out of retries (or the agent is
			// restarting): the ATM says to try again; the session expired
			// at once, nothing else moved.
			counts["open-failed"]++
			t.Logf("iteration %d (fault %q): open: %v", n, f, err)
			nextCustomer()
			continue
		case err != nil:
			t.Fatalf("iteration %d: open: %v", n, err)
		}
		actx, cancel := context.WithTimeout(ctx, 60*time.Second)
		got := make(chan error, 1)
		var approveErr error
		go func() {
			_, err := b.svc.Load().Approve(actx, withdrawal.Approval{ATM: soakATM, Session: o.Session, Account: b.account, AmountFen: fen, Proof: "level4"})
			got <- err
		}()
		kill := ""
		switch r := rng.Intn(100); {
		case r < 8: // the data centre dies mid-withdrawal
			kill = "dc-killed"
			counts[kill]++
			time.Sleep(time.Duration(rng.Intn(60)) * time.Millisecond)
			cancel()
			approveErr = <-got
			got = nil
			b.restart(t)
		case r < 14:
			kill = "agent-restarted"
			counts[kill]++
			time.Sleep(time.Duration(rng.Intn(60)) * time.Millisecond)
			sb.restartAgent()
		case r < 20:
			kill = "atm-restarted"
			counts[kill]++
			time.Sleep(time.Duration(rng.Intn(60)) * time.Millisecond)
			sb.restartSim()
		case r < 25:
			kill = "link-cut"
			counts[kill]++
			time.Sleep(time.Duration(rng.Intn(60)) * time.Millisecond)
			d.Proxy.Cut()
		}
		var last *withdrawal.Withdrawal
		returned := got == nil
		deadline := time.Now().Add(90 * time.Second)
		for {
			select {
			case approveErr = <-got:
				got, returned = nil, true
			default:
			}
			w, err := b.svc.Load().Get(ctx, o.Session)
			if err != nil {
				t.Fatal(err)
			}
			last = w
			if w.State.Final() || w.State == withdrawal.Suspect {
				break
			}
			if w.State == withdrawal.QRShown && returned {
				// refused before anything moved (the ATM could not be
				// asked for its cassettes, the data centre died before
				// the grant): the session expires
				counts["refused"]++
				if approveErr == nil {
					t.Errorf("iteration %d (fault %q): approval of %s refused without an error", n, f, w.Session)
				}
				if errors.Is(approveErr, limits.ErrExceeded) {
					// the amounts stay within the limits: such a refusal
					// means the soak no longer withdraws anything
					t.Errorf("iteration %d: approval of %s refused by the limits: %v", n, w.Session, approveErr)
				}
				b.clockless(t, w, approveErr)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("iteration %d (fault %q): withdrawal %s stuck in %s (%s)", n, f, w.Session, w.State, w.Reason)
			}
			if got == nil {
				b.svc.Load().Recover(ctx)
			}
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
		if got != nil {
			<-got
		}
		counts[string(last.State)]++
		nextCustomer()
		if d := time.Since(began); d > 90*time.Second {
			// a call that blocks past its withdrawal (a recovery waiting out
			// a dispense's 3 minutes) is a fault of its own
			t.Errorf("iteration %d (fault %q, %q): %s after %v", n, f, kill, last.State, d.Round(time.Millisecond))
		} else if d > 5*time.Second {
			// a slow withdrawal is named, to see what the budget went on
			t.Logf("iteration %d (fault %q, %q): %s in %v (%s)", n, f, kill, last.State, d.Round(time.Millisecond), last.Reason)
		}
	}
	t.Logf("%d withdrawals in %v: %v", n, time.Since(start).Round(time.Second), counts)
	stopRecover()
	<-recovering
	if err := b.svc.Load().Recover(ctx); err != nil {
		t.Fatal(err)
	}
	b.check(t, map[string]*simatm.Running{soakATM: sb.sim})
}
