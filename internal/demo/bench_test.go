package demo

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egate-bank/egate/atm"
	"github.com/egate-bank/egate/atm/gateway"
	"github.com/egate-bank/egate/atm/withdrawal"
	"github.com/egate-bank/egate/authsvc/passport"
	"github.com/egate-bank/egate/authsvc/wdpin"
	"github.com/egate-bank/egate/devices/agent"
	"github.com/egate-bank/egate/devices/agent/dclink"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/internal/app"
	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
	simatm "github.com/egate-bank/egate/simulators/atm"
	simphone "github.com/egate-bank/egate/simulators/phone"
)

// wdBench is the demo's data centre (authsvc with txauth, ebank's ledger,
// the withdrawal service, the HSM) and one branch agent over mutual TLS
// owning simulated ATMs on ptys with mechanical time 0, each customer
// taking the cash at once.
type wdBench struct {
	base  string
	svc   *withdrawal.Service
	ag    *agent.Agent
	sims  map[string]*simatm.Running
	custs map[string]*benchCustomer // by ATM: one customer at each
	hc    *http.Client
}

// benchCustomer is a customer with a bound phone, a withdrawal PIN and an
// account with money. One customer per ATM: a customer's tool answers a
// handful of attempts at a time (the passport reserves one per
// verification, up to its lockout), as a person would.
type benchCustomer struct {
	st     *simphone.State
	appPIN []byte
	wdPIN  string
	pinKey []byte
	key    *ecdsa.PrivateKey
	acct   string
}

// benchUI is the customer: confirms, app PIN, and types the withdrawal PIN
// on the ATM's PIN pad when the app says so.
type benchUI struct {
	w   *wdBench
	atm string
	c   *benchCustomer
}

func (u benchUI) ShowText(string, int)                  {}
func (u benchUI) Confirm(context.Context) (bool, error) { return true, nil }
func (u benchUI) PIN(context.Context) ([]byte, error)   { return clone(u.c.appPIN), nil }

