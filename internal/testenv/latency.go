package testenv

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// Latencies collects the durations of a benchmark's operations from
// parallel goroutines and reports their percentiles, so that a throughput
// reached with many operations in flight says what each one waited.
type Latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

// Add records one operation's duration.
func (l *Latencies) Add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// Report reports the median and the 99th percentile, in milliseconds, as
// p50-ms and p99-ms, and forgets them.
func (l *Latencies) Report(b *testing.B) {
	l.mu.Lock()
	d := l.d
	l.d = nil
	l.mu.Unlock()
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Microseconds())/1e3, "p50-ms")
	b.ReportMetric(float64(d[len(d)*99/100].Microseconds())/1e3, "p99-ms")
}
