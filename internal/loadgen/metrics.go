package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// requestsMetric is the counter internal/httpx keeps of every request a
// server answered, labelled by method and status code.
const requestsMetric = "egate_http_requests_total"

// Counts are HTTP requests by "METHOD STATUS" (e.g. "POST 200").
type Counts map[string]int

// Tally counts the requests the generator sent to the target, by method
// and the status it got, as the server's counter labels them.
type Tally struct {
	mu sync.Mutex
	c  Counts
}

// NewTally makes an empty tally.
func NewTally() *Tally { return &Tally{c: Counts{}} }

// Add counts one answered request.
func (t *Tally) Add(method string, status int) {
	t.mu.Lock()
	t.c[method+" "+strconv.Itoa(status)]++
	t.mu.Unlock()
}

// Counts returns a copy of the tally.
func (t *Tally) Counts() Counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(Counts, len(t.c))
	for k, v := range t.c {
		out[k] = v
	}
	return out
}

// Scrape reads egate_http_requests_total from the target's /metrics.
func Scrape(ctx context.Context, c *http.Client, metricsURL string) (Counts, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("loadgen: reading %s: %w", metricsURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("loadgen: %s answered %d", metricsURL, resp.StatusCode)
	}
	return ParseCounts(resp.Body)
}

// ParseCounts reads egate_http_requests_total{code="…",method="…"} samples
// from the Prometheus text format.
func ParseCounts(r io.Reader) (Counts, error) {
	out := Counts{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, requestsMetric+"{") {
			continue
		}
		end := strings.LastIndexByte(line, '}')
		if end < 0 {
			return nil, fmt.Errorf("loadgen: malformed metrics line %q", line)
		}
		labels := map[string]string{}
		for _, kv := range strings.Split(line[len(requestsMetric)+1:end], ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			labels[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
		}
		val, err := strconv.ParseFloat(strings.Fields(line[end+1:])[0], 64)
		if err != nil || labels["method"] == "" || labels["code"] == "" {
			return nil, fmt.Errorf("loadgen: malformed metrics line %q", line)
		}
		out[labels["method"]+" "+labels["code"]] += int(val)
	}
	return out, sc.Err()
}

// Delta is after − before, without the zero entries.
func Delta(before, after Counts) Counts {
	out := Counts{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	for k, v := range before {
		if _, ok := after[k]; !ok && v != 0 {
			out[k] = -v
		}
	}
	return out
}

// Mismatch lists the keys where sent and seen differ, as "KEY sent N,
// /metrics M"; empty when they agree.
func Mismatch(sent, seen Counts) []string {
	keys := map[string]bool{}
	for k := range sent {
		keys[k] = true
	}
	for k := range seen {
		keys[k] = true
	}
	var out []string
	for _, k := range sortedKeys(keys) {
		if sent[k] != seen[k] {
			out = append(out, fmt.Sprintf("%s: sent %d, /metrics %d", k, sent[k], seen[k]))
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// String prints counts as "GET 200=3 POST 200=9".
func (c Counts) String() string {
	keys := map[string]bool{}
	for k := range c {
		keys[k] = true
	}
	var parts []string
	for _, k := range sortedKeys(keys) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, c[k]))
	}
	return strings.Join(parts, " ")
}
