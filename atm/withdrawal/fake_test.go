package withdrawal

// Fakes for the unit tests of the state machine (the real ATM, agent and
// gateway are in stack_test.go).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/egate-bank/egate/atm/gateway"
	"github.com/egate-bank/egate/devices/agent/dclink"
)

type fakeCassette struct {
	ID       uint8  `json:"id"`
	DenomFen int64  `json:"denomination_fen"`
	Count    uint16 `json:"count"`
	State    uint8  `json:"state"`
}

// fakeATM executes each command id once (as the agent does) and each
// transaction id once (as the ATM's journal does).
type fakeATM struct {
	id        string
	mu        sync.Mutex
	cassettes []fakeCassette
	txns      map[string]*TxnRecord
	cmds      map[string]json.RawMessage
	dispenses map[string]int // executions per txn
	atExit    uint16

	jamAfter  int    // -1 off
	autoTake  bool   // the customer takes at once
	lose      string // op whose next answer is lost after executing
	drop      string // op whose next command never arrives
	retractN  int    // retracted count override (-1 off)
	downUntil bool   // every command fails unsent
	// unknownAsError: txn_status of a transaction the ATM never accepted
	// fails with the ATM's UNKNOWN_TXN; otherwise it answers a record in
	// state NONE, as the agent does (atm.Driver.TxnStatus)
	unknownAsError bool

	// STATUS waits at this gate (when set) after saying it arrived: lets
	// a test line up concurrent approvals
	arrived chan struct{}
	gate    chan struct{}
}

func newFakeATM(id string) *fakeATM {
	return &fakeATM{id: id,
		cassettes: []fakeCassette{{1, 10000, 50, 0}, {2, 5000, 50, 0}, {3, 2000, 50, 0}, {4, 1000, 50, 0}},
		txns:      map[string]*TxnRecord{}, cmds: map[string]json.RawMessage{}, dispenses: map[string]int{},
		jamAfter: -1, retractN: -1,
	}
}

func (f *fakeATM) Send(ctx context.Context, cmd gateway.Command) (json.RawMessage, error) {
	if cmd.Op == dclink.OpStatus && f.gate != nil {
		f.arrived <- struct{}{}
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.downUntil {
		return nil, gateway.ErrNoAgent
	}
	if f.drop == cmd.Op {
		f.drop = ""
		return nil, fmt.Errorf("%w: %w", gateway.ErrNoResult, context.DeadlineExceeded)
	}
	if r, ok := f.cmds[cmd.ID]; ok && cmd.Op == dclink.OpDispense {
		return r, nil
	}
	raw, err := f.exec(cmd)
	if err == nil && cmd.Op == dclink.OpDispense {
		f.cmds[cmd.ID] = raw
	}
	if f.lose == cmd.Op {
		f.lose = ""
		return nil, fmt.Errorf("%w: %w", gateway.ErrNoResult, context.DeadlineExceeded)
	}
	return raw, err
}

func devErr(op, code string, rec *TxnRecord) error {
	return &gateway.CommandError{ATM: "ATM-1", Op: op, Err: &dclink.Error{Code: "device", Device: code, Message: code, Record: rec}}
}

func (f *fakeATM) exec(cmd gateway.Command) (json.RawMessage, error) {
	switch cmd.Op {
	case dclink.OpStatus:
		return json.Marshal(map[string]any{"id": cmd.ATM, "up": true, "cassettes": f.cassettes, "notes_at_exit": f.atExit})
	case dclink.OpShowQR, dclink.OpCancelQR:
		return json.RawMessage(`{"mode":1}`), nil
	case dclink.OpTxnStatus, dclink.OpRetract:
		var a dclink.TxnArgs
		json.Unmarshal(cmd.Args, &a)
		r, ok := f.txns[a.Txn]
		if !ok && (f.unknownAsError || cmd.Op == dclink.OpRetract) {
			return nil, devErr(cmd.Op, "UNKNOWN_TXN", nil)
		}
		if !ok {
			return json.Marshal(TxnRecord{Txn: a.Txn, State: "NONE"})
		}
		if cmd.Op == dclink.OpRetract && r.State == "PRESENTED" {
			f.retract(r)
		}
		return json.Marshal(r)
	case dclink.OpDispense:
		var a dclink.DispenseArgs
		if err := json.Unmarshal(cmd.Args, &a); err != nil {
			return nil, err
		}
		if r, ok := f.txns[a.Txn]; ok {
			return json.Marshal(r)
		}
		f.dispenses[a.Txn]++
		r := &TxnRecord{Txn: a.Txn, AmountFen: a.AmountFen, State: "PRESENTED"}
		picked := 0
		for _, n := range a.Notes {
			c := CassetteOf(f, n.Cassette)
			cc := dclink.CassetteCount{Cassette: n.Cassette, Requested: n.Count}
			for i := 0; i < int(n.Count); i++ {
				if picked == f.jamAfter {
					r.State, r.Error = "FAILED", "JAM"
					break
				}
				c.Count--
				picked++
				cc.Picked++
			}
			r.Cassettes = append(r.Cassettes, cc)
		}
		if r.State == "FAILED" {
			f.jamAfter = -1
			f.txns[a.Txn] = r
			return nil, devErr(cmd.Op, "JAM", r)
		}
		for i := range r.Cassettes {
			r.Cassettes[i].Presented = r.Cassettes[i].Picked
			f.atExit += r.Cassettes[i].Picked
		}
		f.txns[a.Txn] = r
		if f.autoTake {
			r.State, f.atExit = "TAKEN", 0
		}
		return json.Marshal(r)
	}
	return nil, errors.New("unknown op " + cmd.Op)
}

func CassetteOf(f *fakeATM, id uint8) *fakeCassette {
	for i := range f.cassettes {
		if f.cassettes[i].ID == id {
			return &f.cassettes[i]
		}
	}
	panic("no cassette")
}

func (f *fakeATM) retract(r *TxnRecord) {
	n := 0
	for _, c := range r.Cassettes {
		n += int(c.Presented)
	}
	if f.retractN >= 0 {
		n = f.retractN
	}
	r.State, r.Retracted, f.atExit = "RETRACTED", uint16(n), 0
}

// customer takes or leaves the cash of txn; returns the event.
func (f *fakeATM) customer(txn string, take bool) dclink.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.txns[txn]
	kind := "taken"
	if take {
		r.State, f.atExit = "TAKEN", 0
	} else {
		f.retract(r)
		kind = "retracted"
	}
	return dclink.Event{ATM: f.id, Kind: kind, Record: *r}
}

