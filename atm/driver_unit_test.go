package atm

import (
	"context"
	"errors"
	"io"
	"net"
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
	l := NewLink(atmEnd, LinkConfig{AckTimeout: 30 * time.Millisecond})
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
		ReplyTimeout: 500 * time.Millisecond, PollInterval: 10 * time.Millisecond,
		Link: LinkConfig{AckTimeout: 30 * time.Millisecond},
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
	}{
		{"status states B", recB, &recB},
		{"status names A too", recA, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := fakeATM(t, func(f Frame) (MsgType, []byte) {
				switch f.Type {
				case TypeDispense:
					return TypeDispense | ReplyBit, TxnReply{Code: OK, Record: recA}.Marshal()
				default:
					return TypeTxnStatus | ReplyBit, TxnReply{Code: OK, Record: tc.status}.Marshal()
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
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
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
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
	go func() {
		n := 0
		for range d.Events() {
			n++
		}
		ranged <- n
	}()
	// Let some events through before closing.
	for d.Link() != nil && d.Link().Stats.FramesIn.Load() < 20 {
		time.Sleep(time.Millisecond) // the link's counter; no channel says it
	}
	closed := make(chan error)
	go func() { closed <- d.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	select {
	case n := <-ranged:
		if n == 0 {
			t.Fatal("no event was delivered before Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Events was not closed: a reader ranging over it never ends")
	}
	l.Close()
	select {
	case <-flooding:
	case <-time.After(5 * time.Second):
		t.Fatal("the ATM side never noticed the line closed")
	}
	if _, err := d.Status(ctx); !errors.Is(err, ErrDriverClosed) {
		t.Fatalf("Status after Close: %v", err)
	}
}
