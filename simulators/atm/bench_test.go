package simatm_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
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
	journal string // the ATM's journal file
}

func newBenchATM(b *testing.B, baud int) *benchATM { return newBenchATMIn(b, baud, b.TempDir(), false) }

// newBenchATMIn is newBenchATM with the ATM's journal in dir, and with the
// host's port behind an emulatedUART if uart.
func newBenchATMIn(b *testing.B, baud int, dir string, uart bool) *benchATM {
	b.Helper()
	cs := simatm.DefaultCassettes()
	for i := range cs {
		cs[i].Count = 65000
	}
	link := atm.LinkConfig{Baud: baud}
	run, err := simatm.StartPTY(context.Background(), simatm.Config{
		Cassettes: cs, JournalPath: filepath.Join(dir, "journal"),
		Link: link, TakeTimeout: time.Hour,
	})
	if err != nil {
		testenv.Missing(b, "pseudo-terminals (/dev/ptmx, devpts)", "mount devpts; "+err.Error())
	}
	open := atm.SerialOpener(run.TTYName, baud)
	if uart {
		pty := open
		open = func(ctx context.Context) (io.ReadWriteCloser, error) {
			p, err := pty(ctx)
			if err != nil {
				return nil, err
			}
			return newEmulatedUART(p, baud), nil
		}
	}
	drv := atm.NewDriver(atm.DriverConfig{Open: open, Link: link})
	a := &benchATM{run: run, drv: drv, settled: make(chan atm.TxnID, 64)}
	go func() {
		for ev := range drv.Events() {
			if ev.Kind == atm.EventTaken {
				a.settled <- ev.Record.ID
			}
		}
	}()
	a.journal = filepath.Join(dir, "journal")
	b.Cleanup(func() { drv.Close(); run.Stop() })
	if _, err := drv.Hello(context.Background()); err != nil {
		b.Fatal(err)
	}
	return a
}

// emulatedUART stands for a real UART at the host's end of the pty: Write
// hands the bytes over at once, and they reach the other end only after
// their line time (bytes × 10 / baud) behind whatever is still shifting out,
// as from a UART's transmit buffer. It says so (atm.SelfPacedLine), so a
// link on it does not pace its writes. Its wait is time.Sleep, late by up to
// a millisecond per frame (BenchmarkPacer in atm): the line it emulates is a
// little slower than a real one.
type emulatedUART struct {
	io.ReadWriteCloser
	charTime time.Duration
	out      chan []byte
	done     chan struct{}
	once     sync.Once
}

func newEmulatedUART(port io.ReadWriteCloser, baud int) *emulatedUART {
	u := &emulatedUART{ReadWriteCloser: port, charTime: time.Second * 10 / time.Duration(baud),
		out: make(chan []byte, 64), done: make(chan struct{})}
	go u.shift()
	return u
}

func (u *emulatedUART) SelfPaced() bool { return true }

func (u *emulatedUART) Write(b []byte) (int, error) {
	select {
	case u.out <- bytes.Clone(b):
		return len(b), nil
	case <-u.done:
		return 0, atm.ErrClosed
	}
}

func (u *emulatedUART) shift() {
	var free time.Time
	for {
		select {
		case b := <-u.out:
			if now := time.Now(); free.Before(now) {
				free = now
			}
			free = free.Add(time.Duration(len(b)) * u.charTime)
			time.Sleep(time.Until(free))
			u.ReadWriteCloser.Write(b) // a failed write shows as a closed line to the reader
		case <-u.done:
			return
		}
	}
}

