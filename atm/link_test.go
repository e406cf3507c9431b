package atm_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/egate-bank/egate/atm"
	"github.com/egate-bank/egate/internal/testenv"
	simatm "github.com/egate-bank/egate/simulators/atm"
)

// hostPort remembers the ports the driver opened, so a test can close the
// line under it.
type hostPort struct {
	mu    sync.Mutex
	ports []io.ReadWriteCloser
}

func (h *hostPort) opener(name string) atm.Opener {
	return func(ctx context.Context) (io.ReadWriteCloser, error) {
		p, err := atm.OpenSerial(name, 115200)
		if err == nil {
			h.mu.Lock()
			h.ports = append(h.ports, p)
			h.mu.Unlock()
		}
		return p, err
	}
}

func (h *hostPort) closeLast() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ports[len(h.ports)-1].Close()
}

type lineRig struct {
	run  *simatm.Running
	drv  *atm.Driver
	host *hostPort
}

func newLineRig(t *testing.T, mod func(*simatm.Config)) *lineRig {
	t.Helper()
	cfg := simatm.Config{
		Cassettes:     simatm.DefaultCassettes(),
		JournalPath:   filepath.Join(t.TempDir(), "journal"),
		Faults:        simatm.NewFaults(42),
		TakeTimeout:   time.Hour,
		ProgressEvery: 100 * time.Millisecond,
		Link:          atm.LinkConfig{AckTimeout: 50 * time.Millisecond},
	}
	if mod != nil {
		mod(&cfg)
	}
	run, err := simatm.StartPTY(context.Background(), cfg)
	if err != nil {
		testenv.Missing(t, "pseudo-terminals (/dev/ptmx, devpts)", "mount devpts; "+err.Error())
	}
	h := &hostPort{}
	drv := atm.NewDriver(atm.DriverConfig{
		Open: h.opener(run.TTYName), Link: cfg.Link,
		ReplyTimeout: 400 * time.Millisecond, PollInterval: 20 * time.Millisecond,
	})
	t.Cleanup(func() { drv.Close(); run.Stop() })
	return &lineRig{run: run, drv: drv, host: h}
}

// status asks for the ATM's status, again up to three times when the line
// ran out of time (no ACK, no reply): these rigs keep the protocol's timers
// short (50 ms ACK, 400 ms reply) so that faults show quickly, and a loaded
// machine can pause a process for longer than that. A STATUS has no side
// effect; any other error, or a fourth timeout, is returned.
func status(ctx context.Context, d *atm.Driver) (atm.Status, error) {
	st, err := d.Status(ctx)
	for i := 0; err != nil && (errors.Is(err, atm.ErrNoAck) || errors.Is(err, atm.ErrNoReply)) && i < 3; i++ {
		st, err = d.Status(ctx)
	}
	return st, err
}

func setFaults(t *testing.T, f *simatm.Faults, specs ...string) {
	t.Helper()
	for _, s := range specs {
		if err := f.Set(s); err != nil {
			t.Fatal(err)
		}
	}
}

// settle waits until the ATM has read every byte the host wrote, so that a
// fault set next hits the frames the test sends next and not one still in
// flight: on a loaded machine the ATM may read the host's ACK of the last
// reply only after the test has moved on, and a NAK storm or a dropped
// reply would then be spent on it. Bounded: it only narrows the race.
func settle(r *lineRig, simLink *atm.Link) {
	deadline := time.Now().Add(5 * time.Second)
	for simLink.Stats.BytesIn.Load() < r.drv.LineStats().BytesOut && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond) // the links' counters; no channel says it
	}
}

