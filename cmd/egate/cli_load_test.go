package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egate-bank/egate/internal/loadgen"
	"github.com/egate-bank/egate/internal/testenv"
)

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// startLoadDemo runs egate demo as a child on free loopback ports, with the
// public OIDC client egate load logs in for, and waits for /readyz. A port
// taken by another process in between means a new try on fresh ports.
func startLoadDemo(t *testing.T, dir string) string {
	t.Helper()
	for try := 1; ; try++ {
		base, retry := tryLoadDemo(t, dir)
		if !retry {
			return base
		}
		if try == 3 {
			t.Fatal("egate demo lost a port to another process three times")
		}
		t.Logf("try %d lost a port to another process; again on fresh ports", try)
	}
}

func tryLoadDemo(t *testing.T, dir string) (base string, retry bool) {
	t.Helper()
	p := []int{freeLoopbackPort(t), freeLoopbackPort(t), freeLoopbackPort(t), freeLoopbackPort(t)}
	cfg := fmt.Sprintf(`log: {level: warn}
http: {listen: 127.0.0.1:%d}
database: {driver: sqlite, dsn: %s/var/egate.db}
demo: {var-dir: %s/var}
platforms:
  ebank: {listen: 127.0.0.1:%d}
  mall: {listen: 127.0.0.1:%d}
  messenger: {listen: 127.0.0.1:%d}
authsvc:
  oidc:
    clients:
      - {id: loadgen, public: true, min-level: 3, redirect-uris: [http://127.0.0.1/load-callback]}
`, p[0], dir, dir, p[1], p[2], p[3])
	if err := os.WriteFile(filepath.Join(dir, "demo.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, egateBin, "demo", "--config", filepath.Join(dir, "demo.yaml"))
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	base = fmt.Sprintf("http://127.0.0.1:%d", p[0])
	deadline := time.Now().Add(90 * time.Second)
	for {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				t.Cleanup(func() { cancel(); <-exited })
				return base, false
			}
		}
		select {
		case err := <-exited:
			cancel()
			if strings.Contains(out.String(), "address already in use") {
				return "", true
			}
			t.Fatalf("egate demo ended: %v\n%s", err, out.String())
		case <-time.After(50 * time.Millisecond): // polling /readyz of another process
		}
		if time.Now().After(deadline) {
			cancel()
			<-exited
			t.Fatalf("egate demo not ready:\n%s", out.String())
		}
	}
}

