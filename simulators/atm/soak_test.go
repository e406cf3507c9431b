package simatm_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"math/rand"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/egate-bank/egate/atm"
	"github.com/egate-bank/egate/internal/testenv"
	simatm "github.com/egate-bank/egate/simulators/atm"
)

// TestSoak runs hundreds of dispenses over a pty at 115200 baud (paced) with
// line and device faults at random and random kill -9 of the simulator
// process (and crash-after-pick). Afterwards, before any reconciliation: what
// every Dispense call returned equals the ATM's journal (a nil error means
// exactly the ATM's record of that dispense). Then: every transaction id was
// dispensed at most once (one "begin" in the ATM's journal), the driver's record of each transaction
// equals the ATM's, and the counts the driver recorded add up to the ATM's
// cassettes, reject bin and the cash customers took.
//
// Bounded for make test (about a minute); EGATE_SOAK=1 (make soak) runs
// longer. EGATE_SOAK_SEED replays a run.
func TestSoak(t *testing.T) {
	t.Parallel()
	iterations, budget := 300, 45*time.Second
	if testing.Short() {
		iterations, budget = 40, 15*time.Second
	}
	if os.Getenv("EGATE_SOAK") == "1" {
		iterations, budget = 3000, 20*time.Minute
	}
	seed := time.Now().UnixNano()
	if s := os.Getenv("EGATE_SOAK_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	t.Logf("soak seed %d (EGATE_SOAK_SEED=%d replays the fault schedule)", seed, seed)
	rng := rand.New(rand.NewSource(seed))

	p, err := simatm.OpenPTY()
	if err != nil {
		testenv.Missing(t, "pseudo-terminals (/dev/ptmx, devpts)", "mount devpts; "+err.Error())
	}
	defer p.Close()
	journal := t.TempDir() + "/journal"
	const perCassette = 5000
	env := []string{"EGATE_SIMATM_BAUD=115200", "EGATE_SIMATM_COUNT=" + strconv.Itoa(perCassette), "EGATE_SIMATM_SEED=" + strconv.FormatInt(seed, 10)}
	c := startChild(t, p, journal, env...)
	drv := atm.NewDriver(atm.DriverConfig{
		Open:         atm.SerialOpener(p.TTYName, 115200),
		Link:         atm.LinkConfig{Baud: 115200, AckTimeout: 60 * time.Millisecond},
		ReplyTimeout: 500 * time.Millisecond, PollInterval: 30 * time.Millisecond,
	})
	defer drv.Close()
	// Cash taken or retracted: the next customer may come.
	settled := make(chan atm.TxnID, 1024)
	go func() {
		for ev := range drv.Events() {
			if ev.Kind == atm.EventTaken || ev.Kind == atm.EventRetracted {
				settled <- ev.Record.ID
			}
		}
	}()

	menu := []string{"", "", "", "", "", "flip-out=1", "flip-in=1", "garbage-out=2", "truncate-out=1",
		"drop-ack=1", "drop-reply=1", "drop-reply=6", "nak-storm=3", "jam-after=0", "jam-after=1",
		"reject-every=3", "reject-every=1", "events-duplicated=2", "events-reversed=1", "take-during-retract=1",
		"line-down-mid=300ms", "pick-delay=20ms", "crash-after-pick=1"}
	var ids []atm.TxnID
	// What each Dispense call returned, kept before any reconciliation can
	// overwrite the driver's records: checked against the ATM's journal.
	type returned struct {
		rec    atm.TxnRecord
		err    error
		faults []string
	}
	results := map[atm.TxnID]returned{}
	kills, refused, failed := 0, 0, 0
	codes := map[atm.Code]int{}
	start := time.Now()
	for i := 0; i < iterations && time.Since(start) < budget; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		faults := []string{"customer-takes=" + strconv.FormatBool(rng.Intn(6) != 0)}
		if f := menu[rng.Intn(len(menu))]; f != "" {
			faults = append(faults, f)
		}
		c.faults(t, faults...)
		var notes []atm.Notes
		var amount int64
		for _, cas := range rng.Perm(4)[:1+rng.Intn(2)] {
			n := 1 + rng.Intn(3)
			notes = append(notes, atm.Notes{Cassette: uint8(cas + 1), Count: uint16(n)})
			amount += int64(n) * simatm.DefaultCassettes()[cas].Denom
		}
		id := atm.NewTxnID()
		ids = append(ids, id)
		restarted := make(chan *child, 1)
		crash := faults[len(faults)-1] == "crash-after-pick=1"
		if crash {
			// The child kills itself after its first pick; boot a new one.
			old := c
			go func() {
				werr := <-old.done
				old.done <- werr
				restarted <- startChild(t, p, journal, env...)
			}()
		} else if rng.Intn(100) < 7 {
			kills++
			delay := time.Duration(rng.Intn(40)) * time.Millisecond
			old := c
			go func() {
				time.Sleep(delay) // a kill at a random moment of the cycle
				old.kill()
				restarted <- startChild(t, p, journal, env...)
			}()
		} else {
			restarted <- c
		}
		rec, err := drv.Dispense(ctx, id, amount, notes)
		results[id] = returned{rec, err, faults}
		if crash {
			// Crashed at its first pick, or refused the dispense before any
			// pick with the fault still armed: either way this child ends
			// here and the goroutine above boots the next one.
			c.kill()
		}
		var de *atm.DeviceError
		switch {
		case err == nil:
			if rec.State == atm.StatePresented {
				waitSettled(settled, id)
			}
		case errors.As(err, &de) && de.Record == nil:
			codes[de.Code]++
			refused++ // CASH_AT_EXIT, BUSY …: nothing moved
		case errors.As(err, &de):
			failed++ // JAM, TOO_MANY_REJECTS, POWER_LOSS: counts in the record
		default:
			t.Fatalf("dispense %d (%s, faults %v): %v", i, id, faults, err)
		}
		c = <-restarted
		cancel()
	}
	t.Logf("refusals by code: %v", codes)
	t.Logf("%d dispenses in %v: %d refused, %d failed with counts, %d kill -9, %d resolved by TXN_STATUS",
		len(ids), time.Since(start).Round(time.Millisecond), refused, failed, kills, drv.Resolved.Load())
	if len(ids) < min(50, iterations) {
		t.Fatalf("only %d dispenses in the budget", len(ids))
	}

	// Before any reconciliation: what each Dispense returned must be what the
	// ATM did. The ATM's truth is its journal, replayed in this process.
	checkReturned := func(truth *simatm.Sim) {
		t.Helper()
		for _, id := range ids {
			got := results[id]
			theirs, known := truth.Record(id)
			var de *atm.DeviceError
			switch {
			case got.err == nil:
				if !known {
					t.Fatalf("%s (faults %v): Dispense returned %+v, nil error; the ATM never accepted it", id, got.faults, got.rec)
				}
				sameDispenseOutcome(t, id, got.faults, got.rec, theirs)
				if got.rec.Error != atm.OK || theirs.Error != atm.OK {
					t.Fatalf("%s (faults %v): nil error for a dispense that ended %s (ATM %s)", id, got.faults, got.rec.Error, theirs.Error)
				}
			case errors.As(got.err, &de) && de.Record == nil:
				if known && theirs.State != atm.StateNone {
					t.Fatalf("%s (faults %v): refused with %s, but the ATM has %+v", id, got.faults, de.Code, theirs)
				}
			case errors.As(got.err, &de):
				if !known || de.Code != theirs.Error {
					t.Fatalf("%s (faults %v): failed with %s, ATM %+v", id, got.faults, de.Code, theirs)
				}
				sameDispenseOutcome(t, id, got.faults, *de.Record, theirs)
				sameDispenseOutcome(t, id, got.faults, got.rec, theirs)
			}
		}
	}

	// Let the last customer act, then reconcile every id with the ATM.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.faults(t, "customer-takes=true")
	for {
		st, err := drv.Status(ctx)
		if err == nil && st.AtExit == 0 && st.Device == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("ATM never became idle: %+v %v", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The journal as it stands, replayed from a copy (the child is alive and
	// a replay writes; every record is fsynced before its action).
	snap, err := os.ReadFile(journal)
	if err != nil {
		t.Fatal(err)
	}
	snapPath := t.TempDir() + "/journal-before-reconcile"
	if err := os.WriteFile(snapPath, snap, 0o600); err != nil {
		t.Fatal(err)
	}
	checkReturned(replay(t, snapPath))
	for _, id := range ids {
		if _, err := drv.TxnStatus(ctx, id); err != nil {
			t.Fatalf("reconcile %s: %v", id, err)
		}
	}
	drv.Close()
	c.kill()

	begins := map[string]int{}
	f, err := os.Open(journal)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r struct{ Op, Txn string }
		json.Unmarshal(sc.Bytes(), &r)
		if r.Op == "begin" {
			begins[r.Txn]++
		}
	}
	f.Close()
	for txn, n := range begins {
		if n > 1 {
			t.Errorf("transaction %s dispensed %d times", txn, n)
		}
	}

	m := replay(t, journal)
	tot := m.Totals()
	var picked [5]int
	rejected, retracted, presented := 0, 0, 0
	records := drv.Records()
	for _, id := range ids {
		mine, ok := records[id]
		theirs, known := m.Record(id)
		if ok != known {
			t.Fatalf("%s: driver has record %v, ATM has %v", id, ok, known)
		}
		if !ok {
			continue
		}
		if mine.State != theirs.State || mine.Retracted != theirs.Retracted || len(mine.Cassettes) != len(theirs.Cassettes) {
			t.Fatalf("%s: driver %+v, ATM %+v", id, mine, theirs)
		}
		for i, cc := range mine.Cassettes {
			if cc != theirs.Cassettes[i] {
				t.Fatalf("%s cassette %d: driver %+v, ATM %+v", id, cc.Cassette, cc, theirs.Cassettes[i])
			}
			picked[cc.Cassette] += int(cc.Picked)
			rejected += int(cc.Rejected)
			presented += int(cc.Presented)
		}
		if mine.State == atm.StateRetracted {
			if mine.Retracted == atm.RetractUnknown {
				t.Fatalf("%s: retract count unknown in a soak without that fault", id)
			}
			retracted += int(mine.Retracted)
		}
	}
	for _, cs := range tot.Cassettes {
		if got := perCassette - cs.Count; got != picked[cs.ID] {
			t.Errorf("cassette %d: %d notes left it, driver recorded %d picked", cs.ID, got, picked[cs.ID])
		}
	}
	if tot.RejectBin != rejected+retracted {
		t.Errorf("reject bin %d, driver recorded %d rejected + %d retracted", tot.RejectBin, rejected, retracted)
	}
	if tot.Taken != presented-retracted || tot.AtExit != 0 || tot.Transport != 0 {
		t.Errorf("customers took %d (at exit %d, transport %d), driver recorded %d presented − %d retracted",
			tot.Taken, tot.AtExit, tot.Transport, presented, retracted)
	}
}

// waitSettled waits for the TAKEN or RETRACTED event of id; an event lost to
// a kill is given up on after a second (the ATM retracts at boot anyway).
func waitSettled(settled <-chan atm.TxnID, id atm.TxnID) {
	timeout := time.NewTimer(time.Second)
	defer timeout.Stop()
	for {
		select {
		case got := <-settled:
			if got == id {
				return
			}
		case <-timeout.C:
			return
		}
	}
}

// sameDispenseOutcome checks a record a Dispense call returned against the
// ATM's final record of that id. The counts never change after the dispense;
// the state may since have moved from PRESENTED to TAKEN or RETRACTED.
func sameDispenseOutcome(t *testing.T, id atm.TxnID, faults []string, mine, theirs atm.TxnRecord) {
	t.Helper()
	stateOK := mine.State == theirs.State ||
		mine.State == atm.StatePresented && (theirs.State == atm.StateTaken || theirs.State == atm.StateRetracted)
	same := mine.ID == id && theirs.ID == id && stateOK && mine.Error == theirs.Error &&
		mine.Amount == theirs.Amount && len(mine.Cassettes) == len(theirs.Cassettes)
	for i := 0; same && i < len(mine.Cassettes); i++ {
		same = mine.Cassettes[i] == theirs.Cassettes[i]
	}
	if !same {
		t.Fatalf("%s (faults %v): Dispense returned %+v, ATM's record %+v", id, faults, mine, theirs)
	}
}