// TestLineFaults runs a status query and a dispense through each injected
// line fault and checks that the fault happened, that the answer is right,
// and that the notes left the cassette exactly once.
func TestLineFaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		faults []string
		// faults set after the status query, for the dispense
		dispenseFaults []string
		// evidence that the fault really hit the line
		check func(t *testing.T, host, sim atm.LinkCounts, drv *atm.Driver)
		rig   func(*simatm.Config) // changes to the simulator's config, or nil
	}{
		{"flipped byte from ATM", []string{"flip-out=2"}, nil, func(t *testing.T, h, s atm.LinkCounts, _ *atm.Driver) {
			if h.NAKsSent == 0 || s.Retransmits == 0 {
				t.Errorf("host NAKs %d, ATM retransmits %d: fault not seen", h.NAKsSent, s.Retransmits)
			}
		}, nil},
		{"flipped byte to ATM", []string{"flip-in=2"}, nil, func(t *testing.T, h, s atm.LinkCounts, _ *atm.Driver) {
			if s.NAKsSent == 0 || h.Retransmits == 0 {
				t.Errorf("ATM NAKs %d, host retransmits %d", s.NAKsSent, h.Retransmits)
			}
		}, nil},
		{"garbage between frames", []string{"garbage-out=3"}, nil, func(t *testing.T, h, _ atm.LinkCounts, _ *atm.Driver) {
			if h.Garbage == 0 {
				t.Errorf("no garbage counted")
			}
		}, nil},
		{"truncated frame", []string{"truncate-out=2"}, nil, func(t *testing.T, h, s atm.LinkCounts, _ *atm.Driver) {
			if s.Retransmits == 0 || h.Garbage == 0 {
				t.Errorf("ATM retransmits %d, host garbage %d", s.Retransmits, h.Garbage)
			}
		}, nil},
		// A reply (PROGRESS too) implies the ACK of its request: with
		// PROGRESS every 100 ms a host whose 50 ms T_ack fired late on a
		// loaded machine took the PROGRESS for the lost ACK and never
		// retransmitted. No PROGRESS here: the first reply comes after the
		// 3 × 100 ms of picking, far past T_ack (and within T_reply).
		{"lost ACK", nil, []string{"drop-ack=2", "pick-delay=100ms"}, func(t *testing.T, h, s atm.LinkCounts, _ *atm.Driver) {
			if h.Retransmits == 0 || s.Duplicates == 0 {
				t.Errorf("host retransmits %d, ATM duplicates %d", h.Retransmits, s.Duplicates)
			}
		}, noProgress},
		{"lost response, retransmitted", []string{"drop-reply=1"}, nil, func(t *testing.T, _, s atm.LinkCounts, _ *atm.Driver) {
			if s.Retransmits == 0 {
				t.Errorf("ATM did not retransmit its reply")
			}
		}, nil},
		// PROGRESS frames are replies too (REF set) and the fault drops
		// them: a dispense slowed past T_progress by a loaded machine spent
		// the drops on PROGRESS and the DISPENSE reply got through.
		{"lost response, every retransmission", nil, []string{"drop-reply=6"}, func(t *testing.T, _, _ atm.LinkCounts, d *atm.Driver) {
			if d.Resolved.Load() == 0 {
				t.Errorf("driver never had to ask the ATM")
			}
		}, noProgress},
		// The storm corrupts the ATM's next 4 reads: every frame in them
		// fails its CRC. The ATM NAKs once per read that had a bad frame,
		// and one NAK may answer several: reads coalesce retransmissions,
		// and a stray STX in a corrupted frame makes the decoder wait out
		// T_interbyte while more of them arrive. Under load 4 reads gave
		// 2 NAKs. The ATM's CRC failures count the storm; the NAKs it must
		// send and the host must see (summed over reconnects) are >= 1,
		// and the host cannot see more than the ATM sent.
		{"NAK storm", []string{"nak-storm=4"}, nil, func(t *testing.T, h, s atm.LinkCounts, _ *atm.Driver) {
			if s.BadCRC < 3 || s.NAKsSent == 0 || h.NAKsReceived == 0 {
				t.Errorf("ATM CRC failures %d, ATM NAKs %d, host saw %d", s.BadCRC, s.NAKsSent, h.NAKsReceived)
			}
			if h.NAKsReceived > s.NAKsSent {
				t.Errorf("host counted %d NAKs, the ATM sent %d", h.NAKsReceived, s.NAKsSent)
			}
		}, nil},
		{"random line noise", []string{"line-noise=0.5"}, nil, func(t *testing.T, h, s atm.LinkCounts, _ *atm.Driver) {
			if h.NAKsSent+h.Garbage+s.Retransmits == 0 {
				t.Errorf("no sign of line noise")
			}
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newLineRig(t, tc.rig)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := status(ctx, r.drv); err != nil {
				t.Fatalf("status before faults: %v", err)
			}
			simLink := r.run.Sim.Link()
			settle(r, simLink)
			setFaults(t, r.run.Sim.Faults(), tc.faults...)
			st, err := status(ctx, r.drv)
			if err != nil || len(st.Cassettes) != 4 {
				t.Fatalf("status through fault: %+v, %v", st, err)
			}
			settle(r, simLink)
			setFaults(t, r.run.Sim.Faults(), tc.dispenseFaults...)
			id := atm.NewTxnID()
			rec, err := r.drv.Dispense(ctx, id, 17000, []atm.Notes{{Cassette: 1, Count: 1}, {Cassette: 2, Count: 1}, {Cassette: 3, Count: 1}})
			if err != nil {
				t.Fatalf("dispense: %v", err)
			}
			if _, pr, _ := rec.Totals(); (rec.State != atm.StatePresented && rec.State != atm.StateTaken) || pr != 3 {
				t.Fatalf("record %+v", rec)
			}
			tot := r.run.Sim.Totals()
			if tot.Cassettes[0].Count != 499 || tot.Cassettes[1].Count != 499 || tot.Cassettes[2].Count != 499 {
				t.Fatalf("cassettes %+v: not exactly one dispense", tot.Cassettes)
			}
			// LineStats sums every link the driver opened: a command that
			// ran out of retries drops the link, and the fault's evidence
			// stays in the dropped one's counters.
			tc.check(t, r.drv.LineStats(), simLink.Stats.Snapshot(), r.drv)
		})
	}
}

