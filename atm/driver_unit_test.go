package atm

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// fakeATM answers HELLO itself and every other request through answer, on
// the ATM end of a net.Pipe. The reference ATM is simulators/atm; this fake
// exists to send what a correct ATM never sends.
func fakeATM(t *testing.T, answer func(f Frame) (MsgType, []byte)) *Driver {
	d, _ := fakeATMLink(t, answer)
	return d
}

func fakeATMLink(t *testing.T, answer func(f Frame) (MsgType, []byte)) (*Driver, *Link) {
	t.Helper()
	hostEnd, atmEnd := net.Pipe()
	// A pipe loses nothing: T_ack only bounds a hang here. A short one would
	// let a starved goroutine on a loaded machine run a send out of
	// retries (ErrNoAck), which these tests do not exercise.
	l := NewLink(atmEnd, LinkConfig{AckTimeout: time.Second})
	go func() {
		for {
			select {
			case <-l.Done():
				return
			case f := <-l.Recv():
				if f.Type == TypeHello {
					l.SendStart(context.Background(), TypeHello|ReplyBit, 0, HelloReply{Version: 1, MaxPayload: 2048}.Marshal())
					continue
				}
				typ, p := answer(f)
				l.Send(context.Background(), typ, f.Seq, p)
			}
		}
	}()
	opened := false
	d := NewDriver(DriverConfig{
		ReplyTimeout: 2 * time.Second, PollInterval: 10 * time.Millisecond,
		Link: LinkConfig{AckTimeout: time.Second},
		Open: func(context.Context) (io.ReadWriteCloser, error) {
			if opened {
				return nil, errors.New("fake ATM: one line only")
			}
			opened = true
			return hostEnd, nil
		},
	})
	t.Cleanup(func() { d.Close(); l.Close() })
	return d, l
}

