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

// Link errors.
var (
	// ErrClosed is returned by a Link that was closed or whose line failed.
	ErrClosed = errors.New("atm: link closed")
	// ErrNoAck means a data frame went unacknowledged through every
	// retransmission: the line is down (PROTOCOL.md §3).
	ErrNoAck = errors.New("atm: no ACK after retransmissions, line down")
)

// LinkConfig holds the link's timers. Zero values take the defaults of
// PROTOCOL.md §4 for the baud rate.
type LinkConfig struct {
	// Baud paces writes to the line rate and scales the timers. 0 means
	// no pacing and timers as for 115200. A line that shifts its bytes
	// out at the baud itself (a SelfPacedLine saying so: a real UART) is
	// not paced again; one that does not say is paced.
	Baud       int
	AckTimeout time.Duration // fixed part of T_ack; default 250 ms
	Retries    int           // N_retry; default 5
	InterByte  time.Duration // fixed part of T_interbyte; default 50 ms
}

func (c LinkConfig) charTime() time.Duration {
	baud := c.Baud
	if baud <= 0 {
		baud = 115200
	}
	return time.Second * 10 / time.Duration(baud)
}

func (c LinkConfig) ackTimeout(frameLen int) time.Duration {
	base := c.AckTimeout
	if base == 0 {
		base = 250 * time.Millisecond
	}
	return base + 2*time.Duration(frameLen+8)*c.charTime()
}

func (c LinkConfig) interByte() time.Duration {
	base := c.InterByte
	if base == 0 {
		base = 50 * time.Millisecond
	}
	return base + 20*c.charTime()
}

func (c LinkConfig) retries() int {
	if c.Retries == 0 {
		return 5
	}
	return c.Retries
}

// LinkStats counts what crossed the line.
type LinkStats struct {
	BytesOut, BytesIn, FramesOut, FramesIn atomic.Int64
	Retransmits, NAKsSent, NAKsReceived    atomic.Int64
	Duplicates, Garbage, BadCRC            atomic.Int64
}

// LinkCounts is a snapshot of LinkStats, or a sum of several.
type LinkCounts struct {
	BytesOut     int64 `json:"bytes_out"`
	BytesIn      int64 `json:"bytes_in"`
	FramesOut    int64 `json:"frames_out"`
	FramesIn     int64 `json:"frames_in"`
	Retransmits  int64 `json:"retransmits"`
	NAKsSent     int64 `json:"naks_sent"`
	NAKsReceived int64 `json:"naks_received"`
	Duplicates   int64 `json:"duplicates"`
	Garbage      int64 `json:"garbage_bytes"`
	BadCRC       int64 `json:"bad_crc"`
}

// Snapshot reads every counter once.
func (s *LinkStats) Snapshot() LinkCounts {
	return LinkCounts{
		BytesOut: s.BytesOut.Load(), BytesIn: s.BytesIn.Load(),
		FramesOut: s.FramesOut.Load(), FramesIn: s.FramesIn.Load(),
		Retransmits: s.Retransmits.Load(), NAKsSent: s.NAKsSent.Load(), NAKsReceived: s.NAKsReceived.Load(),
		Duplicates: s.Duplicates.Load(), Garbage: s.Garbage.Load(), BadCRC: s.BadCRC.Load(),
	}
}

// Add returns the field-wise sum of c and o.
func (c LinkCounts) Add(o LinkCounts) LinkCounts {
	return LinkCounts{
		BytesOut: c.BytesOut + o.BytesOut, BytesIn: c.BytesIn + o.BytesIn,
		FramesOut: c.FramesOut + o.FramesOut, FramesIn: c.FramesIn + o.FramesIn,
		Retransmits: c.Retransmits + o.Retransmits, NAKsSent: c.NAKsSent + o.NAKsSent,
		NAKsReceived: c.NAKsReceived + o.NAKsReceived, Duplicates: c.Duplicates + o.Duplicates,
		Garbage: c.Garbage + o.Garbage, BadCRC: c.BadCRC + o.BadCRC,
	}
}

// SelfPacedLine is a line that may say whether it shifts written bytes out
// at its baud itself, after the write, as a real UART does. A pseudo-terminal
// moves them at memory speed whatever baud it is told, so a Link paces its
// own writes there. OpenSerial's ports implement it; a line that does not
// (a pty master, a pipe in a test) is paced.
type SelfPacedLine interface {
	SelfPaced() bool
}

