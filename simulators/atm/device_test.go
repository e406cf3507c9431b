package simatm_test

import (
	"bytes"
	"errors"
	"image/png"
	"os"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	goqr "github.com/skip2/go-qrcode"

	"github.com/egate-bank/egate/atm"
	simatm "github.com/egate-bank/egate/simulators/atm"
)

func noTake(c *simatm.Config) { c.Faults.CustomerTakes = false }

// TestDeviceFaults runs one dispense of 5 × 100 yuan from cassette 1 through
// each device fault and checks the counts the driver reports against the
// machine's own cassettes and reject bin.
func TestDeviceFaults(t *testing.T) {
	t.Parallel()
	five := []atm.Notes{{Cassette: 1, Count: 5}}
	for _, tc := range []struct {
		name      string
		faults    []string
		wantCode  atm.Code // on the dispense
		wantState atm.TxnState
		picked    int
		presented int
		rejected  int
		refused   bool // nothing may move
	}{
		{"jam with partial notes out", []string{"jam-after=3"}, atm.CodeJam, atm.StateFailed, 3, 0, 3, false},
		{"jam with zero notes out", []string{"jam-after=0"}, atm.CodeJam, atm.StateFailed, 0, 0, 0, false},
		{"too many rejects", []string{"reject-every=1"}, atm.CodeTooManyRejects, atm.StateFailed, 6, 0, 6, false},
		{"some rejects, replaced", []string{"reject-every=3"}, atm.OK, atm.StatePresented, 7, 5, 2, false},
		{"missing cassette", []string{"missing-cassette=1"}, atm.CodeCassetteMissing, atm.StateNone, 0, 0, 0, true},
		{"empty cassette", []string{"empty-cassette=1"}, atm.CodeCassetteEmpty, atm.StateNone, 0, 0, 0, true},
		// 5 × 500 ms of picking outlasts T_reply (1.5 s below): only the
		// PROGRESS frames keep the driver waiting for the reply.
		{"slow dispense does not time out", []string{"pick-delay=500ms"}, atm.OK, atm.StatePresented, 5, 5, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// No line faults here, and the driver must read every outcome
			// from the reply (Resolved stays 0): timers far from what a
			// loaded machine's scheduling delays can reach, so that a late
			// ACK or PROGRESS does not send the driver to TXN_STATUS. With
			// 60 ms / 400 ms it did, legitimately, under load.
			r := newRigDrv(t, func(c *simatm.Config) {
				noTake(c)
				c.Link.AckTimeout = time.Second
			}, func(d *atm.DriverConfig) { d.ReplyTimeout = 1500 * time.Millisecond })
			ctx := ctxT(t, 20*time.Second)
			if _, err := r.drv.Status(ctx); err != nil {
				t.Fatal(err)
			}
			for _, f := range tc.faults {
				if err := r.run.Sim.Faults().Set(f); err != nil {
					t.Fatal(err)
				}
			}
			id := atm.NewTxnID()
			rec, err := r.drv.Dispense(ctx, id, 50000, five)
			var de *atm.DeviceError
			switch {
			case tc.wantCode == atm.OK && err != nil:
				t.Fatalf("dispense: %v", err)
			case tc.wantCode != atm.OK && (!errors.As(err, &de) || de.Code != tc.wantCode):
				t.Fatalf("dispense err = %v, want %s", err, tc.wantCode)
			case tc.refused && de.Record != nil:
				t.Fatalf("refusal carried a record: %+v", de.Record)
			case !tc.refused && tc.wantCode != atm.OK && de.Record == nil:
				t.Fatalf("failure without counts")
			}
			if r.drv.Resolved.Load() != 0 {
				t.Errorf("driver had to resolve an outcome it should have read from the reply")
			}
			if rec.State != tc.wantState {
				t.Fatalf("state %s, want %s", rec.State, tc.wantState)
			}
			p, pr, rj := rec.Totals()
			if p != tc.picked || pr != tc.presented || rj != tc.rejected {
				t.Fatalf("picked/presented/rejected = %d/%d/%d, want %d/%d/%d", p, pr, rj, tc.picked, tc.presented, tc.rejected)
			}
			tot := r.run.Sim.Totals()
			if got := 500 - tot.Cassettes[0].Count; got != p {
				t.Fatalf("cassette lost %d notes, driver says %d picked", got, p)
			}
			if tot.RejectBin != rj || tot.AtExit != pr {
				t.Fatalf("reject bin %d, at exit %d; driver says rejected %d presented %d", tot.RejectBin, tot.AtExit, rj, pr)
			}
			// A retry of the same id never moves anything again.
			again, _ := r.drv.Dispense(ctx, id, 50000, five)
			if p2, _, _ := again.Totals(); p2 != p || r.run.Sim.Totals().Cassettes[0].Count != tot.Cassettes[0].Count {
				t.Fatalf("retry changed something: %+v", again)
			}
		})
	}
}

