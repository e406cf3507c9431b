package simatm

import (
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egate-bank/egate/atm"
)

// BenchLine is the raw baseline of a serial benchmark: n bytes written
// through a pty with the host end opened as a serial port at baud, read at
// the other end, and paced to the baud (a pty delivers at memory speed; the
// line would not), once per b.N. It reports bytes/op and line-s/op (n × 10
// / baud), the line's own minimum for those bytes.
func BenchLine(b *testing.B, baud int, n int64) {
	b.Helper()
	p, err := OpenPTY()
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	port, err := atm.OpenSerial(p.TTYName, baud)
	if err != nil {
		b.Fatal(err)
	}
	defer port.Close()
	buf := make([]byte, n)
	charTime := time.Second * 10 / time.Duration(baud)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := port.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(p.Master, buf); err != nil {
			b.Fatal(err)
		}
		if d := time.Duration(n)*charTime - time.Since(start); d > 0 {
			time.Sleep(d)
		}
	}
	b.ReportMetric(float64(n), "bytes/op")
	b.ReportMetric(float64(n)*10/float64(baud), "line-s/op")
}

// BenchAcross runs b.N operations spread over workers goroutines (one per
// ATM: op(i) runs on worker i, one at a time) and reports their rate under
// unit ("cycles/s", "withdrawals/s"). The first error fails the benchmark.
func BenchAcross(b *testing.B, workers int, unit string, op func(worker int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	b.ResetTimer()
	start := time.Now()
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := op(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), unit)
}
