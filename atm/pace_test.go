package atm

import (
	"fmt"
	"testing"
	"time"
)

// TestPacer: a paced write never leaves before its line time (a sleep is
// never short), and closing the link's pacer ends a sleep in progress, so
// that a closed link does not sit out a long frame's line time.
func TestPacer(t *testing.T) {
	t.Parallel()
	p := newPacer()
	if p == nil {
		t.Skip("no timerfd: the pacer is time.Sleep")
	}
	for _, d := range []time.Duration{80 * time.Microsecond, 700 * time.Microsecond, 2500 * time.Microsecond} {
		t.Run(d.String(), func(t *testing.T) {
			for range 5 {
				start := time.Now()
				p.sleep(d)
				if got := time.Since(start); got < d {
					t.Fatalf("slept %v, want at least %v", got, d)
				}
			}
		})
	}
	t.Run("close", func(t *testing.T) {
		done := make(chan struct{})
		go func() {
			p.sleep(time.Hour)
			close(done)
		}()
		// The sleeper may not have armed the timer yet; close either
		// ends its read or makes its arming fail.
		p.close()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("a closed pacer still sleeps")
		}
	})
}

// BenchmarkPacer: how late a paced wait ends, time.Sleep against the
// pacer, for an ACK's line time at 115200 baud (8 bytes, 0.7 ms) and a
// reply's (65 bytes, 5.6 ms); late-ns/op is the mean overshoot.
func BenchmarkPacer(b *testing.B) {
	p := newPacer()
	if p == nil {
		b.Skip("no timerfd")
	}
	b.Cleanup(p.close)
	for _, d := range []time.Duration{700 * time.Microsecond, 5600 * time.Microsecond} {
		for _, w := range []struct {
			name  string
			sleep func(time.Duration)
		}{{"time.Sleep", time.Sleep}, {"pacer", p.sleep}} {
			b.Run(fmt.Sprintf("%v/%s", d, w.name), func(b *testing.B) {
				var late time.Duration
				for b.Loop() {
					start := time.Now()
					w.sleep(d)
					late += time.Since(start) - d
				}
				b.ReportMetric(float64(late)/float64(b.N), "late-ns/op")
			})
		}
	}
}