func (u *emulatedUART) Close() error {
	u.once.Do(func() { close(u.done) })
	return u.ReadWriteCloser.Close()
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

// journalRecords is the number of records in the ATM's journal.
func (a *benchATM) journalRecords(b *testing.B) int {
	data, err := os.ReadFile(a.journal)
	if err != nil {
		b.Fatal(err)
	}
	return bytes.Count(data, []byte{'\n'})
}

// BenchmarkDispenseCycle measures one dispense cycle over a pty at 9600 and
// 115200 baud (writes paced to the baud on both sides; a pty does not).
//
//   - raw is the line's own minimum for the same bytes: those bytes
//     written through a pty paced to the baud and read at the other end;
//     its line-s/op metric is bytes × 10 / baud;
//   - journal is the simulated ATM's own durable work in a cycle: its
//     journal records (begin, a pick per cassette, present, taken; counted
//     from the journal, records/op) each written and fsynced, as the
//     simulator does before it acts, on the same file system as egate's
//     journal (the test's temporary directory, $TMPDIR);
//   - egate is the full cycle through the driver and the simulator with
//     mechanical time 0 (the ATM's journal fsyncs included);
//   - egate-uart is egate with the host's port behind an emulatedUART,
//     which shifts the bytes out at the baud after the write as a real
//     UART does and says so: the host's link no longer paces them as well
//     (before it did, each of the host's frames, the DISPENSE and three
//     ACKs, 66 bytes a cycle, took twice its line time);
//   - egate-journal-tmpfs is egate with the ATM's journal on tmpfs
//     (/dev/shm), where an fsync costs next to nothing: what the cycle
//     costs without the simulated ATM's disk.
//
// egate's own share is egate − journal; issue 16 asks raw ≥ 0.9 of egate
// at 115200 baud, or the reason in figures. On this 2-core machine under
// other engineers' load (load average 11-17, 2026-12-03; old and new code
// interleaved, -count 5, medians) at 115200 baud: raw 24.8 ms (277 bytes,
// line time 24.05 ms), journal 3.0 ms (6 records on ext4); egate 51.9 ms
// with the link pacing by time.Sleep, 35.6 ms with its timerfd pacer
// (atm/pace_linux.go; raw / egate 0.48 -> 0.70, raw / (egate − journal)
// 0.76); egate-journal-tmpfs 36.9 -> 33.0 ms (0.75). What remains under
// that load is waking up: a cycle is eight frames in turn, each woken on
// two sides, and with fifteen runnable threads for two cores a wake-up
// waits its turn for a core (the raw loop wakes once per cycle). On the
// quiet machine of issue 16, egate was 0.81 of raw; the pacer takes off
// about half a millisecond of timer lateness per frame (BenchmarkPacer in
// atm: time.Sleep a mean 0.8-0.9 ms late under this load, the pacer
// 0.2-0.4 ms).
func BenchmarkDispenseCycle(b *testing.B) {
	for _, baud := range []int{9600, 115200} {
		// Calibrate the bytes and journal records of one cycle.
		a := newBenchATM(b, baud)
		ctx := context.Background()
		a.cycle(ctx)
		before, recsBefore := a.lineBytes(), a.journalRecords(b)
		const calib = 3
		for range calib {
			if err := a.cycle(ctx); err != nil {
				b.Fatal(err)
			}
		}
		cycleBytes := (a.lineBytes() - before) / calib
		cycleRecs := (a.journalRecords(b) - recsBefore) / calib
		lineSec := float64(cycleBytes) * 10 / float64(baud)

		b.Run(fmt.Sprintf("baud-%d/raw", baud), func(b *testing.B) { simatm.BenchLine(b, baud, cycleBytes) })
		b.Run(fmt.Sprintf("baud-%d/journal", baud), func(b *testing.B) {
			f, err := os.OpenFile(filepath.Join(b.TempDir(), "journal"), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			rec := []byte(`{"op":"pick","txn":"0123456789abcdef0123456789abcdef","cas":1}` + "\n")
			b.ResetTimer()
			for range b.N {
				for range cycleRecs {
					if _, err := f.Write(rec); err != nil {
						b.Fatal(err)
					}
					if err := f.Sync(); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(cycleRecs), "records/op")
		})
		b.Run(fmt.Sprintf("baud-%d/egate", baud), func(b *testing.B) {
			benchCycles(b, a, lineSec)
		})
		b.Run(fmt.Sprintf("baud-%d/egate-uart", baud), func(b *testing.B) {
			u := newBenchATMIn(b, baud, b.TempDir(), true)
			if err := u.cycle(ctx); err != nil {
				b.Fatal(err)
			}
			benchCycles(b, u, lineSec)
		})
		b.Run(fmt.Sprintf("baud-%d/egate-journal-tmpfs", baud), func(b *testing.B) {
			if st, err := os.Stat("/dev/shm"); err != nil || !st.IsDir() {
				b.Skip("no /dev/shm")
			}
			dir, err := os.MkdirTemp("/dev/shm", "egate-bench-")
			if err != nil {
				b.Skip(err)
			}
			b.Cleanup(func() { os.RemoveAll(dir) })
			t := newBenchATMIn(b, baud, dir, false)
			if err := t.cycle(ctx); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			benchCycles(b, t, lineSec)
		})
	}
}

// benchCycles runs b.N dispense cycles on a and reports their line bytes
// and the line's own time.
func benchCycles(b *testing.B, a *benchATM, lineSec float64) {
	ctx := context.Background()
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
