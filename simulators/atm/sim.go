// Package simatm is an ATM on a serial line: it speaks the egate link
// protocol (atm/PROTOCOL.md) as the ATM side, with cassettes, a reject bin, a
// cash tray with a shutter, a scriptable customer and PIN pad, a screen that
// renders QR codes, a persistent journal, and every fault of DESIGN.md §5
// injectable (see Faults).
//
// Concurrency: one mutex guards the machine's state; one goroutine serves the
// line; at most one mechanical operation (dispense, retract, reject, purge)
// runs at a time in its own goroutine and sends PROGRESS while it runs.
package simatm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
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

// PINEntry is what the customer types on the PIN pad.
type PINEntry struct {
	Digits string
	Cancel bool
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

// EnterPIN queues what the customer types at the next PIN prompt.
func (s *Sim) EnterPIN(e PINEntry) { s.pins <- e }

// TakeNow makes the customer take the cash at the exit now.
func (s *Sim) TakeNow() {
	select {
	case s.customer <- struct{}{}:
	default:
	}
}

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

// Serve runs the ATM on a line until ctx ends or the line fails. It closes rwc.
func (s *Sim) Serve(ctx context.Context, rwc io.ReadWriteCloser) error {
	l := atm.NewLink(&faultLine{rwc: rwc, f: s.f}, s.cfg.Link)
	defer l.Close()
	s.mu.Lock()
	s.link, s.session = l, false
	boot := s.bootID
	s.mu.Unlock()
	go l.SendStart(ctx, atm.TypeBoot, 0, atm.Boot{ID: boot}.Marshal())
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-l.Done():
			return l.Err()
		case f := <-l.Recv():
			s.handle(ctx, l, f)
		}
	}
}

func (s *Sim) reply(ctx context.Context, l *atm.Link, req atm.Frame, payload []byte) {
	if req.Seq == 0 {
		l.SendStart(ctx, req.Type|atm.ReplyBit, 0, payload)
		return
	}
	l.Send(ctx, req.Type|atm.ReplyBit, req.Seq, payload)
}

func (s *Sim) replyErr(ctx context.Context, l *atm.Link, req atm.Frame, c atm.Code, msg string) {
	l.Send(ctx, atm.TypeError, req.Seq, atm.ErrorMsg{Code: c, Msg: msg}.Marshal())
}

func (s *Sim) handle(ctx context.Context, l *atm.Link, f atm.Frame) {
	if f.Type == atm.TypeHello {
		m, err := atm.ParseHello(f.Payload)
		if err != nil {
			s.replyErr(ctx, l, f, atm.CodeBadMessage, err.Error())
			return
		}
		if m.VersionMin > atm.ProtocolVersion || m.VersionMax < 1 {
			s.replyErr(ctx, l, f, atm.CodeVersion, "this ATM speaks version 1")
			return
		}
		s.mu.Lock()
		s.session = true
		h := atm.HelloReply{Version: atm.ProtocolVersion, Capabilities: s.cfg.Capabilities, MaxPayload: atm.MaxPayload, BootID: s.bootID, LastEvent: s.eventNo}
		if s.last != nil {
			r := cloneRec(s.txns[*s.last])
			h.Last = &r
		}
		s.mu.Unlock()
		s.reply(ctx, l, f, h.Marshal())
		if s.f.take(&s.f.ResetTwice) {
			s.reply(ctx, l, f, h.Marshal())
		}
		return
	}
	s.mu.Lock()
	session := s.session
	s.mu.Unlock()
	if !session {
		s.replyErr(ctx, l, f, atm.CodeNoSession, "send HELLO first")
		return
	}
	var err error
	switch f.Type {
	case atm.TypeStatus:
		s.reply(ctx, l, f, s.status().Marshal())
	case atm.TypeTxnStatus:
		var m atm.TxnRequest
		if m, err = atm.ParseTxnRequest(f.Payload); err == nil {
			s.reply(ctx, l, f, s.txnStatus(m.ID).Marshal())
		}
	case atm.TypeDispense:
		var m atm.Dispense
		if m, err = atm.ParseDispense(f.Payload); err == nil {
			s.dispense(ctx, l, f, m)
		}
	case atm.TypeRetract:
		var m atm.TxnRequest
		if m, err = atm.ParseTxnRequest(f.Payload); err == nil {
			s.retractCmd(ctx, l, f, m.ID)
		}
	case atm.TypeReject:
		var m atm.TxnRequest
		if m, err = atm.ParseTxnRequest(f.Payload); err == nil {
			s.rejectCmd(ctx, l, f, m.ID)
		}
	case atm.TypePurge:
		s.mu.Lock()
		n := s.transport
		var code atm.Code
		if s.busy {
			code, n = atm.CodeBusy, 0
		} else if n > 0 {
			if e := s.act(jrec{Op: "purge"}); e != nil {
				code = atm.CodeHardware
			}
		}
		s.mu.Unlock()
		s.reply(ctx, l, f, atm.Result{Code: code, Notes: uint16(n)}.MarshalPurge())
	case atm.TypeShowQR:
		var m atm.ShowQR
		if m, err = atm.ParseShowQR(f.Payload); err == nil {
			code := atm.OK
			if need := qrCap(m.Mode); s.cfg.Capabilities&need == 0 {
				code = atm.CodeUnsupported // a mode not advertised in HELLO: show nothing
			} else if e := s.cfg.Screen.Show(m); e != nil {
				code = atm.CodeHardware
			}
			s.reply(ctx, l, f, atm.Result{Code: code}.Marshal())
		}
	case atm.TypeCancelQR:
		var m atm.TxnRequest
		if m, err = atm.ParseTxnRequest(f.Payload); err == nil {
			s.cfg.Screen.Cancel(m.ID)
			s.reply(ctx, l, f, atm.Result{Code: atm.OK}.Marshal())
		}
	case atm.TypePIN:
		var m atm.PINRequest
		if m, err = atm.ParsePINRequest(f.Payload); err == nil {
			go s.pinEntry(ctx, l, f, m)
		}
	default:
		s.replyErr(ctx, l, f, atm.CodeUnknownType, fmt.Sprintf("message type %#02x", uint8(f.Type)))
	}
	if err != nil {
		s.replyErr(ctx, l, f, atm.CodeBadMessage, err.Error())
	}
}