// Link is one end of the serial link protocol (PROTOCOL.md §2–§4) over an
// io.ReadWriteCloser. Both the host driver and the ATM simulator use it.
//
// Concurrency: a reader goroutine reads the line; a receive goroutine decodes
// frames, answers ACK/NAK, drops duplicates (re-sending the cached reply) and
// queues data frames on Recv. Send may be called from any goroutine; calls
// are serialised (stop and wait). Every write is one Write call of one whole
// frame, paced to the baud rate under one mutex unless the line paces
// itself (SelfPacedLine).
type Link struct {
	rwc   io.ReadWriteCloser
	cfg   LinkConfig
	Stats LinkStats

	writeMu  sync.Mutex
	nextFree time.Time
	paced    bool   // Baud set and the line does not pace itself
	pacer    *pacer // nil unless paced, or where the kernel gives no timerfd

	sendSem chan struct{}

	mu          sync.Mutex
	sendSeq     uint8
	outstanding int       // seq awaiting ACK, -1 if none
	ackCh       chan bool // true = ACK, false = NAK
	lastRecv    int       // -1 before anything was received
	replies     map[uint8][]byte
	replyOrder  []uint8

	recv      chan Frame
	done      chan struct{}
	closeOnce sync.Once
	err       error
}

// NewLink starts a link on rwc. Close it to stop its goroutines; it closes rwc.
func NewLink(rwc io.ReadWriteCloser, cfg LinkConfig) *Link {
	l := &Link{
		rwc: rwc, cfg: cfg,
		sendSem:     make(chan struct{}, 1),
		outstanding: -1, lastRecv: -1,
		replies: map[uint8][]byte{},
		recv:    make(chan Frame, 256),
		done:    make(chan struct{}),
	}
	sp, ok := rwc.(SelfPacedLine)
	l.paced = cfg.Baud > 0 && !(ok && sp.SelfPaced())
	if l.paced {
		l.pacer = newPacer()
	}
	chunks := make(chan []byte, 16)
	go l.readLoop(chunks)
	go l.receiveLoop(chunks)
	return l
}

// Paced says whether the link holds its writes to the baud itself: true on
// a line that moves bytes at memory speed (a pseudo-terminal), false
// without a Baud or on a line that paces itself (a real UART).
func (l *Link) Paced() bool { return l.paced }

// Recv delivers accepted data frames (not ACK/NAK, not duplicates).
func (l *Link) Recv() <-chan Frame { return l.recv }

// Done is closed when the link has stopped; Err then says why.
func (l *Link) Done() <-chan struct{} { return l.done }

// Err is the reason the link stopped (wrapping ErrClosed), or nil.
func (l *Link) Err() error {
	select {
	case <-l.done:
		return l.err
	default:
		return nil
	}
}

// Close stops the link and closes the line.
func (l *Link) Close() error {
	l.fail(ErrClosed)
	return nil
}

func (l *Link) fail(err error) {
	l.closeOnce.Do(func() {
		if !errors.Is(err, ErrClosed) {
			err = fmt.Errorf("%w: %w", ErrClosed, err)
		}
		l.err = err
		close(l.done)
		l.pacer.close()
		l.rwc.Close()
	})
}

func (l *Link) readLoop(out chan<- []byte) {
	for {
		buf := make([]byte, 512)
		n, err := l.rwc.Read(buf)
		if n > 0 {
			l.Stats.BytesIn.Add(int64(n))
			select {
			case out <- buf[:n]:
			case <-l.done:
				return
			}
		}
		if err != nil {
			l.fail(fmt.Errorf("reading line: %w", err))
			return
		}
	}
}

func (l *Link) receiveLoop(in <-chan []byte) {
	var dec Decoder
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer func() {
		l.Stats.Garbage.Store(int64(dec.Garbage))
		l.Stats.BadCRC.Store(int64(dec.BadCRC))
	}()
	for {
		var frames []Frame
		bad := false
		select {
		case <-l.done:
			return
		case p := <-in:
			timer.Stop()
			dec.Feed(p)
			for {
				f, ok, b := dec.Next()
				bad = bad || b
				if !ok {
					break
				}
				frames = append(frames, f)
			}
			if dec.Buffered() > 0 {
				timer.Reset(l.cfg.interByte())
			}
		case <-timer.C:
			frames, bad = dec.Expire()
		}
		l.Stats.Garbage.Store(int64(dec.Garbage))
		l.Stats.BadCRC.Store(int64(dec.BadCRC))
		if bad {
			l.Stats.NAKsSent.Add(1)
			l.writeControl(TypeNAK, 0)
		}
		for _, f := range frames {
			l.handle(f)
		}
	}
}

func (l *Link) handle(f Frame) {
	switch f.Type {
	case TypeACK:
		l.signal(int(f.Seq), true)
		return
	case TypeNAK:
		l.Stats.NAKsReceived.Add(1)
		l.signal(-1, false)
		return
	}
	l.Stats.FramesIn.Add(1)
	l.writeControl(TypeACK, f.Seq)
	l.mu.Lock()
	if f.Seq != 0 && int(f.Seq) == l.lastRecv {
		raw := l.replies[f.Seq]
		l.mu.Unlock()
		l.Stats.Duplicates.Add(1)
		if raw != nil {
			l.writeRaw(raw)
		}
		return
	}
	l.lastRecv = int(f.Seq)
	if f.Seq == 0 {
		// A new session: the peer numbers from 1 again, so a reply cached
		// for the old session's SEQ n must never answer the new SEQ n.
		l.clearReplies()
	}
	l.mu.Unlock()
	if f.Ref != 0 {
		l.signal(int(f.Ref), true) // a reply implies the ACK of its request
	}
	select {
	case l.recv <- f:
	case <-l.done:
	}
}

