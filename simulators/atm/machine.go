package simatm

// The machine: cassettes, transport, tray, reject bin and the transaction
// records, changed only by journal records (act: fsync, then apply), so that
// replaying the journal after kill -9 rebuilds exactly the state the machine
// was in, and power-up recovery (PROTOCOL.md §8) is a few more records.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/egate-bank/egate/atm"
)

// Cassette is a cassette's configuration and state.
type Cassette struct {
	ID      uint8 `json:"id"`
	Denom   int64 `json:"denom"` // fen
	Count   int   `json:"count"`
	Missing bool  `json:"missing,omitempty"`
}

// DefaultCassettes are four cassettes of 100, 50, 20 and 10 yuan.
func DefaultCassettes() []Cassette {
	return []Cassette{{1, 10000, 500, false}, {2, 5000, 500, false}, {3, 2000, 500, false}, {4, 1000, 500, false}}
}

// Config configures a simulator.
type Config struct {
	Cassettes   []Cassette // loaded when the journal is new
	JournalPath string     // required: the machine's non-volatile memory
	Link        atm.LinkConfig
	Faults      *Faults
	// Mechanical times (0 in benchmarks).
	PickTime, PresentTime, RetractTime time.Duration
	TakeAfter                          time.Duration // customer takes cash after this
	TakeTimeout                        time.Duration // ATM retracts untaken cash after this (default 30 s)
	ProgressEvery                      time.Duration // default 1 s (T_progress)
	RejectLimit                        int           // default 5
	PINKey                             []byte        // AES key shared with the host (16/24/32 bytes)
	PINKeyID                           uint32
	Capabilities                       uint16 // default: all
	Screen                             *Screen
	// ChooseQR is what the customer's "QR withdrawal" button on the screen
	// page does (POST /choose-qr): the data centre opens a withdrawal
	// session and shows its QR. nil: no button.
	ChooseQR func(ctx context.Context) error
	// Crash is called for the crash-after-pick fault; default kill -9 self.
	Crash func()
}

// Sim is a simulated ATM.
type Sim struct {
	cfg Config
	f   *Faults

	mu        sync.Mutex
	j         *journal
	cassettes []*Cassette
	rejectBin int
	transport int
	tray      int
	trayTxn   atm.TxnID
	taken     int
	txns      map[atm.TxnID]*atm.TxnRecord
	order     []atm.TxnID
	last      *atm.TxnID
	bootID    [16]byte
	eventNo   uint32
	busy      bool
	link      *atm.Link
	session   bool
	customer  chan struct{} // closed/sent to make the customer take now

	pins chan PINEntry
}

// New opens (or recovers) the machine from its journal.
func New(cfg Config) (*Sim, error) {
	if cfg.JournalPath == "" {
		return nil, errors.New("simatm: JournalPath is required")
	}
	if cfg.Faults == nil {
		cfg.Faults = NewFaults(1)
	}
	if cfg.TakeTimeout == 0 {
		cfg.TakeTimeout = 30 * time.Second
	}
	if cfg.ProgressEvery == 0 {
		cfg.ProgressEvery = time.Second
	}
	if cfg.RejectLimit == 0 {
		cfg.RejectLimit = 5
	}
	if cfg.Capabilities == 0 {
		cfg.Capabilities = atm.CapQRText | atm.CapQRBitmap | atm.CapPINISO4 | atm.CapRetract | atm.CapReject | atm.CapPurge | atm.CapProgress
	}
	if cfg.Crash == nil {
		cfg.Crash = func() { syscall.Kill(os.Getpid(), syscall.SIGKILL) }
	}
	if cfg.Screen == nil {
		cfg.Screen = &Screen{}
	}
	s := &Sim{cfg: cfg, f: cfg.Faults, txns: map[atm.TxnID]*atm.TxnRecord{}, pins: make(chan PINEntry, 16), customer: make(chan struct{}, 1)}
	j, recs, err := openJournal(cfg.JournalPath)
	if err != nil {
		return nil, err
	}
	s.j = j
	for _, r := range recs {
		s.apply(r)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(recs) == 0 {
		if err := s.act(jrec{Op: "load", Load: cfg.Cassettes}); err != nil {
			return nil, err
		}
	}
	// Power-up recovery (PROTOCOL.md §8).
	for _, id := range s.order {
		r := s.txns[id]
		if r.State == atm.StateAccepted || r.State == atm.StatePicking {
			if err := s.act(jrec{Op: "fail", Txn: id.String(), Code: uint8(atm.CodePowerLoss)}); err != nil {
				return nil, err
			}
		}
	}
	if s.transport > 0 {
		if err := s.act(jrec{Op: "purge"}); err != nil {
			return nil, err
		}
	}
	if s.tray > 0 {
		if err := s.act(jrec{Op: "retract", Txn: s.trayTxn.String(), N: s.tray}); err != nil {
			return nil, err
		}
	}
	var boot [16]byte
	rand.Read(boot[:])
	if err := s.act(jrec{Op: "boot", Boot: fmt.Sprintf("%x", boot)}); err != nil {
		return nil, err
	}
	s.bootID = boot
	return s, nil
}

// Close closes the journal.
func (s *Sim) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.j.close()
}

