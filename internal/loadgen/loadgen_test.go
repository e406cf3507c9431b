package loadgen

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheckTarget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, url string
		ok        bool
	}{
		{"IPv4 loopback", "http://127.0.0.1:8080", true},
		{"elsewhere in 127/8", "http://127.3.2.1:8080/", true},
		{"IPv6 loopback", "http://[::1]:8080", true},
		{"localhost", "https://localhost:8443", true},
		{"a private address", "http://10.0.0.1:8080", false},
		{"a public name", "http://example.com", false},
		{"unspecified", "http://0.0.0.0:8080", false},
		{"a name ending in localhost", "http://evil.localhost.example.com", false},
		{"no scheme", "127.0.0.1:8080", false},
		{"another scheme", "ftp://127.0.0.1/", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := CheckTarget(tc.url)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckTarget(%q) = %v, want ok %v", tc.url, err, tc.ok)
			}
			if !tc.ok && strings.HasPrefix(tc.url, "http") && !errors.Is(err, ErrNotLoopback) {
				t.Fatalf("error %v does not wrap ErrNotLoopback", err)
			}
		})
	}
}

// The client's dialer refuses any address but loopback, so a redirect or a
// URL built from a server's answer cannot send traffic elsewhere.
func TestClientDialsLoopbackOnly(t *testing.T) {
	t.Parallel()
	c := Client(1)
	for _, u := range []string{"http://192.0.2.1/", "http://[2001:db8::1]/"} {
		_, err := c.Get(u)
		if !errors.Is(err, ErrNotLoopback) {
			t.Fatalf("GET %s: %v, want ErrNotLoopback", u, err)
		}
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(r.RemoteAddr))
	}))
	defer ts.Close()
	resp, err := ClientFrom(WorkerAddr(3), 1).Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64)
	n, _ := resp.Body.Read(buf)
	host, _, _ := net.SplitHostPort(string(buf[:n]))
	if host != "127.0.1.4" {
		t.Fatalf("worker 3 came from %q, want 127.0.1.4", host)
	}
}

