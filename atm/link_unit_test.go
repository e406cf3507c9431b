package atm

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// These tests drive the link logic over net.Pipe; the pty and serial path is
// covered by link_test.go against the simulator.

// pipeLinks joins two links over net.Pipe. A pipe loses nothing, so these
// tests never need a retransmission of their own: T_ack is long, so that a
// late ACK on a loaded machine cannot cause one and add a duplicate to the
// counts the tests check exactly (the tests retransmit by hand).
func pipeLinks(t *testing.T) (a, b *Link, rawA net.Conn) {
	t.Helper()
	ca, cb := net.Pipe()
	cfg := LinkConfig{AckTimeout: 10 * time.Second}
	a, b = NewLink(ca, cfg), NewLink(cb, cfg)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b, ca
}

func recvT(t *testing.T, l *Link) Frame {
	t.Helper()
	select {
	case f := <-l.Recv():
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("nothing received within 10 s")
		return Frame{}
	}
}

func TestLinkDuplicateAnsweredFromCache(t *testing.T) {
	t.Parallel()
	a, b, rawA := pipeLinks(t)
	ctx := context.Background()
	seq, err := a.Send(ctx, TypeStatus, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := recvT(t, b)
	if _, err := b.Send(ctx, TypeStatus|ReplyBit, req.Seq, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	rep := recvT(t, a)
	if rep.Ref != seq || string(rep.Payload) != "\x01\x02\x03" {
		t.Fatalf("reply %v", rep)
	}
	// The host retransmits the request as if the ACK had been lost.
	raw, _ := EncodeFrame(Frame{Seq: seq, Type: TypeStatus})
	a.writeMu.Lock()
	rawA.Write(raw)
	a.writeMu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for a.Stats.Duplicates.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // waiting on the peer's counters; no channel says it
	}
	if got := b.Stats.Duplicates.Load(); got != 1 {
		t.Fatalf("receiver counted %d duplicates, want 1", got)
	}
	if got := a.Stats.Duplicates.Load(); got != 1 {
		t.Fatalf("cached reply not re-sent (sender saw %d duplicate replies)", got)
	}
	select {
	case f := <-b.Recv():
		t.Fatalf("duplicate delivered for execution: %v", f)
	case f := <-a.Recv():
		t.Fatalf("duplicate reply delivered: %v", f)
	default:
	}
}

func TestLinkNoAckAfterRetries(t *testing.T) {
	t.Parallel()
	ca, cb := net.Pipe()
	go io.Copy(io.Discard, cb) // a peer that hears nothing
	l := NewLink(ca, LinkConfig{AckTimeout: 10 * time.Millisecond})
	defer l.Close()
	_, err := l.Send(context.Background(), TypeStatus, 0, nil)
	if !errors.Is(err, ErrNoAck) {
		t.Fatalf("err = %v, want ErrNoAck", err)
	}
	if got := l.Stats.Retransmits.Load(); got != 5 {
		t.Fatalf("%d retransmissions, want N_retry = 5", got)
	}
}

func TestLinkClosed(t *testing.T) {
	t.Parallel()
	a, b, _ := pipeLinks(t)
	b.Close()
	<-a.Done()
	if !errors.Is(a.Err(), ErrClosed) {
		t.Fatalf("err = %v", a.Err())
	}
	if _, err := a.Send(context.Background(), TypeStatus, 0, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("send on a dead line: %v", err)
	}
}

// selfPacing is a line that says whether it paces itself, as OpenSerial's
// ports do.
type selfPacing struct {
	net.Conn
	self bool
}

func (s selfPacing) SelfPaced() bool { return s.self }

// TestLinkPacesOnlyWhereTheLineDoesNot: a link paces its writes to the baud
// unless the line says it shifts bytes out at the baud itself (a real UART).
// At 1 baud an ACK's line time is 80 s: on a self-paced line it is written
// at once, where the old link waited those 80 s before the write.
func TestLinkPacesOnlyWhereTheLineDoesNot(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		line  func(net.Conn) io.ReadWriteCloser
		baud  int
		paced bool
	}{
		{"self-paced line (UART)", func(c net.Conn) io.ReadWriteCloser { return selfPacing{c, true} }, 1, false},
		{"line that does not pace itself (pty)", func(c net.Conn) io.ReadWriteCloser { return selfPacing{c, false} }, 1, true},
		{"line that does not say", func(c net.Conn) io.ReadWriteCloser { return c }, 1, true},
		{"no baud", func(c net.Conn) io.ReadWriteCloser { return c }, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ca, cb := net.Pipe()
			l := NewLink(tc.line(ca), LinkConfig{Baud: tc.baud})
			t.Cleanup(func() { l.Close(); cb.Close() })
			if got := l.Paced(); got != tc.paced {
				t.Fatalf("Paced() = %v, want %v", got, tc.paced)
			}
			if tc.paced {
				return // the pacing itself: TestPacer, and every test over a pty
			}
			want, _ := EncodeFrame(Frame{Seq: 3, Type: TypeACK})
			go l.writeControl(TypeACK, 3)
			cb.SetReadDeadline(time.Now().Add(10 * time.Second))
			got := make([]byte, len(want))
			if _, err := io.ReadFull(cb, got); err != nil {
				t.Fatalf("ACK not written within 10 s (its line time at 1 baud is %v): %v", time.Duration(len(want))*10*time.Second, err)
			}
		})
	}
}