// A short, bounded egate load against a child egate demo: every operation
// succeeds, each scenario's printed "sent" agrees with its printed /metrics
// delta, and both agree with the test's own scrapes of /metrics around the
// whole run, so the printed counts are the server's.
func TestLoadAgainstDemo(t *testing.T) {
	testenv.NeedCommand(t, "softhsm2-util", "softhsm2")
	dir := t.TempDir()
	base := startLoadDemo(t, dir)
	custFile := filepath.Join(dir, "var", "load-customers.json")
	r := run(t, dir, nil, "load", "seed", "--config", filepath.Join(dir, "var", "egate.yaml"), "--customers", "2", "--customers-file", custFile)
	if r.code != 0 || !strings.Contains(r.stdout, "2 load-test customers") {
		t.Fatalf("seed: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if st, err := os.Stat(custFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("customers file: %v %v", st, err)
	}

	scrape := func() loadgen.Counts {
		t.Helper()
		c, err := loadgen.Scrape(context.Background(), http.DefaultClient, base+"/metrics")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	before := scrape()
	const n = 50
	r = run(t, dir, nil, "load", "--target", base, "--customers-file", custFile, "--backend-secret-file", filepath.Join(dir, "var", "demo-backend-secret"),
		"--requests", fmt.Sprint(n), "--duration", "2m", "--concurrency", "2", "--max-error-rate", "0")
	if r.code != 0 {
		t.Fatalf("egate load: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	total := scrape()
	for _, sc := range loadgen.Scenarios {
		if !regexp.MustCompile(`(?m)^` + sc + `\s+` + fmt.Sprint(n) + ` ops\s+0 errors\s+[\d.]+ ops/s\s+p50 .*p99 `).MatchString(r.stdout) {
			t.Fatalf("no line for %d %s operations without errors:\n%s", n, sc, r.stdout)
		}
	}
	sentRE := regexp.MustCompile(`(?m)^\s+sent\s+(.*) \(with the scrape`)
	seenRE := regexp.MustCompile(`(?m)^\s+/metrics\s+(.*) \(egate_http_requests_total delta\)`)
	sents, seens := sentRE.FindAllStringSubmatch(r.stdout, -1), seenRE.FindAllStringSubmatch(r.stdout, -1)
	if len(sents) != 3 || len(seens) != 3 {
		t.Fatalf("want 3 sent and 3 /metrics lines:\n%s", r.stdout)
	}
	countRE := regexp.MustCompile(`([A-Z]+ \d{3})=(\d+)`)
	sum := loadgen.Counts{}
	for i := range sents {
		if sents[i][1] != seens[i][1] {
			t.Fatalf("scenario %d: sent %q, /metrics %q", i, sents[i][1], seens[i][1])
		}
		for _, m := range countRE.FindAllStringSubmatch(sents[i][1], -1) {
			c, _ := strconv.Atoi(m[2])
			sum[m[1]] += c
		}
	}
	// The test's own scrapes: the first is counted after it answered, and
	// egate load's last scrape is in no scenario's line.
	sum["GET 200"] += 2
	if mm := loadgen.Mismatch(sum, loadgen.Delta(before, total)); len(mm) != 0 {
		t.Fatalf("the printed counts disagree with /metrics around the run: %v\n%s", mm, r.stdout)
	}
	// Logins: 4 POSTs answered 200 (name, password, token choice) and 303
	// (the token page's answer) and the exchange: the printed numbers are
	// those of n whole logins.
	if !strings.Contains(sents[0][1], fmt.Sprintf("POST 303=%d", n)) || !strings.Contains(sents[1][1], fmt.Sprintf("POST 200=%d", n)) {
		t.Fatalf("login and refresh counts:\n%s", r.stdout)
	}

	// The counters were kept: a second run continues the tokens' codes.
	r = run(t, dir, nil, "load", "--target", base, "--customers-file", custFile, "--scenarios", "otp", "--backend-secret-file", filepath.Join(dir, "var", "demo-backend-secret"),
		"--requests", "10", "--concurrency", "2", "--max-error-rate", "0")
	if r.code != 0 {
		t.Fatalf("second run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestLoadBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "c.json"), []byte(`{"password":"x","customers":[{"login":"a"}]}`), 0o600)
	for _, tc := range []struct {
		name     string
		args     []string
		mentions []string
	}{
		{"a target beyond loopback", []string{"load", "--target", "http://10.1.2.3:8080"}, []string{"loopback", "10.1.2.3"}},
		{"a public name", []string{"load", "--target", "http://example.com"}, []string{"loopback"}},
		{"unbounded", []string{"load", "--target", "http://127.0.0.1:1", "--requests", "0"}, []string{"--requests"}},
		{"no customers file", []string{"load", "--target", "http://127.0.0.1:1", "--customers-file", "nope.json"}, []string{"egate load seed"}},
		{"more clients than customers", []string{"load", "--target", "http://127.0.0.1:1", "--customers-file", "c.json", "--scenarios", "login", "--concurrency", "2"}, []string{"--concurrency"}},
		{"unknown scenario", []string{"load", "--target", "http://127.0.0.1:1", "--customers-file", "c.json", "--scenarios", "fly", "--concurrency", "1"}, []string{"fly"}},
		{"seed: too many", []string{"load", "seed", "--customers", "0"}, []string{"--customers"}},
		{"seed: a database beyond loopback", []string{"load", "seed", "--db", "postgres://egate@10.1.2.3/egate"}, []string{"10.1.2.3", "on this machine"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			oneLine(t, run(t, dir, nil, tc.args...), tc.mentions...)
		})
	}
}