func (f *fakeATM) cashOut() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var fen int64
	for _, r := range f.txns {
		if r.State != "TAKEN" {
			continue
		}
		for _, c := range r.Cassettes {
			fen += int64(c.Presented) * CassetteOf(f, c.Cassette).DenomFen
		}
	}
	return fen
}

// fakeLedger keeps holds by idempotency key.
type fakeLedger struct {
	mu       sync.Mutex
	balance  map[string]int64
	holds    map[string]*fakeHold // by hold id
	keys     map[string]string    // key → hold id
	done     map[string]bool      // capture/release keys
	failNext string               // "hold", "capture", "release": a transient error
	// afterHold runs (once) after a hold is made, before Hold returns:
	// another path (Recover) at work meanwhile
	afterHold func()
	// afterRelease runs (once) after a release, before Release returns
	afterRelease func()
}

type fakeHold struct {
	account           string
	amount, captured  int64
	released, settled bool
}

func newFakeLedger() *fakeLedger {
	return &fakeLedger{balance: map[string]int64{"acct-1": 1_000_000}, holds: map[string]*fakeHold{}, keys: map[string]string{}, done: map[string]bool{}}
}

var errTransient = errors.New("ledger unavailable")

func (l *fakeLedger) Hold(ctx context.Context, key, account string, amount int64, grant string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failNext == "hold" {
		l.failNext = ""
		return "", errTransient
	}
	if id, ok := l.keys[key]; ok {
		return id, nil
	}
	if l.balance[account] < amount {
		return "", fmt.Errorf("%w: insufficient_funds", ErrHoldRefused)
	}
	l.balance[account] -= amount
	id := fmt.Sprint(len(l.holds) + 1)
	l.holds[id] = &fakeHold{account: account, amount: amount}
	l.keys[key] = id
	if g := l.afterHold; g != nil {
		l.afterHold = nil
		l.mu.Unlock()
		g()
		l.mu.Lock()
	}
	return id, nil
}

func (l *fakeLedger) Capture(ctx context.Context, key, id string, amount int64, grant string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failNext == "capture" {
		l.failNext = ""
		return errTransient
	}
	if l.done[key] {
		return nil
	}
	h := l.holds[id]
	if h == nil || h.settled || amount > h.amount {
		return fmt.Errorf("bad capture of hold %s", id)
	}
	h.captured, h.settled = amount, true
	l.balance[h.account] += h.amount - amount
	l.done[key] = true
	return nil
}

func (l *fakeLedger) Release(ctx context.Context, key, id, grant string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done[key] {
		return nil
	}
	h := l.holds[id]
	if h == nil || h.settled {
		return fmt.Errorf("bad release of hold %s", id)
	}
	h.released, h.settled = true, true
	l.balance[h.account] += h.amount
	l.done[key] = true
	if g := l.afterRelease; g != nil {
		l.afterRelease = nil
		l.mu.Unlock()
		g()
		l.mu.Lock()
	}
	return nil
}

// fakeAuth refuses above a limit or with a wrong proof; it counts the
// authorizations asked for in calls, when set.
type fakeAuth struct {
	limit int64
	calls *atomic.Int64
}

func (a fakeAuth) Authorize(ctx context.Context, in Intent, proof string) (string, error) {
	if a.calls != nil {
		a.calls.Add(1)
	}
	if in.Kind != "withdrawal" || proof != "ok" {
		return "", errors.New("the proof does not match")
	}
	if in.AmountFen > a.limit {
		return "", errors.New("over the withdrawal limit")
	}
	return "grant-" + in.Session, nil
}