// clearReplies empties the reply cache; the caller holds mu. The cache is
// per session (PROTOCOL.md §3): any SEQ-0 frame, received or sent, ends it.
func (l *Link) clearReplies() {
	clear(l.replies)
	l.replyOrder = l.replyOrder[:0]
}

// signal tells a waiting Send about an ACK (for seq, or any if -1) or a NAK.
func (l *Link) signal(seq int, ack bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.outstanding < 0 || (ack && seq != l.outstanding) {
		return
	}
	select {
	case l.ackCh <- ack:
	default:
	}
}

func (l *Link) writeControl(t MsgType, seq uint8) {
	raw, _ := EncodeFrame(Frame{Seq: seq, Type: t})
	l.writeRaw(raw)
}

// writeRaw writes one whole frame. On a paced link the frame is handed over
// when the line would have finished shifting it out; on a line that paces
// itself it is handed over at once and the port shifts it out after the
// write (waiting here as well would make each frame take twice its line
// time).
func (l *Link) writeRaw(raw []byte) error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.paced {
		now := time.Now()
		t := l.nextFree
		if t.Before(now) {
			t = now
		}
		t = t.Add(time.Duration(len(raw)) * l.cfg.charTime())
		if d := time.Until(t); d > 0 {
			l.pacer.sleep(d)
		}
		l.nextFree = t
	}
	select {
	case <-l.done:
		return l.err
	default:
	}
	if _, err := l.rwc.Write(raw); err != nil {
		l.fail(fmt.Errorf("writing line: %w", err))
		return l.Err()
	}
	l.Stats.BytesOut.Add(int64(len(raw)))
	return nil
}

// Send transmits a data frame and waits for its ACK, retransmitting on NAK or
// timeout (PROTOCOL.md §3). ref is the request a reply answers (0 for
// requests and events); a reply is cached so that a duplicate of its request
// is answered with the same bytes. It returns the sequence number used.
func (l *Link) Send(ctx context.Context, t MsgType, ref uint8, payload []byte) (uint8, error) {
	return l.send(ctx, t, ref, payload, false)
}

// SendStart sends a session-start frame (HELLO, its reply, BOOT) with SEQ 0
// and restarts this side's numbering.
func (l *Link) SendStart(ctx context.Context, t MsgType, ref uint8, payload []byte) (uint8, error) {
	return l.send(ctx, t, ref, payload, true)
}

func (l *Link) send(ctx context.Context, t MsgType, ref uint8, payload []byte, start bool) (uint8, error) {
	select {
	case l.sendSem <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-l.done:
		return 0, l.err
	}
	defer func() { <-l.sendSem }()

	l.mu.Lock()
	var seq uint8
	if start {
		l.sendSeq = 0
		l.clearReplies()
	} else {
		l.sendSeq++
		if l.sendSeq == 0 {
			l.sendSeq = 1
		}
		seq = l.sendSeq
	}
	raw, err := EncodeFrame(Frame{Seq: seq, Ref: ref, Type: t, Payload: payload})
	if err != nil {
		l.mu.Unlock()
		return seq, err
	}
	if ref != 0 {
		if _, ok := l.replies[ref]; !ok {
			l.replyOrder = append(l.replyOrder, ref)
		}
		l.replies[ref] = raw
		if len(l.replyOrder) > 16 {
			delete(l.replies, l.replyOrder[0])
			l.replyOrder = l.replyOrder[1:]
		}
	}
	l.outstanding = int(seq)
	ackCh := make(chan bool, 1)
	l.ackCh = ackCh
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.outstanding = -1
		l.mu.Unlock()
	}()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for attempt := 0; attempt <= l.cfg.retries(); attempt++ {
		if attempt > 0 {
			l.Stats.Retransmits.Add(1)
		}
		if err := l.writeRaw(raw); err != nil {
			return seq, err
		}
		l.Stats.FramesOut.Add(1)
		timer.Reset(l.cfg.ackTimeout(len(raw)))
		select {
		case ack := <-ackCh:
			if ack {
				return seq, nil
			}
			// NAK: retransmit at once.
		case <-timer.C:
		case <-ctx.Done():
			return seq, ctx.Err()
		case <-l.done:
			return seq, l.err
		}
	}
	return seq, fmt.Errorf("sending %s seq %d: %w", t, seq, ErrNoAck)
}