func TestLinkTimers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		cfg       LinkConfig
		frame     int
		ack, ibyt time.Duration
	}{
		{"9600", LinkConfig{Baud: 9600}, 100, 250*time.Millisecond + 2*108*time.Second*10/9600, 50*time.Millisecond + 20*time.Second*10/9600},
		{"115200", LinkConfig{Baud: 115200}, 100, 250*time.Millisecond + 2*108*(time.Second*10/115200), 50*time.Millisecond + 20*(time.Second*10/115200)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// within a microsecond: the char time is truncated to nanoseconds
			if got := tc.cfg.ackTimeout(tc.frame); (got - tc.ack).Abs() > time.Microsecond {
				t.Fatalf("T_ack = %v, want %v", got, tc.ack)
			}
			if got := tc.cfg.interByte(); (got - tc.ibyt).Abs() > time.Microsecond {
				t.Fatalf("T_interbyte = %v, want %v", got, tc.ibyt)
			}
		})
	}
}

// A session restart (SEQ 0) empties the reply cache: after HELLO the host
// numbers from 1 again, and a retransmission of the new SEQ 1 must not be
// answered with the old session's reply for SEQ 1.
func TestLinkHelloThenRetransmitSeq1GetsFreshExecution(t *testing.T) {
	t.Parallel()
	a, b, rawA := pipeLinks(t)
	ctx := context.Background()
	// Session 1: request A (SEQ 1) and its reply.
	seq, err := a.Send(ctx, TypeDispense, 0, []byte("A"))
	if err != nil || seq != 1 {
		t.Fatalf("seq %d, %v", seq, err)
	}
	req := recvT(t, b)
	if _, err := b.Send(ctx, TypeDispense|ReplyBit, req.Seq, []byte("reply-for-A")); err != nil {
		t.Fatal(err)
	}
	if rep := recvT(t, a); string(rep.Payload) != "reply-for-A" {
		t.Fatalf("reply %q", rep.Payload)
	}
	// Session 2: HELLO (SEQ 0) and its SEQ-0 reply.
	if _, err := a.SendStart(ctx, TypeHello, 0, nil); err != nil {
		t.Fatal(err)
	}
	if h := recvT(t, b); h.Type != TypeHello {
		t.Fatalf("got %v", h)
	}
	if _, err := b.SendStart(ctx, TypeHello|ReplyBit, 0, nil); err != nil {
		t.Fatal(err)
	}
	recvT(t, a)
	// Request B, SEQ 1 again; its ACK is "lost" and the host retransmits.
	seq, err = a.Send(ctx, TypeDispense, 0, []byte("B"))
	if err != nil || seq != 1 {
		t.Fatalf("seq %d, %v", seq, err)
	}
	if req := recvT(t, b); string(req.Payload) != "B" {
		t.Fatalf("B not delivered for execution: %v", req)
	}
	raw, _ := EncodeFrame(Frame{Seq: 1, Type: TypeDispense, Payload: []byte("B")})
	a.writeMu.Lock()
	rawA.Write(raw)
	a.writeMu.Unlock()
	// Wait until b has taken the retransmission for a duplicate (a slow
	// machine may take a while); a cached reply would be written right
	// after that count, so then give it time to reach a.
	deadline := time.Now().Add(10 * time.Second)
	for b.Stats.Duplicates.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // the peer's counter; no channel says it
	}
	select {
	case f := <-a.Recv():
		t.Fatalf("retransmission of B answered with %q before B was executed", f.Payload)
	case <-time.After(300 * time.Millisecond):
	}
	if got := b.Stats.Duplicates.Load(); got != 1 {
		t.Fatalf("receiver counted %d duplicates, want 1", got)
	}
	if _, err := b.Send(ctx, TypeDispense|ReplyBit, 1, []byte("reply-for-B")); err != nil {
		t.Fatal(err)
	}
	if rep := recvT(t, a); string(rep.Payload) != "reply-for-B" {
		t.Fatalf("reply %q, want reply-for-B", rep.Payload)
	}
}
