package agent

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/egate-bank/egate/atm"
	"github.com/egate-bank/egate/internal/testenv"
	simatm "github.com/egate-bank/egate/simulators/atm"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"none", Config{}, true},
		{"one", Config{ATMs: []ATMConfig{{"ATM-1", "/dev/ttyS0", 115200}}}, true},
		{"bad id", Config{ATMs: []ATMConfig{{"ATM 1", "/dev/ttyS0", 115200}}}, false},
		{"duplicate id", Config{ATMs: []ATMConfig{{"A", "/dev/ttyS0", 9600}, {"A", "/dev/ttyS1", 9600}}}, false},
		{"one port two owners", Config{ATMs: []ATMConfig{{"A", "/dev/ttyS0", 9600}, {"B", "/dev/ttyS0", 9600}}}, false},
		{"odd baud", Config{ATMs: []ATMConfig{{"A", "/dev/ttyS0", 1234}}}, false},
		{"no port", Config{ATMs: []ATMConfig{{"A", "", 9600}}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// The agent owns a simulated ATM on a pseudo-terminal, opened through
// tarm/serial like a real port: it reports its status over HTTP, counts the
// events of a dispense, and says not-ready for an ATM whose line is dead.
func TestAgentOverPTY(t *testing.T) {
	if _, err := simatm.OpenPTY(); err != nil {
		testenv.Missing(t, "a pseudo-terminal", err.Error())
	}
	ctx := context.Background()
	sim, err := simatm.StartPTY(ctx, simatm.Config{
		Cassettes: simatm.DefaultCassettes(), JournalPath: filepath.Join(t.TempDir(), "journal"),
		Link: atm.LinkConfig{Baud: 115200}, TakeAfter: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Stop()

	reg := prometheus.NewRegistry()
	a, err := New(Config{ATMs: []ATMConfig{
		{ID: "ATM-0101", Port: sim.TTYName, Baud: 115200},
		{ID: "ATM-DEAD", Port: filepath.Join(t.TempDir(), "no-such-tty"), Baud: 9600},
	}}, SerialLines, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()

	var st ATMStatus
	resp, err := http.Get(srv.URL + "/atms/ATM-0101")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if !st.Up || len(st.Cassettes) != 4 || st.Cassettes[0].Count != 500 || st.Line.FramesOut < 2 || st.Line.FramesIn < 2 {
		t.Fatalf("status of the live ATM: %+v", st)
	}
	if st.Pacing != "egate" { // a pty: the agent paces the line itself
		t.Fatalf("pacing on a pseudo-terminal: %q, want egate", st.Pacing)
	}
	resp, _ = http.Get(srv.URL + "/atms/ATM-0202")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown ATM: %d", resp.StatusCode)
	}
	resp.Body.Close()
	if err := a.Check(ctx); err == nil || !strings.Contains(err.Error(), "ATM-DEAD") {
		t.Fatalf("readiness with a dead line: %v", err)
	}

	// A dispense through the agent's driver: 300 yuan as 3 × 100.
	d, _ := a.Driver("ATM-0101")
	var id atm.TxnID
	rand.Read(id[:])
	rec, err := d.Dispense(ctx, id, 30000, []atm.Notes{{Cassette: 1, Count: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if _, presented, _ := rec.Totals(); presented != 3 {
		t.Fatalf("presented %d notes, want 3: %+v", presented, rec)
	}
	deadline := time.After(10 * time.Second)
	for !a.saw("ATM-0101", "taken") {
		select {
		case <-deadline:
			t.Fatalf("no taken event counted; history %+v", a.history)
		case <-time.After(10 * time.Millisecond):
		}
	}
	resp, _ = http.Get(srv.URL + "/atms/ATM-0101")
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Cassettes[0].Count != 497 || len(st.Events) == 0 {
		t.Fatalf("after dispense: %+v", st)
	}

	// The line counters are exported per ATM: the live ATM's line carried
	// frames both ways; the dead one never opened.
	lines := map[string]map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "egate_agent_atm_line_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			atmID := m.GetLabel()[0].GetValue()
			if lines[atmID] == nil {
				lines[atmID] = map[string]float64{}
			}
			lines[atmID][mf.GetName()] = m.GetCounter().GetValue()
		}
	}
	live, dead := lines["ATM-0101"], lines["ATM-DEAD"]
	if len(live) != 8 || live["egate_agent_atm_line_frames_sent_total"] < 3 || live["egate_agent_atm_line_frames_received_total"] < 3 {
		t.Fatalf("line counters of the live ATM: %v", live)
	}
	if len(dead) != 8 || dead["egate_agent_atm_line_frames_sent_total"] != 0 {
		t.Fatalf("line counters of the dead ATM: %v", dead)
	}
}

func (a *Agent) saw(id, kind string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range a.history[id] {
		if e.Kind == kind {
			return true
		}
	}
	return false
}

// TestAgentCloseEndsDrains: Close returns and, when it does, every goroutine
// draining a driver's events has ended.
func TestAgentCloseEndsDrains(t *testing.T) {
	dir := t.TempDir()
	a, err := New(Config{ATMs: []ATMConfig{
		{ID: "ATM-0001", Port: filepath.Join(dir, "tty-a"), Baud: 9600},
		{ID: "ATM-0002", Port: filepath.Join(dir, "tty-b"), Baud: 9600},
	}}, SerialLines, nil)
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- a.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Agent.Close did not return")
	}
	// Close has waited for every drain to call wg.Done; a drain goroutine
	// may still be runnable between that deferred call and its return, so
	// give the scheduler of a loaded machine a moment to retire it. One
	// still blocked (in range over Events, or never waited for) stays.
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(10 * time.Second)
	for {
		stacks := string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "agent.(*Agent).drain") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a drain goroutine outlived Close by 10 s:\n%s", stacks)
		}
		time.Sleep(10 * time.Millisecond) // goroutine exit; no channel says it
	}
}

// TestNewLeavesRegistryOnFailure: when one of the agent's collectors cannot
// be registered, New fails and unregisters the ones it had registered, so
// the registry is as it was.
func TestNewLeavesRegistryOnFailure(t *testing.T) {
	reg := prometheus.NewRegistry()
	clash := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "egate_agent_atm_line_frames_sent_total", Help: "x"}, []string{"atm"})
	reg.MustRegister(clash)
	cfg := Config{ATMs: []ATMConfig{{ID: "ATM-1", Port: filepath.Join(t.TempDir(), "tty"), Baud: 9600}}}
	if _, err := New(cfg, SerialLines, reg); err == nil {
		t.Fatal("New registered a collector that clashes")
	}
	events := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "egate_agent_atm_events_total", Help: "ATM events (presented, taken, retracted) seen by the agent."}, []string{"atm", "kind"})
	if err := reg.Register(events); err != nil {
		t.Fatalf("the failed New left its events counter registered: %v", err)
	}
}