// TestAfterPresent covers what happens to presented cash.
func TestAfterPresent(t *testing.T) {
	t.Parallel()
	two := []atm.Notes{{Cassette: 2, Count: 2}}
	for _, tc := range []struct {
		name        string
		faults      []string
		retract     bool // host sends RETRACT; else the ATM's take timeout does
		wantState   atm.TxnState
		wantCode    atm.Code
		retracted   uint16
		rejectBin   int
		taken       int
		wantEventOf uint8
	}{
		{"cash not taken, ATM retracts on timeout", nil, false, atm.StateRetracted, atm.OK, 2, 2, 0, atm.EventRetracted},
		{"host retracts", nil, true, atm.StateRetracted, atm.OK, 2, 2, 0, atm.EventRetracted},
		{"cash taken during retract", []string{"take-during-retract=1"}, true, atm.StateTaken, atm.CodeNotPresented, 0, 0, 2, atm.EventTaken},
		{"retract with unknown count", []string{"retract-unknown=1"}, true, atm.StateRetracted, atm.CodeRetractCountUnknown, atm.RetractUnknown, 2, 0, atm.EventRetracted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, func(c *simatm.Config) {
				noTake(c)
				if !tc.retract {
					c.TakeTimeout = 200 * time.Millisecond
				}
			})
			ctx := ctxT(t, 20*time.Second)
			if _, err := r.drv.Status(ctx); err != nil {
				t.Fatal(err)
			}
			for _, f := range tc.faults {
				r.run.Sim.Faults().Set(f)
			}
			id := atm.NewTxnID()
			if _, err := r.drv.Dispense(ctx, id, 10000, two); err != nil {
				t.Fatal(err)
			}
			if tc.retract {
				rec, err := r.drv.Retract(ctx, id)
				var de *atm.DeviceError
				if tc.wantCode == atm.OK && err != nil || tc.wantCode != atm.OK && (!errors.As(err, &de) || de.Code != tc.wantCode) {
					t.Fatalf("retract: %+v %v, want %s", rec, err, tc.wantCode)
				}
			}
			for nextEvent(t, r.drv, 10*time.Second).Kind != tc.wantEventOf {
			}
			rec, _ := r.drv.Record(id)
			if rec.State != tc.wantState || rec.Retracted != tc.retracted {
				t.Fatalf("record %s retracted %d, want %s %d", rec.State, rec.Retracted, tc.wantState, tc.retracted)
			}
			tot := r.run.Sim.Totals()
			if tot.RejectBin != tc.rejectBin || tot.Taken != tc.taken || tot.AtExit != 0 {
				t.Fatalf("machine: %+v", tot)
			}
		})
	}
}