// Link returns the link currently served (for its statistics), or nil.
func (s *Sim) Link() *atm.Link {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.link
}

// Faults returns the simulator's fault set.
func (s *Sim) Faults() *Faults { return s.f }

// act journals r (fsync) and then applies it. Caller holds mu.
func (s *Sim) act(r jrec) error {
	if err := s.j.append(r); err != nil {
		return err
	}
	s.apply(r)
	return nil
}

func (s *Sim) cassette(id uint8) *Cassette {
	for _, c := range s.cassettes {
		if c.ID == id {
			return c
		}
	}
	return nil
}

func line(r *atm.TxnRecord, cas uint8) *atm.CassetteCount {
	for i := range r.Cassettes {
		if r.Cassettes[i].Cassette == cas {
			return &r.Cassettes[i]
		}
	}
	r.Cassettes = append(r.Cassettes, atm.CassetteCount{Cassette: cas})
	return &r.Cassettes[len(r.Cassettes)-1]
}

// apply changes the state as the journal record says. It is used both live
// (after the fsync) and on replay.
func (s *Sim) apply(r jrec) {
	id, _ := atm.ParseTxnID(r.Txn)
	rec := s.txns[id]
	switch r.Op {
	case "load":
		s.cassettes = nil
		for _, c := range r.Load {
			c := c
			s.cassettes = append(s.cassettes, &c)
		}
	case "boot":
		s.eventNo = 0
	case "begin":
		nr := &atm.TxnRecord{ID: id, State: atm.StateAccepted, Amount: r.Amount}
		for _, n := range r.Req {
			nr.Cassettes = append(nr.Cassettes, atm.CassetteCount{Cassette: n.Cassette, Requested: n.Count})
		}
		s.txns[id] = nr
		s.order = append(s.order, id)
		if len(s.order) > 4096 {
			delete(s.txns, s.order[0])
			s.order = s.order[1:]
		}
		s.last = &id
	case "pick":
		if c := s.cassette(r.Cas); c != nil {
			c.Count--
		}
		line(rec, r.Cas).Picked++
		rec.State = atm.StatePicking
		s.transport++
	case "reject":
		line(rec, r.Cas).Rejected++
		s.transport--
		s.rejectBin++
	case "present":
		for i := range rec.Cassettes {
			c := &rec.Cassettes[i]
			c.Presented = c.Picked - c.Rejected
		}
		s.tray, s.trayTxn, s.transport = s.transport, id, 0
		rec.State = atm.StatePresented
	case "fail":
		for i := range rec.Cassettes {
			c := &rec.Cassettes[i]
			c.Rejected = c.Picked - c.Presented
		}
		s.rejectBin += s.transport
		s.transport = 0
		rec.State, rec.Error = atm.StateFailed, atm.Code(r.Code)
	case "taken":
		s.taken += s.tray
		s.tray = 0
		if rec != nil {
			rec.State = atm.StateTaken
		}
	case "retract":
		s.rejectBin += s.tray
		s.tray = 0
		if rec != nil {
			rec.State, rec.Retracted = atm.StateRetracted, uint16(r.N)
			if r.Unk {
				rec.Retracted = atm.RetractUnknown
			}
		}
	case "purge":
		s.rejectBin += s.transport
		s.transport = 0
	case "cassette":
		if c := s.cassette(r.Cas); c != nil {
			c.Count = r.N
			c.Missing = r.Unk
		}
	}
}

// Totals is the machine's physical truth, for tests and the control page.
type Totals struct {
	Cassettes []Cassette `json:"cassettes"`
	RejectBin int        `json:"reject_bin"`
	Transport int        `json:"transport"`
	AtExit    int        `json:"at_exit"`
	Taken     int        `json:"taken"`
	Txns      int        `json:"txns"`
	BootID    string     `json:"boot_id"`
}

// Totals returns the machine's counts.
func (s *Sim) Totals() Totals {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := Totals{RejectBin: s.rejectBin, Transport: s.transport, AtExit: s.tray, Taken: s.taken, Txns: len(s.txns), BootID: fmt.Sprintf("%x", s.bootID)}
	for _, c := range s.cassettes {
		t.Cassettes = append(t.Cassettes, *c)
	}
	return t
}

// Record returns the machine's record of a transaction.
func (s *Sim) Record(id atm.TxnID) (atm.TxnRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.txns[id]
	if !ok {
		return atm.TxnRecord{}, false
	}
	return cloneRec(r), true
}

func cloneRec(r *atm.TxnRecord) atm.TxnRecord {
	c := *r
	c.Cassettes = append([]atm.CassetteCount(nil), r.Cassettes...)
	return c
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
