package simatm_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/egate-bank/egate/atm"
	"github.com/egate-bank/egate/internal/testenv"
	simatm "github.com/egate-bank/egate/simulators/atm"
)

// benchATM is one simulated ATM on a pty with a driver, both paced to baud,
// mechanical time 0, a customer who takes the cash at once.
type benchATM struct {
	run     *simatm.Running
	drv     *atm.Driver
	settled chan atm.TxnID
}

func newBenchATM(b *testing.B, baud int) *benchATM {
	b.Helper()
	cs := simatm.DefaultCassettes()
	for i := range cs {
		cs[i].Count = 65000
	}
	link := atm.LinkConfig{Baud: baud}
	run, err := simatm.StartPTY(context.Background(), simatm.Config{
		Cassettes: cs, JournalPath: filepath.Join(b.TempDir(), "journal"),
		Link: link, TakeTimeout: time.Hour,
	})
	if err != nil {
		testenv.Missing(b, "pseudo-terminals (/dev/ptmx, devpts)", "mount devpts; "+err.Error())
	}
	drv := atm.NewDriver(atm.DriverConfig{Open: atm.SerialOpener(run.TTYName, baud), Link: link})
	a := &benchATM{run: run, drv: drv, settled: make(chan atm.TxnID, 64)}
	go func() {
		for ev := range drv.Events() {
			if ev.Kind == atm.EventTaken {
				a.settled <- ev.Record.ID
			}
		}
	}()
	b.Cleanup(func() { drv.Close(); run.Stop() })
	if _, err := drv.Hello(context.Background()); err != nil {
		b.Fatal(err)
	}
	return a
}

// cycle is one withdrawal on the wire: DISPENSE, its reply, the PRESENTED and
// TAKEN events, and their ACKs.
func (a *benchATM) cycle(ctx context.Context) error {
	id := atm.NewTxnID()
	if _, err := a.drv.Dispense(ctx, id, 17000, []atm.Notes{{Cassette: 1, Count: 1}, {Cassette: 2, Count: 1}, {Cassette: 3, Count: 1}}); err != nil {
		return err
	}
	for {
		select {
		case got := <-a.settled:
			if got == id {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (a *benchATM) lineBytes() int64 {
	s := &a.drv.Link().Stats
	return s.BytesIn.Load() + s.BytesOut.Load()
}

// BenchmarkDispenseCycle measures one dispense cycle over a pty at 9600 and
// 115200 baud (writes paced to the baud on both sides; a pty does not).
// raw is the line's own minimum for the same bytes: those bytes written
// through a pty paced to the baud and read at the other end; its line-s/op
// metric is bytes × 10 / baud. egate is the full cycle through the driver and
// the simulator with mechanical time 0 (the ATM's journal fsyncs included).
func BenchmarkDispenseCycle(b *testing.B) {
	for _, baud := range []int{9600, 115200} {
		// Calibrate the bytes of one cycle.
		a := newBenchATM(b, baud)
		ctx := context.Background()
		a.cycle(ctx)
		before := a.lineBytes()
		const calib = 3
		for range calib {
			if err := a.cycle(ctx); err != nil {
				b.Fatal(err)
			}
		}
		cycleBytes := (a.lineBytes() - before) / calib
		lineSec := float64(cycleBytes) * 10 / float64(baud)

		b.Run(fmt.Sprintf("baud-%d/raw", baud), func(b *testing.B) { simatm.BenchLine(b, baud, cycleBytes) })
		b.Run(fmt.Sprintf("baud-%d/egate", baud), func(b *testing.B) {
			start := a.lineBytes()
			b.ResetTimer()
			for range b.N {
				if err := a.cycle(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(a.lineBytes()-start)/float64(b.N), "bytes/op")
			b.ReportMetric(lineSec, "line-s/op")
		})
	}
}

// BenchmarkDispenseSixteenATMs: dispense cycles per second one driver
// process sustains across 16 simulated ATMs at 115200 baud.
func BenchmarkDispenseSixteenATMs(b *testing.B) {
	const n = 16
	atms := make([]*benchATM, n)
	for i := range atms {
		atms[i] = newBenchATM(b, 115200)
	}
	ctx := context.Background()
	simatm.BenchAcross(b, n, "cycles/s", func(i int) error { return atms[i].cycle(ctx) })
}
