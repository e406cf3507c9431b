package simatm_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/egate-bank/egate/atm"
	"github.com/egate-bank/egate/internal/testenv"
	simatm "github.com/egate-bank/egate/simulators/atm"
)

type rig struct {
	run *simatm.Running
	drv *atm.Driver
	cfg simatm.Config
}

func newRig(t *testing.T, mod func(*simatm.Config)) *rig {
	t.Helper()
	return newRigDrv(t, mod, nil)
}

// newRigDrv is newRig with changes to the driver's config (dmod may be nil).
func newRigDrv(t *testing.T, mod func(*simatm.Config), dmod func(*atm.DriverConfig)) *rig {
	t.Helper()
	cfg := simatm.Config{
		Cassettes:     simatm.DefaultCassettes(),
		JournalPath:   filepath.Join(t.TempDir(), "journal"),
		Faults:        simatm.NewFaults(1),
		TakeTimeout:   time.Hour,
		PINKey:        pinKey,
		PINKeyID:      7,
		ProgressEvery: 100 * time.Millisecond,
		Link:          atm.LinkConfig{AckTimeout: 60 * time.Millisecond},
	}
	if mod != nil {
		mod(&cfg)
	}
	run, err := simatm.StartPTY(context.Background(), cfg)
	if err != nil {
		testenv.Missing(t, "pseudo-terminals (/dev/ptmx, devpts)", "mount devpts; "+err.Error())
	}
	// T_reply is the protocol's default: rendering a QR code to PNG or
	// answering HELLO twice took more than 400 ms under load, and a test
	// that is not about T_reply then failed with ErrNoReply. Tests about it
	// (TestRetractLostReply, TestDeviceFaults) set their own.
	dcfg := atm.DriverConfig{
		Open:         atm.SerialOpener(run.TTYName, 115200),
		Link:         cfg.Link,
		ReplyTimeout: 3 * time.Second,
		PollInterval: 20 * time.Millisecond,
	}
	if dmod != nil {
		dmod(&dcfg)
	}
	drv := atm.NewDriver(dcfg)
	t.Cleanup(func() {
		drv.Close()
		run.Stop()
	})
	return &rig{run: run, drv: drv, cfg: cfg}
}

var pinKey = []byte("0123456789abcdef")

// settle waits until the ATM has read every byte the host wrote (the ACK
// of the last reply included), so that a fault set next is spent on the
// frames the test sends next, not on a retransmission of the last reply
// that a loaded machine delayed past the ATM's T_ack. Bounded: it only
// narrows that race.
func (r *rig) settle() {
	deadline := time.Now().Add(5 * time.Second)
	for r.run.Sim.Link().Stats.BytesIn.Load() < r.drv.LineStats().BytesOut && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond) // the links' counters; no channel says it
	}
}

// accepted counts the data frames the host's links took in as new (not
// retransmissions it already had), summed over reconnects.
func accepted(d *atm.Driver) int64 {
	s := d.LineStats()
	return s.FramesIn - s.Duplicates
}

// nextEvent returns the driver's next event, failing the test if none comes
// within d.
func nextEvent(t *testing.T, drv *atm.Driver, d time.Duration) atm.Event {
	t.Helper()
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	select {
	case ev, ok := <-drv.Events():
		if !ok {
			t.Fatal("events channel closed")
		}
		return ev
	case <-timeout.C:
		t.Fatalf("no event within %v", d)
		return atm.Event{}
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestDispenseHappyPath(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	ctx := ctxT(t, 10*time.Second)
	st, err := r.drv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Cassettes) != 4 || st.Cassettes[0].Denom != 10000 || st.Cassettes[0].Count != 500 {
		t.Fatalf("status %+v", st)
	}
	id := atm.NewTxnID()
	rec, err := r.drv.Dispense(ctx, id, 35000, []atm.Notes{{Cassette: 1, Count: 3}, {Cassette: 2, Count: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if p, pr, rj := rec.Totals(); rec.State != atm.StatePresented || p != 4 || pr != 4 || rj != 0 {
		t.Fatalf("record %+v", rec)
	}
	ev := nextEvent(t, r.drv, 5*time.Second)
	if ev.Kind != atm.EventPresented && ev.Kind != atm.EventTaken {
		t.Fatalf("event %+v", ev)
	}
	again, err := r.drv.Dispense(ctx, id, 35000, []atm.Notes{{Cassette: 1, Count: 3}, {Cassette: 2, Count: 1}})
	if err != nil || again.State.Final() != true {
		t.Fatalf("retry: %+v %v", again, err)
	}
	tot := r.run.Sim.Totals()
	if tot.Cassettes[0].Count != 497 || tot.Cassettes[1].Count != 499 {
		t.Fatalf("cassettes after one dispense and its retry: %+v", tot.Cassettes)
	}
	_ = errors.Is
}
