// Package loadgen drives a running egate (egate demo or egate authsvc) over
// loopback with a bounded number of requests and measures what it gets:
// throughput, latency percentiles, failures by status and error code, and
// the change of the server's own request counters in /metrics, so that a
// person sees the two agree. It is what egate load runs (make load).
//
// It talks to loopback addresses only (127.0.0.0/8 and ::1): a target
// elsewhere is refused before anything is sent, and its dialer refuses any
// other address, redirects included.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNotLoopback reports a target outside 127.0.0.0/8 and ::1.
var ErrNotLoopback = errors.New("loadgen: only loopback targets (127.0.0.0/8, ::1, localhost) are allowed")

// CheckTarget parses base and refuses anything but an http(s) URL on a
// loopback address.
func CheckTarget(base string) (*url.URL, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("loadgen: target %q is not an http:// or https:// URL", base)
	}
	if !loopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("%w: %q", ErrNotLoopback, u.Hostname())
	}
	return u, nil
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Client is an HTTP client whose dialer connects to loopback addresses
// only, whatever a redirect or a resolver says. It never follows redirects:
// the scenarios follow the ones they expect themselves.
func Client(conns int) *http.Client { return ClientFrom(nil, conns) }

// ClientFrom is Client with its IPv4 connections made from src, a loopback
// address of its own (127.0.0.0/8 is all loopback on Linux): the passport
// counts password attempts in flight per client address, as it should, so
// concurrent logins from one address would be asked for a captcha, which
// customers at their own addresses are not. nil uses the kernel's choice.
func ClientFrom(src net.IP, conns int) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	from := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: src}}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if !loopbackHost(host) {
				return nil, fmt.Errorf("%w: %q", ErrNotLoopback, host)
			}
			dial := d
			if ip := net.ParseIP(host); src != nil && ip != nil && ip.To4() != nil {
				dial = from
			}
			c, err := dial.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if ta, ok := c.RemoteAddr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
				c.Close()
				return nil, fmt.Errorf("%w: %v", ErrNotLoopback, c.RemoteAddr())
			}
			return c, nil
		},
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// WorkerAddr is worker w's own loopback source address: 127.0.1.x, …
func WorkerAddr(w int) net.IP {
	return net.IPv4(127, 0, byte(1+w/250), byte(1+w%250))
}

// Limits bound a run: it stops after Requests operations or after
// Duration, whichever comes first, with Concurrency workers.
type Limits struct {
	Requests    int
	Duration    time.Duration
	Concurrency int
}

// Validate checks the limits: a run is always bounded.
func (l Limits) Validate() error {
	switch {
	case l.Requests <= 0:
		return errors.New("loadgen: --requests must be at least 1")
	case l.Duration <= 0:
		return errors.New("loadgen: --duration must be positive")
	case l.Concurrency <= 0 || l.Concurrency > 256:
		return errors.New("loadgen: --concurrency must be 1–256")
	}
	return nil
}

// Failure describes a failed operation: the HTTP status of the step that
// failed (0 for a transport error) and the server's error code, or a short
// word for what the generator found wrong.
type Failure struct {
	Status int
	Code   string
}

func (f *Failure) Error() string { return fmt.Sprintf("%d %s", f.Status, f.Code) }

// Op is one operation of a scenario, run by worker w (0 ≤ w < Concurrency).
// It returns nil or a *Failure (any other error counts as status 0).
type Op func(ctx context.Context, w int) error

// Result is what a run measured.
type Result struct {
	Scenario  string
	Done      int            // operations finished (ok or not)
	Failures  map[string]int // "status code" → count
	Elapsed   time.Duration
	latencies []time.Duration // of successful operations, sorted
}

// Errors is the number of failed operations.
func (r *Result) Errors() int {
	n := 0
	for _, c := range r.Failures {
		n += c
	}
	return n
}

// Throughput is successful operations per second.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(len(r.latencies)) / r.Elapsed.Seconds()
}

// Percentile is the latency at p (0–100) of the successful operations,
// nearest rank; 0 without any.
func (r *Result) Percentile(p float64) time.Duration {
	n := len(r.latencies)
	if n == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(n))) - 1
	return r.latencies[min(max(i, 0), n-1)]
}

// Run runs op with l.Concurrency workers until l.Requests operations have
// started or l.Duration has passed, and waits for the ones under way: an
// operation is never cut off half-way (its requests would then be counted
// by the server and not by the generator), only ctx's end stops one.
func Run(ctx context.Context, scenario string, l Limits, op Op) *Result {
	var (
		next atomic.Int64
		mu   sync.Mutex
		res  = &Result{Scenario: scenario, Failures: map[string]int{}}
		wg   sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(l.Duration)
	for w := range l.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) && next.Add(1) <= int64(l.Requests) {
				t0 := time.Now()
				err := op(ctx, w)
				d := time.Since(t0)
				mu.Lock()
				switch {
				case err == nil:
					res.Done++
					res.latencies = append(res.latencies, d)
				case ctx.Err() != nil:
					// interrupted: not an operation of the run
				default:
					res.Done++
					res.Failures[failureKey(err)]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	slices.Sort(res.latencies)
	return res
}

func failureKey(err error) string {
	var f *Failure
	if errors.As(err, &f) {
		return fmt.Sprintf("%d %s", f.Status, f.Code)
	}
	return "0 transport"
}

// FailureKeys lists the failure kinds, sorted.
func (r *Result) FailureKeys() []string {
	keys := make([]string, 0, len(r.Failures))
	for k := range r.Failures {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Summary is one line for a person.
func (r *Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-8s %6d ops %5d errors %9.1f ops/s  p50 %8s  p90 %8s  p99 %8s  (%s)",
		r.Scenario, r.Done, r.Errors(), r.Throughput(),
		round(r.Percentile(50)), round(r.Percentile(90)), round(r.Percentile(99)), round(r.Elapsed))
	return b.String()
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