func TestEventsOutOfOrderAndDuplicated(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		faults []string
	}{
		{"taken before presented", []string{"events-reversed=1"}},
		{"every event twice", []string{"events-duplicated=5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, func(c *simatm.Config) { c.Faults.CustomerTakes = false })
			ctx := ctxT(t, 20*time.Second)
			if _, err := r.drv.Status(ctx); err != nil { // the session is up: only the dispense's frames follow
				t.Fatal(err)
			}
			for _, f := range tc.faults {
				r.run.Sim.Faults().Set(f)
			}
			// Counted from before the dispense: PRESENTED follows the
			// DISPENSE reply at once and may reach the host before
			// Dispense returns to the test.
			framesBefore := accepted(r.drv)
			id := atm.NewTxnID()
			if _, err := r.drv.Dispense(ctx, id, 10000, []atm.Notes{{Cassette: 1, Count: 1}}); err != nil {
				t.Fatal(err)
			}
			r.run.Sim.TakeNow()
			got := []atm.Event{nextEvent(t, r.drv, 10*time.Second), nextEvent(t, r.drv, 10*time.Second)}
			if got[0].No == got[1].No {
				t.Fatalf("duplicate event delivered: %+v", got)
			}
			if rec, _ := r.drv.Record(id); rec.State != atm.StateTaken {
				t.Fatalf("final state %s, want TAKEN", rec.State)
			}
			if tc.name == "taken before presented" && (got[0].Kind != atm.EventTaken || got[1].Advanced) {
				t.Fatalf("late PRESENTED moved the state: %+v", got)
			}
			// The ATM sends the DISPENSE reply, then PRESENTED and TAKEN
			// (twice each, or reversed): wait until every one of those
			// frames has reached the driver, then no third event may have
			// been delivered. Frames are counted as the link accepted them:
			// a retransmission (the ATM's 60 ms T_ack fired before the
			// host's ACK arrived, as on a loaded machine) is not a new frame.
			// PROGRESS frames of a dispense slowed past 100 ms may come on
			// top, so the count is a lower bound.
			want := int64(1 + 2)
			if tc.name == "every event twice" {
				want = 1 + 4
			}
			deadline := time.Now().Add(10 * time.Second)
			for accepted(r.drv)-framesBefore < want && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond) // the link's counter; no channel says it
			}
			if n := accepted(r.drv) - framesBefore; n < want {
				t.Fatalf("driver accepted %d frames after the dispense, want the reply and the events (%d)", n, want)
			}
			select {
			case ev := <-r.drv.Events():
				t.Fatalf("third event for one dispense: %+v", ev)
			case <-time.After(300 * time.Millisecond):
			}
		})
	}
}