func TestParseCountsAndMismatch(t *testing.T) {
	t.Parallel()
	text := `# HELP egate_http_requests_total HTTP requests by method and status code.
# TYPE egate_http_requests_total counter
egate_http_requests_total{code="200",method="GET"} 41
egate_http_requests_total{code="302",method="GET"} 80
egate_http_requests_total{code="200",method="POST"} 1.6e+02
egate_http_request_duration_seconds_bucket{method="GET",le="0.0005"} 3
`
	got, err := ParseCounts(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != "GET 200=41 GET 302=80 POST 200=160" {
		t.Fatalf("parsed %v", got)
	}
	before := Counts{"GET 200": 40, "GET 302": 80}
	d := Delta(before, got)
	if d.String() != "GET 200=1 POST 200=160" {
		t.Fatalf("delta %v", d)
	}
	if mm := Mismatch(Counts{"GET 200": 1, "POST 200": 160}, d); len(mm) != 0 {
		t.Fatalf("equal counts mismatch: %v", mm)
	}
	mm := Mismatch(Counts{"GET 200": 1, "POST 200": 159, "POST 400": 1}, d)
	if len(mm) != 2 || !strings.Contains(mm[0], "POST 200: sent 159, /metrics 160") || !strings.Contains(mm[1], "POST 400: sent 1, /metrics 0") {
		t.Fatalf("mismatch %v", mm)
	}
	if _, err := ParseCounts(strings.NewReader(`egate_http_requests_total{code="200",method="GET"} many`)); err == nil {
		t.Fatal("a malformed sample parsed")
	}
}

func TestRunIsBounded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		lim      Limits
		opTime   time.Duration
		wantDone int // exact, or -1: fewer than lim.Requests
	}{
		{"by requests", Limits{Requests: 37, Duration: time.Minute, Concurrency: 4}, 0, 37},
		{"by duration", Limits{Requests: 1 << 30, Duration: 200 * time.Millisecond, Concurrency: 2}, 5 * time.Millisecond, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int64
			res := Run(context.Background(), "x", tc.lim, func(ctx context.Context, w int) error {
				if w < 0 || w >= tc.lim.Concurrency {
					t.Errorf("worker %d", w)
				}
				n := calls.Add(1)
				time.Sleep(tc.opTime) // stands in for the work of an operation
				if n%10 == 0 {
					return &Failure{Status: 400, Code: "bad"}
				}
				return nil
			})
			if int64(res.Done) != calls.Load() {
				t.Fatalf("done %d, op called %d times", res.Done, calls.Load())
			}
			if tc.wantDone >= 0 && res.Done != tc.wantDone {
				t.Fatalf("done %d, want %d", res.Done, tc.wantDone)
			}
			if tc.wantDone < 0 && (res.Done == 0 || res.Elapsed > 10*tc.lim.Duration) {
				t.Fatalf("done %d in %s", res.Done, res.Elapsed)
			}
			if res.Failures["400 bad"] != res.Done/10 || res.Errors() != res.Done/10 {
				t.Fatalf("failures %v of %d", res.Failures, res.Done)
			}
			if res.Percentile(50) > res.Percentile(99) || res.Percentile(99) <= 0 || res.Throughput() <= 0 {
				t.Fatalf("p50 %s p99 %s %f/s", res.Percentile(50), res.Percentile(99), res.Throughput())
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	r := &Result{}
	for i := 1; i <= 100; i++ {
		r.latencies = append(r.latencies, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {90, 90 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := r.Percentile(tc.p); got != tc.want {
			t.Errorf("p%v = %s, want %s", tc.p, got, tc.want)
		}
	}
	if (&Result{}).Percentile(50) != 0 {
		t.Error("no latencies: want 0")
	}
}

func TestLimitsValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		l    Limits
		ok   bool
	}{
		{"bounded", Limits{1, time.Second, 1}, true},
		{"no requests", Limits{0, time.Second, 1}, false},
		{"no duration", Limits{1, 0, 1}, false},
		{"no clients", Limits{1, time.Second, 0}, false},
		{"too many clients", Limits{1, time.Second, 257}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := tc.l.Validate(); (err == nil) != tc.ok {
				t.Fatalf("%+v: %v", tc.l, err)
			}
		})
	}
}

// A failed step is counted under the server's own error code, whichever of
// egate's error shapes carries it.
func TestFailureCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		p    page
		want string
	}{
		{"a login page's data-code", page{status: 400, body: `<p class="error" data-code="captcha_required">…</p>`}, "400 captcha_required"},
		{"an OAuth error", page{status: 400, body: `{"error":"invalid_grant","error_description":"…"}`}, "400 invalid_grant"},
		{"egate's API error", page{status: 401, body: `{"error":{"code":"unauthorized","message":"…"}}`}, "401 unauthorized"},
		{"nothing recognisable", page{status: 200, body: `<html>`}, "200 no_token_page"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := failureKey(failure(tc.p, "no_token_page")); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCheckDatabase(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, driver, dsn string
		ok                bool
	}{
		{"a SQLite file", "sqlite", "/var/lib/egate/egate.db", true},
		{"PostgreSQL on loopback", "postgres", "postgres://egate@127.0.0.1:5432/egate?sslmode=disable", true},
		{"PostgreSQL on localhost", "postgres", "postgresql://egate@localhost/egate", true},
		{"PostgreSQL over a Unix socket", "postgres", "postgres:///egate?host=/var/run/postgresql", true},
		{"key=value on loopback", "postgres", "host=127.0.0.1 dbname=egate", true},
		{"PostgreSQL elsewhere", "postgres", "postgres://egate@db.bank.example:5432/egate", false},
		{"PostgreSQL on a private address", "postgres", "postgres://egate@10.1.2.3/egate", false},
		{"key=value elsewhere", "postgres", "host=10.1.2.3 dbname=egate", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := CheckDatabase(tc.driver, tc.dsn)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrNotLoopback)) {
				t.Fatalf("CheckDatabase(%s, %q) = %v, want ok %v", tc.driver, tc.dsn, err, tc.ok)
			}
		})
	}
}
