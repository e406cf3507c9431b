package simatm_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/egate-bank/egate/atm"
	simatm "github.com/egate-bank/egate/simulators/atm"
)

// TestRetractLostReply retracts presented cash while the RETRACT reply is
// lost or the line dies mid-retract. The driver must then say exactly what
// the ATM did (record and the code the ATM gives that outcome), or that the
// outcome is uncertain; it must never report a state the ATM did not reach.
func TestRetractLostReply(t *testing.T) {
	t.Parallel()
	two := []atm.Notes{{Cassette: 2, Count: 2}}
	for _, tc := range []struct {
		name     string
		faults   []string
		retract  time.Duration // mechanical retract time
		progress time.Duration // PROGRESS interval
	}{
		// No PROGRESS and a retract longer than T_reply: the driver asks
		// TXN_STATUS while the retract runs (the ATM still says PRESENTED).
		{"reply late, status asked mid-retract", []string{"drop-reply=1"}, 1200 * time.Millisecond, time.Hour},
		{"line drops mid-retract", []string{"line-down-mid=700ms"}, 1500 * time.Millisecond, 100 * time.Millisecond},
		{"reply and its retransmissions lost", []string{"drop-reply=6"}, 100 * time.Millisecond, time.Hour},
		{"taken during retract, reply lost", []string{"take-during-retract=1", "drop-reply=6"}, 100 * time.Millisecond, time.Hour},
		{"count unknown, reply lost", []string{"retract-unknown=1", "drop-reply=6"}, 100 * time.Millisecond, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// T_reply 400 ms: shorter than the retract (no PROGRESS) and
			// than the line's dead time, so the driver must ask TXN_STATUS.
			r := newRigDrv(t, func(c *simatm.Config) {
				noTake(c)
				c.RetractTime = tc.retract
				c.ProgressEvery = tc.progress
			}, func(d *atm.DriverConfig) { d.ReplyTimeout = 400 * time.Millisecond })
			ctx := ctxT(t, 15*time.Second)
			id := atm.NewTxnID()
			if _, err := r.drv.Dispense(ctx, id, 10000, two); err != nil {
				t.Fatal(err)
			}
			// A retransmission of the DISPENSE reply still to come would
			// spend a drop-reply meant for the RETRACT reply.
			r.settle()
			for _, f := range tc.faults {
				if err := r.run.Sim.Faults().Set(f); err != nil {
					t.Fatal(err)
				}
			}
			rec, err := r.drv.Retract(ctx, id)
			var ue *atm.UncertainError
			if errors.As(err, &ue) {
				if ue.ID != id {
					t.Fatalf("uncertain about %s, asked about %s", ue.ID, id)
				}
				t.Logf("outcome uncertain: %v", err)
				return
			}
			truth, ok := r.run.Sim.Record(id)
			if !ok {
				t.Fatal("the ATM has no record")
			}
			if truth.State != atm.StateTaken && truth.State != atm.StateRetracted {
				t.Fatalf("driver answered (%s, %v) before the retract ended (ATM: %s)", rec.State, err, truth.State)
			}
			wantCode := atm.OK
			switch {
			case truth.State == atm.StateTaken:
				wantCode = atm.CodeNotPresented
			case truth.Retracted == atm.RetractUnknown:
				wantCode = atm.CodeRetractCountUnknown
			}
			gotCode := atm.OK
			var de *atm.DeviceError
			if errors.As(err, &de) {
				gotCode = de.Code
			} else if err != nil {
				t.Fatalf("retract: %v", err)
			}
			if rec.State != truth.State || rec.Retracted != truth.Retracted || gotCode != wantCode {
				t.Fatalf("driver says %s retracted %d %s; ATM: %s retracted %d %s",
					rec.State, rec.Retracted, gotCode, truth.State, truth.Retracted, wantCode)
			}
			if r.drv.Resolved.Load() == 0 {
				t.Fatalf("the reply was lost but the driver never asked TXN_STATUS")
			}
		})
	}
}

// TestRejectLostReply: a REJECT whose reply and every retransmission are
// lost is answered from TXN_STATUS with what the ATM's own reply said, and
// equals what a second REJECT (which the ATM answers alike: REJECT is
// idempotent on a final transaction) returns.
func TestRejectLostReply(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		dispense bool // an accepted transaction, or an id the ATM never saw
		wantCode atm.Code
	}{
		{"id never accepted", false, atm.CodeUnknownTxn},
		{"cash at the exit", true, atm.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRigDrv(t, noTake, func(d *atm.DriverConfig) { d.ReplyTimeout = 400 * time.Millisecond })
			ctx := ctxT(t, 15*time.Second)
			id := atm.NewTxnID()
			if tc.dispense {
				if _, err := r.drv.Dispense(ctx, id, 10000, []atm.Notes{{Cassette: 2, Count: 2}}); err != nil {
					t.Fatal(err)
				}
			} else if _, err := r.drv.Status(ctx); err != nil {
				t.Fatal(err)
			}
			before := r.run.Sim.Totals()
			r.settle()
			if err := r.run.Sim.Faults().Set("drop-reply=6"); err != nil {
				t.Fatal(err)
			}
			rec, err := r.drv.Reject(ctx, id)
			if !errors.Is(err, atm.ErrCode(tc.wantCode)) && (tc.wantCode != atm.OK || err != nil) {
				t.Fatalf("reject with its reply lost: %v, want code %s", err, tc.wantCode)
			}
			if r.drv.Resolved.Load() == 0 {
				t.Fatal("the reply was lost but the driver never asked TXN_STATUS")
			}
			truth, _ := r.run.Sim.Record(id)
			if rec.State != truth.State || !slices.Equal(rec.Cassettes, truth.Cassettes) {
				t.Fatalf("driver says %+v; ATM %+v", rec, truth)
			}
			// The same REJECT again, reply delivered: the same answer.
			again, err2 := r.drv.Reject(ctx, id)
			if (err == nil) != (err2 == nil) || (err2 != nil && !errors.Is(err2, atm.ErrCode(tc.wantCode))) || again.State != rec.State || !slices.Equal(again.Cassettes, rec.Cassettes) {
				t.Fatalf("second reject: %+v %v; first (resolved): %+v %v", again, err2, rec, err)
			}
			if after := r.run.Sim.Totals(); after.RejectBin != before.RejectBin || after.AtExit != before.AtExit {
				t.Fatalf("a REJECT of a %s moved notes: %+v → %+v", tc.name, before, after)
			}
		})
	}
}