func TestResetAnswersTwice(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	ctx := ctxT(t, 10*time.Second)
	if _, err := r.drv.Status(ctx); err != nil {
		t.Fatal(err)
	}
	link := r.drv.Link()
	simLink := r.run.Sim.Link()
	r.settle()
	before := link.Stats.FramesIn.Load()
	hostRetx, simRetx := link.Stats.Retransmits.Load(), simLink.Stats.Retransmits.Load()
	r.run.Sim.Faults().Set("reset-twice=2")
	h1, err := r.drv.Hello(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := r.drv.Hello(ctx)
	if err != nil || h1.BootID != h2.BootID {
		t.Fatalf("second hello: %v", err)
	}
	for range 3 {
		if _, err := r.drv.Status(ctx); err != nil {
			t.Fatalf("status after double hello replies: %v", err)
		}
	}
	// The ATM handles one frame at a time and sends both HELLO replies
	// (each waits for its ACK) before it reads the next request, so by now
	// the host has received 2 × 2 HELLO replies and 3 STATUS replies.
	if r.drv.Link() != link {
		t.Fatal("the driver reopened the line")
	}
	// Exactly 7 more, but for retransmissions on a loaded machine: each one
	// of the ATM's (its T_ack fired before the host's ACK came) may reach
	// the host once more, and a HELLO the host sent again is a new HELLO
	// (SEQ 0 starts a session; it is never a duplicate), answered twice.
	n := link.Stats.FramesIn.Load() - before
	extra := simLink.Stats.Retransmits.Load() - simRetx + 2*(link.Stats.Retransmits.Load()-hostRetx)
	if n < 7 || n > 7+extra {
		t.Fatalf("host received %d data frames, want 7 (each HELLO answered twice, 3 STATUS) + at most %d retransmitted", n, extra)
	}
	if _, err := r.drv.Dispense(ctx, atm.NewTxnID(), 10000, []atm.Notes{{Cassette: 1, Count: 1}}); err != nil {
		t.Fatal(err)
	}
}

// TestScreenQR shows a QR as text and as a bitmap and decodes the PNG the
// simulator wrote with an independent decoder (gozxing).
func TestScreenQR(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pngPath := simatm.ScreenPNGPath(dir)
	r := newRig(t, func(c *simatm.Config) { c.Screen = &simatm.Screen{PNGPath: pngPath} })
	ctx := ctxT(t, 10*time.Second)
	const url = "https://ebank.example/qrw/3f2a9c0e1b7d4e55"
	h, err := r.drv.Hello(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h.Capabilities&atm.CapQRText == 0 || h.Capabilities&atm.CapQRBitmap == 0 {
		t.Fatalf("capabilities %#x", h.Capabilities)
	}
	q, _ := goqr.New(url, goqr.Medium)
	size, packed := atm.PackBitmap(q.Bitmap())
	session := atm.NewTxnID()
	for _, tc := range []struct {
		name string
		m    atm.ShowQR
	}{
		{"text", atm.ShowQR{Session: session, TTLSec: 60, Mode: atm.QRModeText, Text: url}},
		{"bitmap", atm.ShowQR{Session: session, TTLSec: 60, Mode: atm.QRModeBitmap, Size: size, Bitmap: packed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := r.drv.ShowQR(ctx, tc.m); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(pngPath)
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			bmp, err := gozxing.NewBinaryBitmapFromImage(img)
			if err != nil {
				t.Fatal(err)
			}
			res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
			if err != nil {
				t.Fatalf("decoding the screen's QR: %v", err)
			}
			if res.GetText() != url {
				t.Fatalf("QR says %q, want %q", res.GetText(), url)
			}
		})
	}
	if err := r.drv.CancelQR(ctx, session); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pngPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("QR still on screen after cancel: %v", err)
	}
}

func TestPINPad(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	ctx := ctxT(t, 10*time.Second)
	const pan = "6222021234567890"
	req := atm.PINRequest{Session: atm.NewTxnID(), MinLen: 4, MaxLen: 6, TimeoutSec: 5, PAN: pan}
	for _, tc := range []struct {
		name  string
		entry simatm.PINEntry
		code  atm.Code
	}{
		{"PIN entered", simatm.PINEntry{Digits: "482916"}, atm.OK},
		{"customer cancels", simatm.PINEntry{Cancel: true}, atm.CodeCancelled},
		{"too short", simatm.PINEntry{Digits: "12"}, atm.CodeBadMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.run.Sim.EnterPIN(tc.entry)
			rep, err := r.drv.PIN(ctx, req)
			if tc.code != atm.OK {
				if !errors.Is(err, atm.ErrCode(tc.code)) {
					t.Fatalf("err = %v, want %s", err, tc.code)
				}
				return
			}
			if err != nil || rep.Format != 4 || rep.KeyID != 7 {
				t.Fatalf("%+v %v", rep, err)
			}
			if bytes.Contains(rep.Block[:], []byte(tc.entry.Digits)) {
				t.Fatal("PIN in clear in the block")
			}
			pin, err := atm.DecipherPINBlock4(pinKey, rep.Block, pan)
			if err != nil || pin != tc.entry.Digits {
				t.Fatalf("deciphered %q %v", pin, err)
			}
		})
	}
}
