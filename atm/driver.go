package atm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Driver errors.
var (
	// ErrNoReply means the ATM acknowledged a request but its reply did not
	// come within T_reply, counted from the last PROGRESS.
	ErrNoReply = errors.New("atm: no reply from ATM")
	// ErrUncertain means the outcome of a money-moving command could not be
	// learned from the ATM before ctx ended. Nothing may be assumed: ask again
	// with TxnStatus or Dispense with the same id.
	ErrUncertain = errors.New("atm: outcome uncertain")
	// ErrDriverClosed is returned by every call after Close.
	ErrDriverClosed = errors.New("atm: driver closed")
	// ErrWrongTxn means a reply carried the record of another transaction
	// than the one asked about. It is never taken as an answer: the outcome
	// is uncertain until TXN_STATUS states it for the right id.
	ErrWrongTxn = errors.New("atm: reply for another transaction")
)

// UncertainError carries the transaction whose outcome is unknown.
type UncertainError struct {
	ID  TxnID
	Err error
}

func (e *UncertainError) Error() string {
	return fmt.Sprintf("atm: transaction %s: outcome uncertain: %v", e.ID, e.Err)
}
func (e *UncertainError) Unwrap() []error { return []error{ErrUncertain, e.Err} }

// Opener opens the serial line; the driver calls it again to reconnect.
type Opener func(ctx context.Context) (io.ReadWriteCloser, error)

// SerialOpener opens name through tarm/serial at baud.
func SerialOpener(name string, baud int) Opener {
	return func(context.Context) (io.ReadWriteCloser, error) { return OpenSerial(name, baud) }
}