// qrCap is the capability a SHOW_QR mode needs.
func qrCap(mode uint8) uint16 {
	if mode == atm.QRModeBitmap {
		return atm.CapQRBitmap
	}
	return atm.CapQRText
}

// QRCapabilities maps the simulator's --qr flag (text, bitmap, both) to the
// capabilities it advertises: every other capability and the QR modes named.
func QRCapabilities(qr string) (uint16, error) {
	all := atm.CapPINISO4 | atm.CapRetract | atm.CapReject | atm.CapPurge | atm.CapProgress
	switch qr {
	case "text":
		return all | atm.CapQRText, nil
	case "bitmap":
		return all | atm.CapQRBitmap, nil
	case "both", "":
		return all | atm.CapQRText | atm.CapQRBitmap, nil
	}
	return 0, fmt.Errorf("QR modes %q: want text, bitmap or both", qr)
}

func (s *Sim) status() atm.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := atm.Status{AtExit: uint16(s.tray), RejectBin: uint16(s.rejectBin)}
	if s.busy {
		st.Device = 1
	}
	if s.tray > 0 {
		st.Shutter = atm.ShutterOpen
		st.Sensors |= atm.SensorTray
	}
	if s.transport > 0 {
		st.Sensors |= atm.SensorTransport
	}
	for _, c := range s.cassettes {
		cs := atm.Cassette{ID: c.ID, Denom: c.Denom, Count: uint16(max(c.Count, 0))}
		switch {
		case c.Missing || int(c.ID) == s.f.get(func(f *Faults) int { return f.MissingCassette }):
			cs.State, cs.Count = atm.CassetteMissing, 0
		case c.Count <= 0 || int(c.ID) == s.f.get(func(f *Faults) int { return f.EmptyCassette }):
			cs.State, cs.Count = atm.CassetteEmpty, 0
		case c.Count < 20:
			cs.State = atm.CassetteLow
		}
		st.Cassettes = append(st.Cassettes, cs)
	}
	return st
}

func (s *Sim) txnStatus(id atm.TxnID) atm.TxnReply {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.txns[id]
	if !ok {
		return atm.TxnReply{Code: atm.CodeUnknownTxn, Record: atm.TxnRecord{ID: id}}
	}
	return atm.TxnReply{Code: r.Error, Record: cloneRec(r)}
}

