package simatm_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/atm"
	simatm "github.com/egate-bank/egate/simulators/atm"
)

// rawSession talks to a simulator over a bare Link, as a buggy or retrying
// host might, below the driver's own idempotency.
func rawSession(t *testing.T, mod func(*simatm.Config)) (*atm.Link, *simatm.Running) {
	t.Helper()
	r := newRig(t, mod)
	port, err := atm.OpenSerial(r.run.TTYName, 115200)
	if err != nil {
		t.Fatal(err)
	}
	l := atm.NewLink(port, atm.LinkConfig{})
	t.Cleanup(func() { l.Close() })
	ctx := ctxT(t, 10*time.Second)
	if _, err := l.SendStart(ctx, atm.TypeHello, 0, atm.Hello{VersionMin: 1, VersionMax: 1}.Marshal()); err != nil {
		t.Fatal(err)
	}
	waitReply(t, l, atm.TypeHello|atm.ReplyBit, 0)
	return l, r.run
}

func waitReply(t *testing.T, l *atm.Link, typ atm.MsgType, ref uint8) atm.Frame {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case f := <-l.Recv():
			if f.Type == typ && f.Ref == ref {
				return f
			}
		case <-timeout.C:
			t.Fatalf("no %s for seq %d", typ, ref)
		}
	}
}