// Unlocked hands the app PIN's key and the device key unsealed once:
// argon2id is the phone's cost, not the bank's, and 16 phones have 16 CPUs.
func (u benchUI) Unlocked(context.Context) ([]byte, *ecdsa.PrivateKey, error) {
	return clone(u.c.pinKey), u.c.key, nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
func (u benchUI) Say(msg string) {
	if strings.Contains(msg, "PIN pad") {
		u.w.sims[u.atm].Sim.EnterPIN(simatm.PINEntry{Digits: u.c.wdPIN})
	}
}

func newWDBench(b *testing.B, bauds map[string]int) *wdBench {
	b.Helper()
	testenv.NeedCommand(b, "softhsm2-util", "softhsm2")
	if _, err := simatm.OpenPTY(); err != nil {
		testenv.Missing(b, "pseudo-terminals", err.Error())
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	varDir := b.TempDir()
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	cfg := *config.Defaults()
	cfg.Demo.VarDir = varDir
	cfg.Database.DSN = filepath.Join(varDir, "egate.db")
	cfg.HTTP.Listen = "127.0.0.1:0"
	// One customer makes every withdrawal: the built-in velocity rule
	// (ten payments an hour: review) is left out; the limits stay.
	rules := filepath.Join(varDir, "rules.yaml")
	if err := os.WriteFile(rules, []byte("rules:\n  - name: takeover-signs\n    when: failures.logins_24h >= 5 && device.new\n    action: deny\n    reason: test\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg.Transactions.RiskRules = []string{rules}
	cfg.Factors.CA.AutoInit = true
	cfg.Factors.SMS.DevSink = true
	hc, err := HSMToken(ctx, varDir, cfg.HSM.Token, cfg.HSM.Pool)
	if err != nil {
		b.Fatal(err)
	}
	tc, err := AgentToken(ctx, varDir)
	if err != nil {
		b.Fatal(err)
	}
	cfg.HSM = hc
	a, err := app.NewAuthsvc(ctx, &cfg, log, app.AuthsvcOptions{InitKeys: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(a.Close)
	who, err := demoCustomer(ctx, a.Auth.Passport(), varDir)
	if err != nil {
		b.Fatal(err)
	}
	bob, err := demoBob(ctx, a.Auth.Passport(), a.Factors, varDir)
	if err != nil {
		b.Fatal(err)
	}
	carol, err := demoCarol(ctx, a.Auth.Passport(), varDir)
	if err != nil {
		b.Fatal(err)
	}
	acct, err := seedAccounts(ctx, a.DB, io.Discard, who, bob, carol)
	if err != nil {
		b.Fatal(err)
	}
	key, err := PINPadKey(varDir)
	if err != nil {
		b.Fatal(err)
	}
	w := &wdBench{sims: map[string]*simatm.Running{}, custs: map[string]*benchCustomer{}, hc: &http.Client{Timeout: time.Minute}}
	reg := gateway.NewRegistry(a.DB, nil)
	var atms []agent.ATMConfig
	for id, baud := range bauds {
		cs := simatm.DefaultCassettes()
		for i := range cs {
			cs[i].Count = 60000
		}
		sim, err := simatm.StartPTY(ctx, simatm.Config{Cassettes: cs, JournalPath: filepath.Join(varDir, "journal-"+id),
			Link: atm.LinkConfig{Baud: baud}, TakeAfter: time.Millisecond, TakeTimeout: time.Hour, PINKey: key, PINKeyID: 1})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { sim.Stop() })
		w.sims[id] = sim
		atms = append(atms, agent.ATMConfig{ID: id, Port: sim.TTYName, Baud: baud})
		if err := reg.Assign(ctx, DemoBranch, id); err != nil {
			b.Fatal(err)
		}
		if _, err := a.HSM.ImportPINKey(ctx, hsm.PINKeyLabel(id), key); err != nil {
			b.Fatal(err)
		}
	}
	w.ag, err = agent.New(agent.Config{ATMs: atms}, agent.SerialLines, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.ag.Close() })
	var events atomic.Pointer[func(string, dclink.Event)]
	link, err := StartLink(ctx, varDir, a.DB, a.HSM, a.Factors.CA, w.ag, tc, nil, func(br string, ev dclink.Event) {
		if f := events.Load(); f != nil {
			(*f)(br, ev)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(link.Close)
	wd, err := StartWithdrawals(ctx, a, link, key, varDir, who.passportID, acct, 0, &events, log)
	if err != nil {
		b.Fatal(err)
	}
	w.svc = wd.Service
	a.Server.Start()
	b.Cleanup(func() { a.Server.HTTP.Close() })
	w.base = a.Server.URL()
	pins, err := wdpin.New(wdpin.Options{DB: a.DB, HSM: a.HSM, Attempts: a.Auth.Passport()})
	if err != nil {
		b.Fatal(err)
	}
	l := ledger.New(a.DB, nil)
	n := 0
	for id := range bauds {
		n++
		c := &benchCustomer{}
		pid := who.passportID
		if n == 1 {
			c.acct = acct
		} else {
			cu, err := a.Auth.Passport().Register(ctx, passport.NewCustomer{LoginName: fmt.Sprintf("bench%02d", n), Mobile: fmt.Sprintf("138001%05d", n),
				ReservedMessage: "bench", Password: "Demo-" + randomHex(6) + "-Kite"})
			if err != nil {
				b.Fatal(err)
			}
			pid = cu.PassportID
			accts, err := ebank.OpenCustomerAccounts(ctx, l, pid, cu.LoginName, aliceOpening)
			if err != nil {
				b.Fatal(err)
			}
			c.acct = accts[0].Number
		}
		phone, appPIN, wdPINFile := filepath.Join(varDir, id+"-phone.json"), filepath.Join(varDir, id+"-app-pin"), filepath.Join(varDir, id+"-wd-pin")
		if err := bindPhone(ctx, a, phone, appPIN, pid); err != nil {
			b.Fatal(err)
		}
		if err := withdrawalPIN(ctx, pins, wdPINFile, pid); err != nil {
			b.Fatal(err)
		}
		if c.st, err = simphone.Load(phone); err != nil {
			b.Fatal(err)
		}
		for _, f := range []struct {
			dst  *string
			path string
		}{{new(string), appPIN}, {&c.wdPIN, wdPINFile}} {
			raw, err := os.ReadFile(f.path)
			if err != nil {
				b.Fatal(err)
			}
			*f.dst = strings.TrimSpace(string(raw))
			if f.path == appPIN {
				c.appPIN = []byte(*f.dst)
			}
		}
		if c.pinKey, c.key, err = c.st.Unlock(c.appPIN); err != nil {
			b.Fatal(err)
		}
		w.custs[id] = c
	}
	_ = wd
	// Every ATM up through the link before the clock starts.
	for id := range bauds {
		for deadline := time.Now().Add(30 * time.Second); ; {
			st, err := w.ag.Status(ctx, id)
			if err == nil && st.Up && link.Gateway != nil {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("ATM %s not up: %+v %v", id, st, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return w
}

// withdraw is one whole withdrawal at atmID: the session, the phone's two
// posts over HTTP (txauth's intent, challenge and proof, the phone's
// signature), the PIN pad (the block opened in the HSM), the grant, ebank's
// hold, the dispense over the agent's mutual-TLS link and the serial line,
// the customer taking the cash, the capture and the balance alert.
func (w *wdBench) withdraw(ctx context.Context, atmID string, fen int64) error {
	s, err := w.svc.Open(ctx, atmID)
	if err != nil {
		return err
	}
	c := w.custs[atmID]
	res, err := c.st.Withdraw(ctx, w.hc, w.base, simphone.Withdrawal{QR: withdrawal.QRText(atmID, s.Session), Account: c.acct, AmountFen: fen}, benchUI{w, atmID, c})
	if err != nil {
		return fmt.Errorf("at %s: %w", atmID, err)
	}
	for deadline := time.Now().Add(time.Minute); ; {
		got, err := w.svc.Get(ctx, res.Session)
		if err != nil {
			return err
		}
		if got.State == withdrawal.Captured {
			return nil
		}
		if got.State.Final() || got.State == withdrawal.Suspect {
			return fmt.Errorf("withdrawal %s ended %s: %s", got.Session, got.State, got.Reason)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("withdrawal %s still %s", got.Session, got.State)
		}
		time.Sleep(time.Millisecond) // the TAKEN event settles it on another goroutine
	}
}

func (w *wdBench) lineBytes(atmID string) int64 {
	d, _ := w.ag.Driver(atmID)
	s := d.LineStats()
	return s.BytesIn + s.BytesOut
}

// BenchmarkQRWithdrawal measures whole QR withdrawals through the demo's
// stack (see wdBench.withdraw; mechanical time 0, 10 yuan each, one note).
//
// sixteen-atms: withdrawals per second one agent sustains across 16
// simulated ATMs at 115200 baud, one customer at each ATM at a time.
//
// baud-{9600,115200}/raw is the line's own minimum for the serial bytes one
// withdrawal sends both ways (SHOW_QR, STATUS, PIN, DISPENSE, events,
// CANCEL-free; ACKs included): those bytes through a pty paced to the baud;
// its line-s/op is bytes × 10 / baud. …/egate is one whole withdrawal on an
// ATM at that baud.
func BenchmarkQRWithdrawal(b *testing.B) {
	b.Run("sixteen-atms", func(b *testing.B) {
		ids := map[string]int{}
		var order []string
		for i := range 16 {
			id := fmt.Sprintf("ATM-BENCH-%02d", i)
			ids[id], order = 115200, append(order, id)
		}
		w := newWDBench(b, ids)
		ctx := context.Background()
		simatm.BenchAcross(b, len(order), "withdrawals/s", func(i int) error { return w.withdraw(ctx, order[i], 10_00) })
	})
	bauds := map[string]int{"ATM-BENCH-9600": 9600, "ATM-BENCH-115200": 115200}
	w := newWDBench(b, bauds)
	ctx := context.Background()
	for _, baud := range []int{9600, 115200} {
		id := fmt.Sprintf("ATM-BENCH-%d", baud)
		// Calibrate the bytes of one withdrawal.
		if err := w.withdraw(ctx, id, 10_00); err != nil {
			b.Fatal(err)
		}
		before := w.lineBytes(id)
		const calib = 3
		for range calib {
			if err := w.withdraw(ctx, id, 10_00); err != nil {
				b.Fatal(err)
			}
		}
		wdBytes := (w.lineBytes(id) - before) / calib
		lineSec := float64(wdBytes) * 10 / float64(baud)
		b.Run(fmt.Sprintf("baud-%d/raw", baud), func(b *testing.B) { simatm.BenchLine(b, baud, wdBytes) })
		b.Run(fmt.Sprintf("baud-%d/egate", baud), func(b *testing.B) {
			start := w.lineBytes(id)
			b.ResetTimer()
			for range b.N {
				if err := w.withdraw(ctx, id, 10_00); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(w.lineBytes(id)-start)/float64(b.N), "bytes/op")
			b.ReportMetric(lineSec, "line-s/op")
		})
	}
}