func noProgress(c *simatm.Config) { c.ProgressEvery = time.Hour }

// TestNAKStormPastRetries: a storm longer than N_retry makes the command fail
// with ErrNoAck, nothing is executed twice, and the line recovers.
func TestNAKStormPastRetries(t *testing.T) {
	t.Parallel()
	r := newLineRig(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := r.drv.Status(ctx); err != nil {
		t.Fatal(err)
	}
	old := r.drv.Link()
	simLink := r.run.Sim.Link()
	settle(r, simLink)
	setFaults(t, r.run.Sim.Faults(), "nak-storm=100000") // every read of the ATM is corrupted
	_, err := r.drv.Status(ctx)
	if !errors.Is(err, atm.ErrNoAck) {
		t.Fatalf("status in a NAK storm: err = %v, want ErrNoAck", err)
	}
	// Six transmissions, each failing its CRC at the ATM; one NAK may
	// answer several of them (see TestLineFaults/NAK_storm), so the CRC
	// failures count the storm.
	if n, naks := simLink.Stats.BadCRC.Load(), simLink.Stats.NAKsSent.Load(); n < 3 || naks == 0 {
		t.Fatalf("ATM saw %d bad frames and sent %d NAKs: no storm", n, naks)
	}
	setFaults(t, r.run.Sim.Faults(), "nak-storm=0") // the storm ends
	st, err := status(ctx, r.drv)
	if err != nil || len(st.Cassettes) != 4 {
		t.Fatalf("after the storm: %+v %v", st, err)
	}
	// The failed command dropped the link and the next one opened a new
	// one. A NAK of the storm still on its way may reach the new link, so
	// the old link's NAKs are what the line statistics must still hold
	// beyond the new link's own.
	cur := r.drv.Link()
	if cur == old {
		t.Fatal("the link was not replaced after ErrNoAck")
	}
	onNew := cur.Stats.NAKsReceived.Load()
	if n := r.drv.LineStats().NAKsReceived; n-onNew < 1 {
		t.Errorf("line statistics show %d NAKs received, the new link %d: the dropped link's storm is lost", n, onNew)
	}
}

// TestLineClosedMidDispense closes the host's port while the ATM is picking
// notes: the driver reopens the line, asks the ATM, and reports the one
// dispense that happened.
func TestLineClosedMidDispense(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		faults []string
		host   bool // close the host's port from the crash hook
	}{
		{"host port closed", []string{"crash-after-pick=2", "pick-delay=50ms"}, true},
		{"line dead for a while", []string{"line-down-mid=1500ms", "pick-delay=50ms"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var r *lineRig
			r = newLineRig(t, func(c *simatm.Config) {
				c.Crash = func() { r.host.closeLast() }
			})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := status(ctx, r.drv); err != nil {
				t.Fatal(err)
			}
			setFaults(t, r.run.Sim.Faults(), tc.faults...)
			id := atm.NewTxnID()
			rec, err := r.drv.Dispense(ctx, id, 50000, []atm.Notes{{Cassette: 1, Count: 5}})
			if err != nil {
				t.Fatalf("dispense: %v", err)
			}
			if _, pr, _ := rec.Totals(); pr != 5 {
				t.Fatalf("record %+v", rec)
			}
			if r.drv.Resolved.Load() == 0 {
				t.Fatalf("the driver never had to resolve the outcome: fault missed")
			}
			if tc.host && len(r.host.ports) < 2 {
				t.Fatalf("driver did not reopen the port")
			}
			if got := r.run.Sim.Totals().Cassettes[0].Count; got != 495 {
				t.Fatalf("cassette 1 holds %d, want 495", got)
			}
		})
	}
}