// TestDuplicateDispenseOnTheWire sends the same DISPENSE twice as two
// distinct frames (new sequence numbers), once while the first still runs
// and once after: the ATM picks once and answers the stored record.
func TestDuplicateDispenseOnTheWire(t *testing.T) {
	t.Parallel()
	// The second DISPENSE must reach the ATM while the first still picks:
	// 2 × 500 ms leaves a loaded machine's scheduler room (100 ms did not
	// leave much).
	l, run := rawSession(t, func(c *simatm.Config) { c.PickTime = 500 * time.Millisecond })
	ctx := ctxT(t, 20*time.Second)
	m := atm.Dispense{ID: atm.NewTxnID(), Amount: 20000, Notes: []atm.Notes{{Cassette: 1, Count: 2}}}
	seq1, err := l.Send(ctx, atm.TypeDispense, 0, m.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	seq2, err := l.Send(ctx, atm.TypeDispense, 0, m.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := atm.ParseTxnReply(waitReply(t, l, atm.TypeDispense|atm.ReplyBit, seq2).Payload)
	if r2.Code != atm.CodeInProgress {
		t.Fatalf("duplicate while running: %s, want IN_PROGRESS", r2.Code)
	}
	r1, _ := atm.ParseTxnReply(waitReply(t, l, atm.TypeDispense|atm.ReplyBit, seq1).Payload)
	if r1.Code != atm.OK || r1.Record.State != atm.StatePresented {
		t.Fatalf("first: %+v", r1)
	}
	seq3, _ := l.Send(ctx, atm.TypeDispense, 0, m.Marshal())
	r3, _ := atm.ParseTxnReply(waitReply(t, l, atm.TypeDispense|atm.ReplyBit, seq3).Payload)
	if p, _, _ := r3.Record.Totals(); p != 2 || r3.Record.State < atm.StatePresented {
		t.Fatalf("duplicate after: %+v", r3)
	}
	if got := run.Sim.Totals().Cassettes[0].Count; got != 498 {
		t.Fatalf("cassette 1 holds %d, want 498: dispensed more than once", got)
	}
	// Same id, different content: a conflict, nothing moves.
	m.Amount, m.Notes = 30000, []atm.Notes{{Cassette: 1, Count: 3}}
	seq4, _ := l.Send(ctx, atm.TypeDispense, 0, m.Marshal())
	r4, _ := atm.ParseTxnReply(waitReply(t, l, atm.TypeDispense|atm.ReplyBit, seq4).Payload)
	if r4.Code != atm.CodeTxnConflict || run.Sim.Totals().Cassettes[0].Count != 498 {
		t.Fatalf("conflict: %s", r4.Code)
	}
}

func TestNoSessionBeforeHello(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	port, err := atm.OpenSerial(r.run.TTYName, 115200)
	if err != nil {
		t.Fatal(err)
	}
	l := atm.NewLink(port, atm.LinkConfig{})
	defer l.Close()
	ctx := ctxT(t, 5*time.Second)
	seq, err := l.Send(ctx, atm.TypeDispense, 0, atm.Dispense{ID: atm.NewTxnID(), Amount: 10000, Notes: []atm.Notes{{Cassette: 1, Count: 1}}}.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	m, _ := atm.ParseErrorMsg(waitReply(t, l, atm.TypeError, seq).Payload)
	if m.Code != atm.CodeNoSession || r.run.Sim.Totals().Cassettes[0].Count != 500 {
		t.Fatalf("before HELLO: %s", m.Code)
	}
}

func TestControlEndpoint(t *testing.T) {
	t.Parallel()
	s, err := simatm.New(simatm.Config{Cassettes: simatm.DefaultCassettes(), JournalPath: filepath.Join(t.TempDir(), "j")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for _, tc := range []struct {
		name, method, path, body string
		want                     int
	}{
		{"set faults", "POST", "/faults", "jam-after=2&drop-ack=1", http.StatusNoContent},
		{"unknown fault", "POST", "/faults", "melt-down=1", http.StatusBadRequest},
		{"bad value", "POST", "/faults", "jam-after=lots", http.StatusBadRequest},
		{"PIN", "POST", "/pin", "digits=1234", http.StatusNoContent},
		{"take", "POST", "/take", "", http.StatusNoContent},
		{"no QR yet", "GET", "/qr.png", "", http.StatusNotFound},
		{"screen", "GET", "/", "", http.StatusOK},
		{"state", "GET", "/state", "", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(context.Background(), tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("%s %s: %s, want %d", tc.method, tc.path, resp.Status, tc.want)
			}
			if tc.path == "/state" {
				var tot simatm.Totals
				if err := json.NewDecoder(resp.Body).Decode(&tot); err != nil || len(tot.Cassettes) != 4 {
					t.Fatalf("state: %+v %v", tot, err)
				}
			}
		})
	}
	if s.Faults().JamAfter != 2 || s.Faults().DropACK != 1 {
		t.Fatalf("faults not set: %+v", s.Faults())
	}
}

func TestPurgeRejectAndStatus(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(c *simatm.Config) { c.Faults.CustomerTakes = false })
	ctx := ctxT(t, 10*time.Second)
	if n, err := r.drv.Purge(ctx); err != nil || n != 0 {
		t.Fatalf("purge of an empty transport: %d %v", n, err)
	}
	if _, err := r.drv.Reject(ctx, atm.NewTxnID()); !errors.Is(err, atm.ErrCode(atm.CodeUnknownTxn)) {
		t.Fatalf("reject of an unknown txn: %v", err)
	}
	id := atm.NewTxnID()
	if _, err := r.drv.Dispense(ctx, id, 5000, []atm.Notes{{Cassette: 2, Count: 1}}); err != nil {
		t.Fatal(err)
	}
	r.run.Sim.Faults().Set("missing-cassette=3")
	st, err := r.drv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		got  any
		want any
	}{
		{"notes at exit", st.AtExit, uint16(1)},
		{"shutter", st.Shutter, uint8(atm.ShutterOpen)},
		{"tray sensor", st.Sensors & atm.SensorTray, uint16(atm.SensorTray)},
		{"cassette 2 count", st.Cassettes[1].Count, uint16(499)},
		{"cassette 3 missing", st.Cassettes[2].State, uint8(atm.CassetteMissing)},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	// Reject of a presented transaction moves nothing: the notes are at the exit.
	if rec, err := r.drv.Reject(ctx, id); err != nil || rec.State != atm.StatePresented {
		t.Fatalf("reject after present: %+v %v", rec, err)
	}
	if tot := r.run.Sim.Totals(); tot.RejectBin != 0 || tot.AtExit != 1 {
		t.Fatalf("machine: %+v", tot)
	}
}
