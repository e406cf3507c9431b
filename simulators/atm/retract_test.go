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
// lost or the line dies mid-retract. Each fault has one outcome that
// PROTOCOL.md §6.7 defines, and the driver must report exactly that one,
// learned from TXN_STATUS: the state, the retracted count and the code the
// ATM's own reply would have carried, never a state the ATM did not reach,
// and never "uncertain": the ATM can be asked well within the context.
// Nobody takes the cash but the take-during-retract fault, so no case races
// the customer.
func TestRetractLostReply(t *testing.T) {
	t.Parallel()
	two := []atm.Notes{{Cassette: 2, Count: 2}}
	for _, tc := range []struct {
		name     string
		faults   []string
		retract  time.Duration // mechanical retract time
		progress time.Duration // PROGRESS interval
		// what the fault must produce (PROTOCOL.md §6.7)
		state     atm.TxnState
		retracted uint16
		code      atm.Code
	}{
		// No PROGRESS and a retract longer than T_reply: the driver asks
		// TXN_STATUS while the retract runs (the ATM still says PRESENTED)
		// and waits for its end: both notes back in the reject bin.
		{"reply late, status asked mid-retract", []string{"drop-reply=1"}, 1200 * time.Millisecond, time.Hour,
			atm.StateRetracted, 2, atm.OK},
		// The line is dead longer than T_reply: the driver reconnects and
		// asks until the retract, which the line did not stop, has ended.
		{"line drops mid-retract", []string{"line-down-mid=700ms"}, 1500 * time.Millisecond, 100 * time.Millisecond,
			atm.StateRetracted, 2, atm.OK},
		{"reply and its retransmissions lost", []string{"drop-reply=6"}, 100 * time.Millisecond, time.Hour,
			atm.StateRetracted, 2, atm.OK},
		// The customer was first: TAKEN, nothing retracted, NOT_PRESENTED.
		{"taken during retract, reply lost", []string{"take-during-retract=1", "drop-reply=6"}, 100 * time.Millisecond, time.Hour,
			atm.StateTaken, 0, atm.CodeNotPresented},
		// Retracted, but not counted: 0xFFFF, RETRACT_COUNT_UNKNOWN.
		{"count unknown, reply lost", []string{"retract-unknown=1", "drop-reply=6"}, 100 * time.Millisecond, time.Hour,
			atm.StateRetracted, atm.RetractUnknown, atm.CodeRetractCountUnknown},
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
			// Generous: the driver asks until the ATM answers, so only a
			// hang (or a driver that gives up) reaches it.
			ctx := ctxT(t, 30*time.Second)
			id := atm.NewTxnID()
			if _, err := r.drv.Dispense(ctx, id, 10000, two); err != nil {
				t.Fatal(err)
			}
			// A retransmission of the DISPENSE reply still to come would
			// spend a drop-reply meant for the RETRACT reply.
			r.settle()
			before := r.run.Sim.Totals()
			for _, f := range tc.faults {
				if err := r.run.Sim.Faults().Set(f); err != nil {
					t.Fatal(err)
				}
			}
			rec, err := r.drv.Retract(ctx, id)

			gotCode := atm.OK
			var de *atm.DeviceError
			switch {
			case errors.As(err, &de):
				gotCode = de.Code
				if de.Record == nil || de.Record.State != tc.state {
					t.Errorf("the %s error carries record %+v, want state %s", de.Code, de.Record, tc.state)
				}
			case err != nil:
				t.Fatalf("retract: %v; want %s, %s", err, tc.state, tc.code)
			}
			if rec.ID != id || rec.State != tc.state || rec.Retracted != tc.retracted || gotCode != tc.code {
				t.Fatalf("driver says %s retracted %d %s, want %s retracted %d %s",
					rec.State, rec.Retracted, gotCode, tc.state, tc.retracted, tc.code)
			}
			// The ATM agrees, to the cassette.
			truth, ok := r.run.Sim.Record(id)
			if !ok {
				t.Fatal("the ATM has no record")
			}
			if truth.State != rec.State || truth.Retracted != rec.Retracted || !slices.Equal(truth.Cassettes, rec.Cassettes) {
				t.Fatalf("driver says %+v; ATM %+v", rec, truth)
			}
			// And so do the notes: both left the tray, into the reject bin
			// or the customer's hand.
			after := r.run.Sim.Totals()
			binIn, takenOut := 2, 0
			if tc.state == atm.StateTaken {
				binIn, takenOut = 0, 2
			}
			if after.AtExit != 0 || after.RejectBin-before.RejectBin != binIn || after.Taken-before.Taken != takenOut {
				t.Fatalf("notes: at exit %d → %d, reject bin %d → %d, taken %d → %d; want the tray empty, %d into the bin, %d taken",
					before.AtExit, after.AtExit, before.RejectBin, after.RejectBin, before.Taken, after.Taken, binIn, takenOut)
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