// sendEvent sends an EVENT; caller must not hold mu.
func (s *Sim) sendEvent(ctx context.Context, kind uint8, id atm.TxnID) {
	s.mu.Lock()
	s.eventNo++
	ev := atm.EventMsg{No: s.eventNo, Kind: kind}
	if r, ok := s.txns[id]; ok {
		ev.Record = cloneRec(r)
	}
	l := s.link
	s.mu.Unlock()
	if l == nil {
		return
	}
	p := ev.Marshal()
	l.Send(ctx, atm.TypeEvent, 0, p)
	if s.f.take(&s.f.EventsDuplicated) {
		l.Send(ctx, atm.TypeEvent, 0, p)
	}
}

func sameRequest(r *atm.TxnRecord, m atm.Dispense) bool {
	if r.Amount != m.Amount || len(r.Cassettes) < len(m.Notes) {
		return false
	}
	for _, n := range m.Notes {
		found := false
		for _, c := range r.Cassettes {
			if c.Cassette == n.Cassette && c.Requested == n.Count {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// validate checks a dispense before anything moves. Caller holds mu.
func (s *Sim) validate(m atm.Dispense) atm.Code {
	if s.busy {
		return atm.CodeBusy
	}
	if s.tray > 0 {
		return atm.CodeCashAtExit
	}
	if len(m.Notes) == 0 {
		return atm.CodeBadMessage
	}
	seen := map[uint8]bool{}
	var sum int64
	for _, n := range m.Notes {
		if seen[n.Cassette] || n.Count == 0 {
			return atm.CodeBadMessage
		}
		seen[n.Cassette] = true
		c := s.cassette(n.Cassette)
		if c == nil || c.Missing || int(c.ID) == s.f.MissingCassette {
			return atm.CodeCassetteMissing
		}
		if c.Count <= 0 || int(c.ID) == s.f.EmptyCassette {
			return atm.CodeCassetteEmpty
		}
		if c.Count < int(n.Count) {
			return atm.CodeCannotMakeAmount
		}
		sum += c.Denom * int64(n.Count)
	}
	if sum != m.Amount {
		return atm.CodeCannotMakeAmount
	}
	return atm.OK
}

func (s *Sim) dispense(ctx context.Context, l *atm.Link, req atm.Frame, m atm.Dispense) {
	s.mu.Lock()
	if r, ok := s.txns[m.ID]; ok {
		reply := atm.TxnReply{Code: r.Error, Record: cloneRec(r)}
		if !sameRequest(r, m) {
			reply = atm.TxnReply{Code: atm.CodeTxnConflict, Record: atm.TxnRecord{ID: m.ID}}
		} else if !r.State.Final() {
			reply.Code = atm.CodeInProgress
		}
		s.mu.Unlock()
		s.reply(ctx, l, req, reply.Marshal())
		return
	}
	s.f.mu.Lock()
	code := s.validate(m)
	s.f.mu.Unlock()
	if code != atm.OK {
		s.mu.Unlock()
		s.reply(ctx, l, req, atm.TxnReply{Code: code, Record: atm.TxnRecord{ID: m.ID, Amount: m.Amount}}.Marshal())
		return
	}
	if err := s.act(jrec{Op: "begin", Txn: m.ID.String(), Amount: m.Amount, Req: m.Notes}); err != nil {
		s.mu.Unlock()
		s.reply(ctx, l, req, atm.TxnReply{Code: atm.CodeHardware, Record: atm.TxnRecord{ID: m.ID}}.Marshal())
		return
	}
	s.busy = true
	s.mu.Unlock()
	go s.runDispense(ctx, l, req, m)
}

// progress sends PROGRESS for req every T_progress until stop is closed.
func (s *Sim) progress(ctx context.Context, l *atm.Link, req atm.Frame, stage uint8, notes func() int) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.cfg.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				l.Send(ctx, atm.TypeProgress, req.Seq, atm.Progress{Stage: stage, Notes: uint16(notes())}.Marshal())
			}
		}
	}()
	return func() { close(done); wg.Wait() }
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

func (s *Sim) runDispense(ctx context.Context, l *atm.Link, req atm.Frame, m atm.Dispense) {
	id := m.ID.String()
	var picked int
	var pmu sync.Mutex
	stop := s.progress(ctx, l, req, atm.StagePicking, func() int { pmu.Lock(); defer pmu.Unlock(); return picked })
	f := s.f
	jamAt := f.get(func(f *Faults) int { v := f.JamAfter; f.JamAfter = -1; return v })
	rejectEvery := f.get(func(f *Faults) int { v := f.RejectEvery; f.RejectEvery = 0; return v })
	crashAt := f.get(func(f *Faults) int { v := f.CrashAfterPick; f.CrashAfterPick = 0; return v })
	lineDown := time.Duration(f.get(func(f *Faults) int { v := f.LineDownMid; f.LineDownMid = 0; return int(v) }))
	pickDelay := time.Duration(f.get(func(f *Faults) int { return int(f.PickDelay) }))

	fail := func(c atm.Code) {
		s.mu.Lock()
		s.act(jrec{Op: "fail", Txn: id, Code: uint8(c)})
		s.busy = false
		rep := atm.TxnReply{Code: c, Record: cloneRec(s.txns[m.ID])}
		s.mu.Unlock()
		stop()
		s.reply(ctx, l, req, rep.Marshal())
	}
	total, rejects := 0, 0
	for _, n := range m.Notes {
		good := 0
		for good < int(n.Count) {
			if total == jamAt {
				fail(atm.CodeJam)
				return
			}
			s.mu.Lock()
			c := s.cassette(n.Cassette)
			if c.Count <= 0 {
				s.mu.Unlock()
				fail(atm.CodeCassetteEmpty)
				return
			}
			err := s.act(jrec{Op: "pick", Txn: id, Cas: n.Cassette})
			s.mu.Unlock()
			if err != nil {
				fail(atm.CodeHardware)
				return
			}
			total++
			pmu.Lock()
			picked = total
			pmu.Unlock()
			if total == crashAt {
				s.cfg.Crash()
			}
			if lineDown > 0 && total == 1 {
				f.setLineDown(lineDown)
			}
			sleep(ctx, s.cfg.PickTime+pickDelay)
			if rejectEvery > 0 && total%rejectEvery == 0 {
				rejects++
				s.mu.Lock()
				s.act(jrec{Op: "reject", Txn: id, Cas: n.Cassette})
				s.mu.Unlock()
				if rejects > s.cfg.RejectLimit {
					fail(atm.CodeTooManyRejects)
					return
				}
				continue
			}
			good++
		}
	}
	sleep(ctx, s.cfg.PresentTime)
	s.mu.Lock()
	err := s.act(jrec{Op: "present", Txn: id})
	s.busy = false
	rep := atm.TxnReply{Code: atm.OK, Record: cloneRec(s.txns[m.ID])}
	s.mu.Unlock()
	stop()
	if err != nil {
		fail(atm.CodeHardware)
		return
	}
	s.reply(ctx, l, req, rep.Marshal())
	reversed := f.take(&f.EventsReversed)
	go s.customerAt(ctx, m.ID, reversed)
	if !reversed {
		s.sendEvent(ctx, atm.EventPresented, m.ID)
	}
}

// customerAt plays the customer in front of the ATM after cash was presented.
func (s *Sim) customerAt(ctx context.Context, id atm.TxnID, reversed bool) {
	takes := s.f.get(func(f *Faults) int {
		if f.CustomerTakes {
			return 1
		}
		return 0
	}) == 1
	var takeC <-chan time.Time
	if takes {
		t := time.NewTimer(s.cfg.TakeAfter)
		defer t.Stop()
		takeC = t.C
	}
	timeout := time.NewTimer(s.cfg.TakeTimeout)
	defer timeout.Stop()
	select {
	case <-ctx.Done():
		return
	case <-takeC:
	case <-s.customer:
	case <-timeout.C:
		s.retract(ctx, nil, atm.Frame{}, id)
		return
	}
	s.mu.Lock()
	if s.tray == 0 || s.trayTxn != id {
		s.mu.Unlock()
		return // retracted meanwhile
	}
	s.act(jrec{Op: "taken", Txn: id.String()})
	s.mu.Unlock()
	s.sendEvent(ctx, atm.EventTaken, id)
	if reversed {
		s.sendEvent(ctx, atm.EventPresented, id)
	}
}

func (s *Sim) retractCmd(ctx context.Context, l *atm.Link, req atm.Frame, id atm.TxnID) {
	s.mu.Lock()
	r, ok := s.txns[id]
	switch {
	case !ok:
		s.mu.Unlock()
		s.reply(ctx, l, req, atm.TxnReply{Code: atm.CodeUnknownTxn, Record: atm.TxnRecord{ID: id}}.Marshal())
		return
	case r.State == atm.StateRetracted:
		rep := atm.TxnReply{Record: cloneRec(r)}
		if r.Retracted == atm.RetractUnknown {
			rep.Code = atm.CodeRetractCountUnknown
		}
		s.mu.Unlock()
		s.reply(ctx, l, req, rep.Marshal())
		return
	case r.State != atm.StatePresented || s.tray == 0 || s.trayTxn != id:
		rep := atm.TxnReply{Code: atm.CodeNotPresented, Record: cloneRec(r)}
		s.mu.Unlock()
		s.reply(ctx, l, req, rep.Marshal())
		return
	case s.busy:
		s.mu.Unlock()
		s.reply(ctx, l, req, atm.TxnReply{Code: atm.CodeBusy, Record: cloneRec(r)}.Marshal())
		return
	}
	s.busy = true
	s.mu.Unlock()
	go s.retract(ctx, l, req, id)
}

// retract pulls the cash at the exit back; l == nil when the ATM does it on
// its own after the take timeout.
func (s *Sim) retract(ctx context.Context, l *atm.Link, req atm.Frame, id atm.TxnID) {
	var stop func()
	if l != nil {
		stop = s.progress(ctx, l, req, atm.StageRetracting, func() int { return 0 })
	} else {
		s.mu.Lock()
		if s.busy || s.tray == 0 || s.trayTxn != id {
			s.mu.Unlock()
			return
		}
		s.busy = true
		s.mu.Unlock()
	}
	grab := s.f.take(&s.f.TakeDuringRetr)
	unknown := s.f.take(&s.f.RetractUnknown)
	if l != nil {
		if d := time.Duration(s.f.get(func(f *Faults) int { v := f.LineDownMid; f.LineDownMid = 0; return int(v) })); d > 0 {
			s.f.setLineDown(d)
		}
	}
	sleep(ctx, s.cfg.RetractTime)
	s.mu.Lock()
	code := atm.OK
	kind := uint8(atm.EventRetracted)
	switch {
	case s.tray == 0 || s.trayTxn != id:
		// The customer took the cash while the retract was starting.
		code, kind = atm.CodeNotPresented, 0
	case grab:
		s.act(jrec{Op: "taken", Txn: id.String()})
		code, kind = atm.CodeNotPresented, atm.EventTaken
	default:
		s.act(jrec{Op: "retract", Txn: id.String(), N: s.tray, Unk: unknown})
		if unknown {
			code = atm.CodeRetractCountUnknown
		}
	}
	s.busy = false
	rep := atm.TxnReply{Code: code, Record: cloneRec(s.txns[id])}
	s.mu.Unlock()
	if stop != nil {
		stop()
		s.reply(ctx, l, req, rep.Marshal())
	}
	if kind != 0 {
		s.sendEvent(ctx, kind, id)
	}
}

func (s *Sim) rejectCmd(ctx context.Context, l *atm.Link, req atm.Frame, id atm.TxnID) {
	s.mu.Lock()
	r, ok := s.txns[id]
	if !ok {
		s.mu.Unlock()
		s.reply(ctx, l, req, atm.TxnReply{Code: atm.CodeUnknownTxn, Record: atm.TxnRecord{ID: id}}.Marshal())
		return
	}
	code := atm.OK
	if r.State == atm.StatePicking && !s.busy {
		s.act(jrec{Op: "fail", Txn: id.String(), Code: uint8(atm.CodeCancelled)})
	} else if !r.State.Final() {
		code = atm.CodeBusy
	}
	rep := atm.TxnReply{Code: code, Record: cloneRec(r)}
	s.mu.Unlock()
	s.reply(ctx, l, req, rep.Marshal())
}

func (s *Sim) pinEntry(ctx context.Context, l *atm.Link, req atm.Frame, m atm.PINRequest) {
	stop := s.progress(ctx, l, req, atm.StagePINEntry, func() int { return 0 })
	rep := atm.PINReply{Code: atm.CodeTimeout}
	t := time.NewTimer(time.Duration(m.TimeoutSec) * time.Second)
	defer t.Stop()
	select {
	case e := <-s.pins:
		switch {
		case e.Cancel:
			rep.Code = atm.CodeCancelled
		case len(s.cfg.PINKey) == 0:
			rep.Code = atm.CodeHardware
		case len(e.Digits) < int(m.MinLen) || len(e.Digits) > int(m.MaxLen):
			rep.Code = atm.CodeBadMessage
		default:
			b, err := atm.EncipherPINBlock4(s.cfg.PINKey, e.Digits, m.PAN)
			if err != nil {
				rep.Code = atm.CodeBadMessage
			} else {
				rep = atm.PINReply{Code: atm.OK, Format: 4, KeyID: s.cfg.PINKeyID, Block: b}
			}
		}
	case <-t.C:
	case <-ctx.Done():
	}
	stop()
	s.reply(ctx, l, req, rep.Marshal())
}