// A DISPENSE reply that names another transaction (a stale reply from an
// earlier session) is never taken as the outcome: the driver asks TXN_STATUS
// for the right id, and if the ATM never names it the result is uncertain.
func TestDriverRefusesReplyForWrongTxn(t *testing.T) {
	t.Parallel()
	idA, idB := NewTxnID(), NewTxnID()
	notes := []Notes{{Cassette: 1, Count: 2}}
	recA := TxnRecord{ID: idA, State: StatePresented, Amount: 20000,
		Cassettes: []CassetteCount{{Cassette: 1, Requested: 2, Picked: 2, Presented: 2}}}
	recB := TxnRecord{ID: idB, State: StatePresented, Amount: 10000,
		Cassettes: []CassetteCount{{Cassette: 1, Requested: 2, Picked: 2, Presented: 2}}}
	for _, tc := range []struct {
		name   string
		status TxnRecord // what TXN_STATUS for B answers
		want   *TxnRecord
		// how long the caller waits: the outcome is uncertain when it ends
		// with the ATM never naming B; a resolved outcome returns at once,
		// so its bound only catches a hang.
		wait time.Duration
	}{
		{"status states B", recB, &recB, 20 * time.Second},
		{"status names A too", recA, nil, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var asked atomic.Int64 // TXN_STATUS requests the fake ATM answered
			d := fakeATM(t, func(f Frame) (MsgType, []byte) {
				switch f.Type {
				case TypeDispense:
					return TypeDispense | ReplyBit, TxnReply{Code: OK, Record: recA}.Marshal()
				default:
					asked.Add(1)
					return TypeTxnStatus | ReplyBit, TxnReply{Code: OK, Record: tc.status}.Marshal()
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), tc.wait)
			defer cancel()
			rec, err := d.Dispense(ctx, idB, 10000, notes)
			if _, ok := d.Record(idA); ok {
				t.Fatalf("driver recorded txn A from a reply to B")
			}
			if tc.want == nil {
				var ue *UncertainError
				if !errors.As(err, &ue) || ue.ID != idB {
					t.Fatalf("Dispense = %+v, %v; want an UncertainError for B", rec, err)
				}
				// The refusal was exercised: the DISPENSE went out and the
				// driver asked TXN_STATUS, not merely ran out of time.
				if asked.Load() == 0 {
					t.Fatalf("uncertain without asking TXN_STATUS: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rec.ID != idB || rec.State != tc.want.State || rec.Amount != tc.want.Amount {
				t.Fatalf("Dispense = %+v, want %+v", rec, *tc.want)
			}
			if d.Resolved.Load() != 1 {
				t.Fatalf("resolved %d times, want 1", d.Resolved.Load())
			}
		})
	}
}

// Close closes the Events channel, also while the ATM floods events: no
// send on the closed channel (the race detector and the runtime would say),
// and a reader ranging over Events ends.
func TestDriverCloseClosesEvents(t *testing.T) {
	t.Parallel()
	d, l := fakeATMLink(t, func(f Frame) (MsgType, []byte) {
		return f.Type | ReplyBit, Status{}.Marshal()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := d.Status(ctx); err != nil {
		t.Fatal(err)
	}
	flooding := make(chan struct{})
	go func() {
		defer close(flooding)
		for no := uint32(1); ; no++ {
			m := EventMsg{No: no, Kind: EventPresented, Record: TxnRecord{ID: NewTxnID(), State: StatePresented}}
			if _, err := l.Send(ctx, TypeEvent, 0, m.Marshal()); err != nil {
				return // the driver closed the line
			}
		}
	}()
	ranged := make(chan int)
	seen := make(chan struct{}) // closed at the 20th event
	go func() {
		n := 0
		for range d.Events() {
			n++
			if n == 20 {
				close(seen)
			}
		}
		ranged <- n
	}()
	// Let some events through before closing: wait until the reader has
	// had 20 of them. (Waiting on the link's frame counter instead raced
	// the dispatcher on a loaded machine: frames counted but not yet
	// handed to Events when Close came, and the reader ranged over none.)
	select {
	case <-seen:
	case <-flooding:
		t.Fatal("the ATM stopped sending events before Close")
	case <-time.After(20 * time.Second):
		t.Fatal("fewer than 20 events reached Events within 20 s")
	}
	closed := make(chan error)
	go func() { closed <- d.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10 s")
	}
	select {
	case n := <-ranged:
		if n == 0 {
			t.Fatal("no event was delivered before Close")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Events was not closed: a reader ranging over it never ends")
	}
	l.Close()
	select {
	case <-flooding:
	case <-time.After(10 * time.Second):
		t.Fatal("the ATM side never noticed the line closed")
	}
	if _, err := d.Status(ctx); !errors.Is(err, ErrDriverClosed) {
		t.Fatalf("Status after Close: %v", err)
	}
}

// A REJECT for a dispense stopped mid-pick whose first request never got an
// answer: the driver asks TXN_STATUS, sees PICKING, and sends the REJECT
// again (it is idempotent); the second one ends the dispense, and the
// driver returns its record, FAILED with CANCELLED and every picked note in
// the reject bin.
func TestDriverResendsRejectWhilePicking(t *testing.T) {
	t.Parallel()
	id := NewTxnID()
	picking := TxnRecord{ID: id, State: StatePicking, Amount: 20000,
		Cassettes: []CassetteCount{{Cassette: 1, Requested: 2, Picked: 1}}}
	failed := TxnRecord{ID: id, State: StateFailed, Error: CodeCancelled, Amount: 20000,
		Cassettes: []CassetteCount{{Cassette: 1, Requested: 2, Picked: 1, Rejected: 1}}}
	var rejects, statuses atomic.Int64
	d := fakeATM(t, func(f Frame) (MsgType, []byte) {
		switch f.Type {
		case TypeReject:
			if rejects.Add(1) == 1 {
				// The first REJECT is lost on its way: the ATM answers
				// nothing the driver can take for its reply.
				return TypeCancelQR | ReplyBit, Result{Code: OK}.Marshal()
			}
			return TypeReject | ReplyBit, TxnReply{Code: OK, Record: failed}.Marshal()
		default:
			statuses.Add(1)
			rec := picking
			if rejects.Load() > 1 {
				rec = failed
			}
			return TypeTxnStatus | ReplyBit, TxnReply{Code: OK, Record: rec}.Marshal()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rec, err := d.Reject(ctx, id)
	if err != nil {
		t.Fatalf("Reject = %+v, %v", rec, err)
	}
	if rec.State != StateFailed || rec.Error != CodeCancelled || len(rec.Cassettes) != 1 || rec.Cassettes[0] != failed.Cassettes[0] {
		t.Fatalf("Reject returned %+v, want %+v", rec, failed)
	}
	if rejects.Load() != 2 || statuses.Load() == 0 || d.Resolved.Load() != 1 {
		t.Fatalf("%d REJECTs, %d TXN_STATUS, %d resolved: want the REJECT sent again after asking", rejects.Load(), statuses.Load(), d.Resolved.Load())
	}
}
