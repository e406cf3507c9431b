package atm

// The driver's lifecycle and its line: opening and reopening the link,
// HELLO, the dispatcher that routes replies to the one command in flight
// and events to driver_records.go, and the request/reply round trip that
// every command (driver_cmds.go, driver_txn.go) is built on.

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

// Paced says whether the current link paces its writes to the baud (a
// pseudo-terminal) or leaves it to the port (a real UART): Link.Paced.
// open is false while no line is open. It does not wait for a command in
// flight.
func (d *Driver) Paced() (paced, open bool) {
	d.smu.Lock()
	defer d.smu.Unlock()
	if d.cur == nil {
		return false, false
	}
	return d.cur.Paced(), true
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
				if b, err := ParseBoot(f.Payload); err == nil {
					d.rmu.Lock()
					if b.ID != d.bootID {
						d.bootID = b.ID
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