// DriverConfig configures a Driver.
type DriverConfig struct {
	Open Opener
	Link LinkConfig
	// ReplyTimeout is T_reply (default 3 s): the longest wait for a reply
	// after the ACK or the last PROGRESS.
	ReplyTimeout time.Duration
	// PollInterval is how often an in-progress transaction is polled with
	// TXN_STATUS while resolving an uncertain outcome (default 100 ms).
	PollInterval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Event is an ATM event as the driver saw it. Advanced is false when the
// event did not move the transaction forward (late or out of order).
type Event struct {
	Kind     uint8
	No       uint32
	Record   TxnRecord
	Advanced bool
}

// Driver drives one ATM on one serial line.
//
// Concurrency: the Driver is the one owner of its port. Commands are
// serialised (one in flight); each takes a context and gives up when it ends.
// A goroutine per link dispatches replies to the waiting command and events
// to Events. The line is reopened lazily by the next command after it failed,
// always starting with HELLO.
//
// Exactly once: a dispense is keyed by its TxnID. A final result is kept and
// returned for a retry of the same id without touching the line. When a reply
// is lost the driver asks the ATM (TXN_STATUS) and re-sends the DISPENSE with
// the same id only if the ATM says it never accepted that id.
type Driver struct {
	cfg DriverConfig
	sem chan struct{}

	// guarded by sem
	link *Link
	// Line statistics, readable without sem: cur is link, prev the link
	// dropped last (its reader may still count a last read after Close, so
	// it is summed live until the next drop), past the sum of the ones
	// before.
	smu       sync.Mutex
	cur, prev *Link
	past      LinkCounts
	hello     HelloReply
	needHello atomic.Bool

	pmu     sync.Mutex
	pending chan Frame

	rmu       sync.Mutex
	results   map[TxnID]TxnRecord
	bootID    [16]byte
	seenEvent map[uint32]bool

	emu      sync.Mutex // guards sends on events against its close
	evClosed bool
	events   chan Event
	Dropped  atomic.Int64 // events dropped because Events was not drained
	// Resolved counts uncertain outcomes the driver had to resolve by asking
	// the ATM (TXN_STATUS) instead of reading the reply.
	Resolved atomic.Int64
	closed   chan struct{}
	once     sync.Once
}

// NewDriver returns a driver; the line is opened by the first command.
func NewDriver(cfg DriverConfig) *Driver {
	if cfg.ReplyTimeout == 0 {
		cfg.ReplyTimeout = 3 * time.Second
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 100 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Driver{
		cfg: cfg, sem: make(chan struct{}, 1),
		results: map[TxnID]TxnRecord{}, seenEvent: map[uint32]bool{},
		events: make(chan Event, 256), closed: make(chan struct{}),
	}
}

// Events delivers ATM events (presented, taken, retracted). The channel is
// buffered; events are dropped (and counted) if it is not drained. The truth
// is always available from TxnStatus. Close closes the channel.
func (d *Driver) Events() <-chan Event { return d.events }

// Close closes the line and the Events channel; every later call fails with
// ErrDriverClosed. A command still in flight is waited for.
func (d *Driver) Close() error {
	d.once.Do(func() {
		close(d.closed)
		d.emu.Lock()
		d.evClosed = true
		close(d.events)
		d.emu.Unlock()
	})
	d.sem <- struct{}{}
	defer func() { <-d.sem }()
	d.drop()
	return nil
}

// Link returns the current link (for its statistics), or nil.
func (d *Driver) Link() *Link {
	d.sem <- struct{}{}
	defer func() { <-d.sem }()
	return d.link
}

// LineStats returns the line's statistics summed over every link the driver
// has opened, so a reconnect does not reset them. It does not wait for a
// command in flight.
func (d *Driver) LineStats() LinkCounts {
	d.smu.Lock()
	defer d.smu.Unlock()
	s := d.past
	if d.prev != nil {
		s = s.Add(d.prev.Stats.Snapshot())
	}
	if d.cur != nil {
		s = s.Add(d.cur.Stats.Snapshot())
	}
	return s
}

// Record returns what the driver has recorded for id.
func (d *Driver) Record(id TxnID) (TxnRecord, bool) {
	d.rmu.Lock()
	defer d.rmu.Unlock()
	r, ok := d.results[id]
	return r, ok
}

// Records returns a copy of every recorded transaction.
func (d *Driver) Records() map[TxnID]TxnRecord {
	d.rmu.Lock()
	defer d.rmu.Unlock()
	out := make(map[TxnID]TxnRecord, len(d.results))
	for k, v := range d.results {
		out[k] = v
	}
	return out
}

// record stores r unless it would move the transaction backwards.
func (d *Driver) record(r TxnRecord) bool {
	if r.State == StateNone {
		return false
	}
	d.rmu.Lock()
	defer d.rmu.Unlock()
	old, ok := d.results[r.ID]
	if ok && r.State.rank() < old.State.rank() {
		return false
	}
	if ok && r.State.rank() == old.State.rank() && old.State.Final() {
		return false
	}
	d.results[r.ID] = r
	return true
}

func (d *Driver) lock(ctx context.Context) error {
	select {
	case <-d.closed:
		return ErrDriverClosed
	default:
	}
	select {
	case d.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-d.closed:
		return ErrDriverClosed
	}
}

func (d *Driver) unlock() { <-d.sem }

// drop tears the link down; the next command reconnects.
func (d *Driver) drop() {
	if d.link != nil {
		d.link.Close()
		d.smu.Lock()
		if d.prev != nil {
			d.past = d.past.Add(d.prev.Stats.Snapshot())
		}
		d.prev, d.cur = d.link, nil
		d.smu.Unlock()
		d.link = nil
	}
}

func (d *Driver) connect(ctx context.Context) error {
	select {
	case <-d.closed:
		return ErrDriverClosed
	default:
	}
	if d.link != nil && d.link.Err() != nil {
		d.drop()
	}
	if d.link == nil {
		rwc, err := d.cfg.Open(ctx)
		if err != nil {
			return fmt.Errorf("atm: opening line: %w", err)
		}
		d.link = NewLink(rwc, d.cfg.Link)
		d.smu.Lock()
		d.cur = d.link
		d.smu.Unlock()
		go d.dispatch(d.link)
		d.needHello.Store(true)
	}
	if d.needHello.Load() {
		if err := d.doHello(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (d *Driver) dispatch(l *Link) {
	for {
		select {
		case <-l.Done():
			return
		case f := <-l.Recv():
			switch {
			case f.Type == TypeBoot:
				// A new boot restarts event numbers: forget the old ones now,
				// before its first events arrive.
				d.needHello.Store(true)
				if len(f.Payload) == 16 {
					d.rmu.Lock()
					if [16]byte(f.Payload) != d.bootID {
						d.bootID = [16]byte(f.Payload)
						d.seenEvent = map[uint32]bool{}
					}
					d.rmu.Unlock()
				}
			case f.Type == TypeEvent:
				d.onEvent(f)
			default: // replies, PROGRESS, ERROR
				d.pmu.Lock()
				if d.pending != nil {
					select {
					case d.pending <- f:
					default:
					}
				}
				d.pmu.Unlock()
			}
		}
	}
}

func (d *Driver) onEvent(f Frame) {
	m, err := ParseEventMsg(f.Payload)
	if err != nil {
		return
	}
	d.rmu.Lock()
	dup := d.seenEvent[m.No]
	d.seenEvent[m.No] = true
	d.rmu.Unlock()
	if dup {
		return
	}
	adv := d.record(m.Record)
	d.emu.Lock()
	defer d.emu.Unlock()
	if d.evClosed {
		return
	}
	select {
	case d.events <- Event{Kind: m.Kind, No: m.No, Record: m.Record, Advanced: adv}:
	default:
		d.Dropped.Add(1)
	}
}

// roundTrip sends one request and waits for its reply. The caller holds sem
// and has connected. PROGRESS frames for the request restart T_reply.
func (d *Driver) roundTrip(ctx context.Context, t MsgType, payload []byte, start bool) (Frame, error) {
	ch := make(chan Frame, 16)
	d.pmu.Lock()
	d.pending = ch
	d.pmu.Unlock()
	defer func() {
		d.pmu.Lock()
		d.pending = nil
		d.pmu.Unlock()
	}()
	l := d.link
	var seq uint8
	var err error
	if start {
		seq, err = l.SendStart(ctx, t, 0, payload)
	} else {
		seq, err = l.Send(ctx, t, 0, payload)
	}
	if err != nil {
		if ctx.Err() == nil {
			d.drop()
		}
		return Frame{}, fmt.Errorf("atm: %s: %w", t, err)
	}
	timer := time.NewTimer(d.cfg.ReplyTimeout)
	defer timer.Stop()
	for {
		select {
		case f := <-ch:
			if f.Ref != seq {
				continue // a late reply to an earlier request
			}
			switch f.Type {
			case TypeProgress:
				timer.Reset(d.cfg.ReplyTimeout)
			case TypeError:
				m, _ := ParseErrorMsg(f.Payload)
				if m.Code == CodeNoSession {
					d.needHello.Store(true)
				}
				return f, &DeviceError{Op: t, Code: m.Code, Msg: m.Msg}
			case t | ReplyBit:
				return f, nil
			}
		case <-timer.C:
			d.needHello.Store(true) // in doubt: start the session again
			return Frame{}, fmt.Errorf("atm: %s seq %d: %w", t, seq, ErrNoReply)
		case <-ctx.Done():
			return Frame{}, ctx.Err()
		case <-l.Done():
			d.drop()
			return Frame{}, fmt.Errorf("atm: %s: %w", t, l.Err())
		}
	}
}

func (d *Driver) doHello(ctx context.Context) error {
	f, err := d.roundTrip(ctx, TypeHello, Hello{VersionMin: 1, VersionMax: ProtocolVersion, HostTimeMs: uint64(d.cfg.Now().UnixMilli())}.Marshal(), true)
	if err != nil {
		return err
	}
	h, err := ParseHelloReply(f.Payload)
	if err != nil {
		return fmt.Errorf("atm: HELLO reply: %w", err)
	}
	d.hello = h
	d.needHello.Store(false)
	d.rmu.Lock()
	if h.BootID != d.bootID {
		d.bootID = h.BootID
		d.seenEvent = map[uint32]bool{}
	}
	d.rmu.Unlock()
	if h.Last != nil {
		d.record(*h.Last)
	}
	return nil
}

// call connects if needed and runs one request, re-establishing the session
// once if the ATM answers NO_SESSION (it then executed nothing).
func (d *Driver) call(ctx context.Context, t MsgType, payload []byte) (Frame, error) {
	return d.callBuild(ctx, t, func(HelloReply) ([]byte, error) { return payload, nil })
}

// callBuild is call with the payload built after the session is up, from
// the HELLO reply of the ATM actually on the line (built again if the
// session is re-established).
func (d *Driver) callBuild(ctx context.Context, t MsgType, build func(HelloReply) ([]byte, error)) (Frame, error) {
	if err := d.lock(ctx); err != nil {
		return Frame{}, err
	}
	defer d.unlock()
	for attempt := 0; ; attempt++ {
		if err := d.connect(ctx); err != nil {
			return Frame{}, err
		}
		payload, err := build(d.hello)
		if err != nil {
			return Frame{}, err
		}
		f, err := d.roundTrip(ctx, t, payload, false)
		if attempt == 0 && errors.Is(err, ErrCode(CodeNoSession)) {
			continue
		}
		return f, err
	}
}

// Hello (re)starts the session and returns what the ATM said.
func (d *Driver) Hello(ctx context.Context) (HelloReply, error) {
	if err := d.lock(ctx); err != nil {
		return HelloReply{}, err
	}
	defer d.unlock()
	d.needHello.Store(true)
	if err := d.connect(ctx); err != nil {
		return HelloReply{}, err
	}
	return d.hello, nil
}

// Status asks for the ATM's status.
func (d *Driver) Status(ctx context.Context) (Status, error) {
	f, err := d.call(ctx, TypeStatus, nil)
	if err != nil {
		return Status{}, err
	}
	return ParseStatus(f.Payload)
}

func (d *Driver) result(ctx context.Context, t MsgType, payload []byte) error {
	f, err := d.call(ctx, t, payload)
	return resultErr(t, f, err)
}

func resultErr(t MsgType, f Frame, err error) error {
	if err != nil {
		return err
	}
	r, err := ParseResult(f.Payload)
	if err != nil {
		return fmt.Errorf("atm: %s reply: %w", t, err)
	}
	if r.Code != OK {
		return &DeviceError{Op: t, Code: r.Code}
	}
	return nil
}

// ShowQR puts a QR code on the ATM's screen, in the mode m names (the ATM
// refuses a mode it did not advertise with CodeUnsupported). DisplayQR
// chooses the mode itself.
func (d *Driver) ShowQR(ctx context.Context, m ShowQR) error {
	return d.result(ctx, TypeShowQR, m.Marshal())
}

// DisplayQR puts a QR code for text on the ATM's screen in a mode the ATM
// advertised in its HELLO reply: as text if it renders QR codes itself
// (QR_TEXT), else as a module bitmap rendered here (QR_BITMAP). It returns
// the mode used. An ATM with neither capability gets nothing and the error
// matches ErrCode(CodeUnsupported).
func (d *Driver) DisplayQR(ctx context.Context, session TxnID, ttlSec uint16, text string) (mode uint8, err error) {
	f, err := d.callBuild(ctx, TypeShowQR, func(h HelloReply) ([]byte, error) {
		m, err := QRMessage(session, ttlSec, text, h.Capabilities)
		mode = m.Mode
		return m.Marshal(), err
	})
	return mode, resultErr(TypeShowQR, f, err)
}

// CancelQR removes the QR code of session from the screen.
func (d *Driver) CancelQR(ctx context.Context, session TxnID) error {
	return d.result(ctx, TypeCancelQR, TxnRequest{session}.Marshal())
}

// Purge clears the transport into the reject bin and returns the note count.
func (d *Driver) Purge(ctx context.Context) (int, error) {
	f, err := d.call(ctx, TypePurge, nil)
	if err != nil {
		return 0, err
	}
	r, err := ParseResult(f.Payload)
	if err != nil {
		return 0, err
	}
	if r.Code != OK {
		return int(r.Notes), &DeviceError{Op: TypePurge, Code: r.Code}
	}
	return int(r.Notes), nil
}

// PIN asks the PIN pad for a PIN; the reply holds the encrypted PIN block.
func (d *Driver) PIN(ctx context.Context, m PINRequest) (PINReply, error) {
	f, err := d.call(ctx, TypePIN, m.Marshal())
	if err != nil {
		return PINReply{}, err
	}
	r, err := ParsePINReply(f.Payload)
	if err != nil {
		return r, err
	}
	if r.Code != OK {
		return r, &DeviceError{Op: TypePIN, Code: r.Code}
	}
	return r, nil
}

// txnCall runs a request about id answered by a TxnReply and records the
// result. A reply whose record is not id's is refused with ErrWrongTxn.
func (d *Driver) txnCall(ctx context.Context, t MsgType, id TxnID) (TxnReply, error) {
	f, err := d.call(ctx, t, TxnRequest{id}.Marshal())
	if err != nil {
		return TxnReply{}, err
	}
	r, err := ParseTxnReply(f.Payload)
	if err != nil {
		return r, fmt.Errorf("atm: %s reply: %w", t, err)
	}
	if r.Record.ID != id {
		return TxnReply{}, fmt.Errorf("atm: %s %s: reply names %s: %w", t, id, r.Record.ID, ErrWrongTxn)
	}
	d.record(r.Record)
	return r, nil
}

// TxnStatus asks the ATM what it knows about id. A record in state NONE
// means the ATM never accepted the id.
func (d *Driver) TxnStatus(ctx context.Context, id TxnID) (TxnRecord, error) {
	r, err := d.txnCall(ctx, TypeTxnStatus, id)
	if err != nil {
		return TxnRecord{}, err
	}
	if r.Code == CodeUnknownTxn {
		r.Record.ID, r.Record.State = id, StateNone
	}
	return r.Record, nil
}

// Dispense dispenses notes for transaction id, exactly once. It returns the
// ATM's record (per-cassette picked, presented, rejected) also on error:
//   - a *DeviceError with Record == nil: refused, nothing moved;
//   - a *DeviceError with a Record: the dispense failed part way (jam, too
//     many rejects, power loss); the counts say what happened;
//   - an *UncertainError: ctx ended before the ATM could be asked.
//
// A retry with the same id never dispenses again.
func (d *Driver) Dispense(ctx context.Context, id TxnID, amount int64, notes []Notes) (TxnRecord, error) {
	if r, ok := d.Record(id); ok && r.State.Final() {
		if !sameDispense(r, amount, notes) {
			return TxnRecord{ID: id}, &DeviceError{Op: TypeDispense, Code: CodeTxnConflict, Msg: "transaction id already used for a different dispense"}
		}
		return r, finalErr(TypeDispense, r)
	}
	payload := Dispense{ID: id, Amount: amount, Notes: notes}.Marshal()
	for {
		f, err := d.call(ctx, TypeDispense, payload)
		if err == nil {
			r, perr := ParseTxnReply(f.Payload)
			switch {
			case perr != nil:
				err = fmt.Errorf("atm: DISPENSE reply: %w", perr)
			case r.Record.ID != id:
				// Never an answer, not even a refusal: ask for id's outcome.
				err = fmt.Errorf("atm: DISPENSE %s: reply names %s: %w", id, r.Record.ID, ErrWrongTxn)
			default:
				switch {
				case r.Record.State.Final():
					d.record(r.Record)
					rec, _ := d.Record(id)
					return rec, finalErr(TypeDispense, rec)
				case r.Code != OK && r.Code != CodeInProgress:
					return TxnRecord{ID: id}, &DeviceError{Op: TypeDispense, Code: r.Code}
				}
				// accepted and still running: wait for the outcome below
			}
		} else {
			var de *DeviceError
			if errors.As(err, &de) && de.Code != CodeNoSession || errors.Is(err, ErrDriverClosed) {
				return TxnRecord{ID: id}, err // refused or never sent: nothing moved
			}
		}
		d.Resolved.Add(1)
		rec, rerr := d.resolve(ctx, id)
		if rerr != nil {
			return TxnRecord{ID: id}, &UncertainError{ID: id, Err: rerr}
		}
		if rec.State == StateNone {
			continue // never accepted: the same DISPENSE, same id, is safe
		}
		return rec, finalErr(TypeDispense, rec)
	}
}

// resolve asks the ATM until it states a final outcome for id, or that it
// never accepted it (StateNone). Line errors are retried until ctx ends.
func (d *Driver) resolve(ctx context.Context, id TxnID) (TxnRecord, error) {
	rec, err := d.pollStatus(ctx, id, func(rec TxnRecord) (bool, error) {
		return rec.State == StateNone || rec.State.Final(), nil
	})
	if err != nil {
		return TxnRecord{}, err
	}
	if rec.State.Final() {
		r, _ := d.Record(id)
		return r, nil
	}
	return rec, nil
}

// pollStatus asks the ATM about id every PollInterval until settles says
// its answer settles the question, ctx ends or the driver closes. Line
// errors, and the reason settles gives for an answer that does not settle
// it, are retried; the last of them is returned at the end (ctx's error if
// there was none).
func (d *Driver) pollStatus(ctx context.Context, id TxnID, settles func(TxnRecord) (bool, error)) (TxnRecord, error) {
	var last error
	for {
		rec, err := d.TxnStatus(ctx, id)
		if err == nil {
			var done bool
			if done, err = settles(rec); done {
				return rec, nil
			}
		}
		if err != nil {
			last = err
		}
		if ctx.Err() != nil || errors.Is(err, ErrDriverClosed) {
			if last == nil {
				last = ctx.Err()
			}
			return TxnRecord{}, last
		}
		t := time.NewTimer(d.cfg.PollInterval)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
}

func sameDispense(r TxnRecord, amount int64, notes []Notes) bool {
	if r.Amount != amount {
		return false
	}
	for _, n := range notes {
		found := false
		for _, c := range r.Cassettes {
			found = found || (c.Cassette == n.Cassette && c.Requested == n.Count)
		}
		if !found {
			return false
		}
	}
	return true
}

func finalErr(op MsgType, r TxnRecord) error {
	if r.Error != OK && r.State == StateFailed {
		rc := r
		return &DeviceError{Op: op, Code: r.Error, Record: &rc}
	}
	return nil
}

// Retract pulls notes left at the exit into the reject bin.
func (d *Driver) Retract(ctx context.Context, id TxnID) (TxnRecord, error) {
	return d.moveNotes(ctx, TypeRetract, id)
}

// Reject moves notes in the transport into the reject bin.
func (d *Driver) Reject(ctx context.Context, id TxnID) (TxnRecord, error) {
	return d.moveNotes(ctx, TypeReject, id)
}

func (d *Driver) moveNotes(ctx context.Context, t MsgType, id TxnID) (TxnRecord, error) {
	r, err := d.txnCall(ctx, t, id)
	var de *DeviceError
	if err != nil && !errors.As(err, &de) {
		// Lost reply: the ATM keeps the outcome; ask it.
		d.Resolved.Add(1)
		var rec TxnRecord
		var rerr error
		if t == TypeRetract {
			rec, r.Code, rerr = d.resolveRetract(ctx, id)
		} else {
			rec, r.Code, rerr = d.resolveReject(ctx, id)
		}
		if rerr != nil {
			return TxnRecord{ID: id}, &UncertainError{ID: id, Err: errors.Join(err, rerr)}
		}
		r.Record = rec
	} else if err != nil {
		return TxnRecord{ID: id}, err
	}
	rec, ok := d.Record(id)
	if !ok {
		rec = r.Record
	}
	if r.Code != OK {
		rc := r.Record
		return rec, &DeviceError{Op: t, Code: r.Code, Record: &rc}
	}
	return rec, nil
}

// resolveReject learns the outcome of a REJECT whose reply was lost. REJECT
// is idempotent (PROTOCOL.md §6.8): on a final transaction it moves nothing
// and answers OK with the record, so a final state settles it with OK, the
// answer a second REJECT would get; UNKNOWN_TXN is the ATM's answer for an
// id it never accepted. While the transaction is PICKING the REJECT may
// never have arrived (a line that failed before the ACK), so the driver
// sends it again: a dispense stopped mid-pick is ended by it, one still
// running answers BUSY and nothing moves; it asks until ctx ends.
func (d *Driver) resolveReject(ctx context.Context, id TxnID) (TxnRecord, Code, error) {
	rejected := false // the REJECT sent again was answered OK (and recorded)
	rec, err := d.pollStatus(ctx, id, func(rec TxnRecord) (bool, error) {
		switch {
		case rec.State == StateNone || rec.State.Final():
			return true, nil
		case rec.State == StatePicking:
			r, err := d.txnCall(ctx, TypeReject, id)
			rejected = err == nil && r.Code == OK
			return rejected, err
		}
		return false, nil
	})
	switch {
	case err != nil:
		return TxnRecord{}, 0, err
	case !rejected && rec.State == StateNone:
		return TxnRecord{ID: id}, CodeUnknownTxn, nil
	}
	if r, ok := d.Record(id); ok {
		rec = r
	}
	return rec, OK, nil
}

// resolveRetract learns the outcome of a RETRACT whose reply was lost. Only
// the two ends of a presentation answer it: TAKEN (the customer was first:
// NOT_PRESENTED) and RETRACTED (RETRACT_COUNT_UNKNOWN if the ATM could not
// count), the codes PROTOCOL.md §6.7 gives them. UNKNOWN_TXN is the ATM's own
// answer. Any other state (PRESENTED: the retract may still run; FAILED) says
// nothing about the retract, so the driver asks again until ctx ends and then
// the outcome is uncertain; it never guesses.
func (d *Driver) resolveRetract(ctx context.Context, id TxnID) (TxnRecord, Code, error) {
	rec, err := d.pollStatus(ctx, id, func(rec TxnRecord) (bool, error) {
		switch rec.State {
		case StateTaken, StateRetracted, StateNone:
			return true, nil
		}
		return false, fmt.Errorf("atm: RETRACT %s: ATM reports %s: %w", id, rec.State, ErrUncertain)
	})
	switch {
	case err != nil:
		return TxnRecord{}, 0, err
	case rec.State == StateTaken:
		return rec, CodeNotPresented, nil
	case rec.State == StateNone:
		return rec, CodeUnknownTxn, nil
	case rec.Retracted == RetractUnknown:
		return rec, CodeRetractCountUnknown, nil
	default: // retracted
		return rec, OK, nil
	}
}