// TestBadInput sends what a broken host might: an unknown message type, a
// dispense the cassettes cannot make up, and a second dispense while cash
// sits at the exit. Each gets its error and nothing moves.
func TestBadInput(t *testing.T) {
	t.Parallel()
	r := newLineRig(t, func(c *simatm.Config) {
		f := simatm.NewFaults(1)
		f.CustomerTakes = false
		c.Faults = f
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	notes1 := []atm.Notes{{Cassette: 1, Count: 1}}
	for _, tc := range []struct {
		name   string
		amount int64
		notes  []atm.Notes
		want   atm.Code
	}{
		{"amount not made by the notes", 15000, notes1, atm.CodeCannotMakeAmount},
		{"more notes than the cassette holds", 10000 * 600, []atm.Notes{{Cassette: 1, Count: 600}}, atm.CodeCannotMakeAmount},
		{"no such cassette", 10000, []atm.Notes{{Cassette: 9, Count: 1}}, atm.CodeCassetteMissing},
		{"empty note list", 0, nil, atm.CodeBadMessage},
		{"cassette named twice", 20000, []atm.Notes{{Cassette: 1, Count: 1}, {Cassette: 1, Count: 1}}, atm.CodeBadMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := atm.NewTxnID()
			_, err := r.drv.Dispense(ctx, id, tc.amount, tc.notes)
			var de *atm.DeviceError
			if !errors.As(err, &de) || de.Code != tc.want || de.Record != nil {
				t.Fatalf("err = %v, want %s with nothing moved", err, tc.want)
			}
			if rec, err := r.drv.TxnStatus(ctx, id); err != nil || rec.State != atm.StateNone {
				t.Fatalf("ATM kept a record of a refused dispense: %+v %v", rec, err)
			}
		})
	}
	t.Run("second dispense while cash at exit", func(t *testing.T) {
		if _, err := r.drv.Dispense(ctx, atm.NewTxnID(), 10000, notes1); err != nil {
			t.Fatal(err)
		}
		_, err := r.drv.Dispense(ctx, atm.NewTxnID(), 10000, notes1)
		if !errors.Is(err, atm.ErrCode(atm.CodeCashAtExit)) {
			t.Fatalf("err = %v, want CASH_AT_EXIT", err)
		}
	})
	t.Run("status shows the cash at exit", func(t *testing.T) {
		st, _ := r.drv.Status(ctx)
		if st.AtExit != 1 {
			t.Fatalf("at exit %d", st.AtExit)
		}
	})
	t.Run("unknown message type", func(t *testing.T) {
		p, err := simatm.OpenPTY()
		if err != nil {
			t.Fatal(err)
		}
		run, err := simatm.Start(ctx, simatm.Config{Cassettes: simatm.DefaultCassettes(), JournalPath: filepath.Join(t.TempDir(), "j")}, p.Master)
		if err != nil {
			t.Fatal(err)
		}
		defer run.Stop()
		port, err := atm.OpenSerial(p.TTYName, 115200)
		if err != nil {
			t.Fatal(err)
		}
		l := atm.NewLink(port, atm.LinkConfig{})
		defer l.Close()
		if _, err := l.SendStart(ctx, atm.TypeHello, 0, atm.Hello{VersionMin: 1, VersionMax: 1}.Marshal()); err != nil {
			t.Fatal(err)
		}
		seq, err := l.Send(ctx, 0x55, 0, []byte{1, 2, 3})
		if err != nil {
			t.Fatal(err)
		}
		timeout := time.NewTimer(10 * time.Second) // bounds a hang only
		defer timeout.Stop()
		for {
			select {
			case f := <-l.Recv():
				if f.Ref != seq {
					continue // HELLO's reply
				}
				if f.Type != atm.TypeError {
					t.Fatalf("unknown type 0x55 answered with %s", f.Type)
				}
				m, _ := atm.ParseErrorMsg(f.Payload)
				if m.Code != atm.CodeUnknownType {
					t.Fatalf("error %v, want UNKNOWN_TYPE", m.Code)
				}
				return
			case <-l.Done():
				t.Fatalf("line died waiting for the ERROR: %v", l.Err())
			case <-timeout.C:
				t.Fatal("no ERROR UNKNOWN_TYPE for an unknown message type within 10 s")
			}
		}
	})
}

// TestDriverConflictAndClose: a known id with a different dispense is a
// conflict, nothing moves; after Close every call fails.
func TestDriverConflictAndClose(t *testing.T) {
	t.Parallel()
	r := newLineRig(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := atm.NewTxnID()
	if _, err := r.drv.Dispense(ctx, id, 10000, []atm.Notes{{Cassette: 1, Count: 1}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		amount int64
		notes  []atm.Notes
	}{
		{"different amount", 20000, []atm.Notes{{Cassette: 1, Count: 2}}},
		{"different cassette", 10000, []atm.Notes{{Cassette: 2, Count: 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := r.drv.Dispense(ctx, id, tc.amount, tc.notes); !errors.Is(err, atm.ErrCode(atm.CodeTxnConflict)) {
				t.Fatalf("err = %v, want TXN_CONFLICT", err)
			}
		})
	}
	if got := r.run.Sim.Totals().Cassettes[0].Count; got != 499 {
		t.Fatalf("cassette 1 holds %d", got)
	}
	r.drv.Close()
	if _, err := r.drv.Status(ctx); !errors.Is(err, atm.ErrDriverClosed) {
		t.Fatalf("status after close: %v", err)
	}
	if _, err := r.drv.Dispense(ctx, atm.NewTxnID(), 10000, []atm.Notes{{Cassette: 1, Count: 1}}); !errors.Is(err, atm.ErrDriverClosed) {
		t.Fatalf("dispense after close: %v", err)
	}
}
