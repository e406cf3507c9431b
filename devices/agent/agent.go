// Package agent is the branch device agent: the one process in a branch or an
// ATM cabinet that owns the local hardware — today the ATMs on serial lines —
// and exposes it to the data centre.
//
// Concurrency: each ATM has one atm.Driver, the one owner of its serial port;
// the agent never opens a port twice. A goroutine per ATM drains the
// driver's events into counters and a short history. HTTP handlers only ask
// the drivers for their status (STATUS has no side effect), so a health
// probe can never move money.
//
// The data centre reaches the ATMs only through the Uplink (uplink.go): the
// agent dials out over mutual TLS with a client key on its PKCS#11 token
// (token.go) and the agent gateway (atm/gateway) sends commands back over
// that connection (protocol: devices/agent/dclink). The agent opens no
// listener for the data centre; its HTTP listener serves local status,
// health and metrics only. The drivers do not depend on the link: a link
// loss leaves every ATM's state, and every command in flight, as it was.
//
// Seams: an ATM's line comes from an Opener (SerialLines in production; the
// tests give a pseudo-terminal with simulators/atm on its other end, the
// same bytes through tarm/serial), the client key is a crypto.Signer on a
// PKCS#11 token (package pkcs11token, SoftHSM in development), and the
// link's dialer is a function (DialTLS), so a test can cut it.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/egate-bank/egate/atm"
	"github.com/egate-bank/egate/internal/httpx"
)

// ATMConfig is one ATM on a serial line.
type ATMConfig struct {
	ID   string `yaml:"id"`   // the bank's terminal id, e.g. ATM-0101
	Port string `yaml:"port"` // /dev/ttyS0, /dev/ttyUSB0, a pty
	Baud int    `yaml:"baud"` // 9600 … 115200
}

// Config is the agent section.
type Config struct {
	Listen string      `yaml:"listen"`
	ATMs   []ATMConfig `yaml:"atms"`

	// Branch is the branch this agent serves; its certificate's CN must be
	// the same (egate admin agent enroll --branch).
	Branch string `yaml:"branch"`
	// DatacentreURL is where the agent dials out to the agent gateway:
	// tls://host:port. Empty: no data-centre link (the agent only serves
	// its local status API).
	DatacentreURL string `yaml:"datacentre-url"`
	// DatacentreCA is a PEM file with the bank's root CA certificate, the
	// only anchor the gateway's server certificate is verified against.
	DatacentreCA string `yaml:"datacentre-ca"`
	// Token holds the agent's TLS client key (and its certificate).
	Token TokenConfig `yaml:"token"`
	// ReconnectMin and ReconnectMax bound the exponential backoff (with
	// jitter) between attempts to reach the data centre.
	ReconnectMin time.Duration `yaml:"reconnect-min"`
	ReconnectMax time.Duration `yaml:"reconnect-max"`
}

// ErrConfig wraps configuration errors.
var ErrConfig = errors.New("agent config")

var idRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// CheckBranch checks a branch id: 1–32 letters, digits, - or _.
func CheckBranch(id string) error {
	if !idRE.MatchString(id) {
		return fmt.Errorf("%w: branch %q: 1–32 letters, digits, - or _", ErrConfig, id)
	}
	return nil
}

// Validate checks the section.
func (c Config) Validate() error {
	ports := map[string]bool{}
	ids := map[string]bool{}
	for i, a := range c.ATMs {
		if !idRE.MatchString(a.ID) {
			return fmt.Errorf("%w: atms[%d].id %q: 1–32 letters, digits, - or _", ErrConfig, i, a.ID)
		}
		if ids[a.ID] {
			return fmt.Errorf("%w: atms[%d]: id %s appears twice", ErrConfig, i, a.ID)
		}
		if a.Port == "" {
			return fmt.Errorf("%w: atms[%d] (%s): port is empty", ErrConfig, i, a.ID)
		}
		if ports[a.Port] {
			return fmt.Errorf("%w: atms[%d] (%s): port %s is given to two ATMs; one owner per port", ErrConfig, i, a.ID, a.Port)
		}
		switch a.Baud {
		case 9600, 19200, 38400, 57600, 115200:
		default:
			return fmt.Errorf("%w: atms[%d] (%s): baud %d: use 9600, 19200, 38400, 57600 or 115200", ErrConfig, i, a.ID, a.Baud)
		}
		ids[a.ID], ports[a.Port] = true, true
	}
	return c.validateLink()
}

// Agent owns the branch's ATMs.
type Agent struct {
	order   []string
	drivers map[string]*atm.Driver
	cfgs    map[string]ATMConfig

	mu      sync.Mutex
	history map[string][]EventInfo
	sink    func(id string, ev atm.Event) // the data-centre link's, when there is one

	events *prometheus.CounterVec
	wg     sync.WaitGroup
}

// EventInfo is one ATM event as the agent saw it.
type EventInfo struct {
	At       time.Time `json:"at"`
	Kind     string    `json:"kind"`
	Txn      string    `json:"txn"`
	Advanced bool      `json:"advanced"`
}

// Opener opens an ATM's line; atm.SerialOpener in production.
type Opener func(c ATMConfig) atm.Opener

// SerialLines opens each ATM's port through tarm/serial.
func SerialLines(c ATMConfig) atm.Opener { return atm.SerialOpener(c.Port, c.Baud) }

// New makes the agent; lines are opened lazily by the drivers. reg may be nil.
func New(cfg Config, open Opener, reg prometheus.Registerer) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Agent{drivers: map[string]*atm.Driver{}, cfgs: map[string]ATMConfig{}, history: map[string][]EventInfo{}}
	a.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "egate_agent_atm_events_total", Help: "ATM events (presented, taken, retracted) seen by the agent.",
	}, []string{"atm", "kind"})
	for _, c := range cfg.ATMs {
		d := atm.NewDriver(atm.DriverConfig{Open: open(c), Link: atm.LinkConfig{Baud: c.Baud}})
		a.order = append(a.order, c.ID)
		a.drivers[c.ID], a.cfgs[c.ID] = d, c
		a.wg.Add(1)
		go a.drain(c.ID, d)
	}
	if reg != nil {
		var done []prometheus.Collector
		for _, col := range []prometheus.Collector{a.events, lineCollector{a}} {
			if err := reg.Register(col); err != nil {
				for _, d := range done { // leave reg as it was
					reg.Unregister(d)
				}
				a.Close()
				return nil, err
			}
			done = append(done, col)
		}
	}
	return a, nil
}

// lineCounters are the serial-line counters the agent exports per ATM,
// summed over reconnects (atm.Driver.LineStats).
var lineCounters = []struct {
	desc *prometheus.Desc
	get  func(atm.LinkCounts) int64
}{
	{lineDesc("frames_sent", "Frames written to the ATM's line, retransmissions included."), func(c atm.LinkCounts) int64 { return c.FramesOut }},
	{lineDesc("frames_received", "Data frames read from the ATM's line."), func(c atm.LinkCounts) int64 { return c.FramesIn }},
	{lineDesc("retransmissions", "Frames the host sent again after a NAK or a missing ACK."), func(c atm.LinkCounts) int64 { return c.Retransmits }},
	{lineDesc("naks_sent", "NAKs the host sent for corrupted frames."), func(c atm.LinkCounts) int64 { return c.NAKsSent }},
	{lineDesc("naks_received", "NAKs the ATM sent for the host's frames."), func(c atm.LinkCounts) int64 { return c.NAKsReceived }},
	{lineDesc("duplicates", "Duplicate frames received (answered from the reply cache)."), func(c atm.LinkCounts) int64 { return c.Duplicates }},
	{lineDesc("garbage_bytes", "Bytes skipped while resynchronising on the line."), func(c atm.LinkCounts) int64 { return c.Garbage }},
	{lineDesc("bad_crc", "Frames dropped for a CRC mismatch."), func(c atm.LinkCounts) int64 { return c.BadCRC }},
}

func lineDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("egate_agent_atm_line_"+name+"_total", help, []string{"atm"}, nil)
}

// lineCollector reads the drivers' line statistics at scrape time.
type lineCollector struct{ a *Agent }

func (c lineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range lineCounters {
		ch <- m.desc
	}
}

func (c lineCollector) Collect(ch chan<- prometheus.Metric) {
	for _, id := range c.a.order {
		st := c.a.drivers[id].LineStats()
		for _, m := range lineCounters {
			ch <- prometheus.MustNewConstMetric(m.desc, prometheus.CounterValue, float64(m.get(st)), id)
		}
	}
}

var kindNames = map[uint8]string{atm.EventPresented: "presented", atm.EventTaken: "taken", atm.EventRetracted: "retracted"}

func (a *Agent) drain(id string, d *atm.Driver) {
	defer a.wg.Done()
	for ev := range d.Events() {
		k := kindNames[ev.Kind]
		if k == "" {
			k = fmt.Sprintf("kind-%d", ev.Kind)
		}
		a.events.WithLabelValues(id, k).Inc()
		a.mu.Lock()
		h := append(a.history[id], EventInfo{At: time.Now().UTC(), Kind: k, Txn: fmt.Sprintf("%x", ev.Record.ID[:]), Advanced: ev.Advanced})
		if len(h) > 50 {
			h = h[len(h)-50:]
		}
		a.history[id] = h
		sink := a.sink
		a.mu.Unlock()
		if sink != nil {
			sink(id, ev)
		}
	}
}

func (a *Agent) setSink(f func(id string, ev atm.Event)) {
	a.mu.Lock()
	a.sink = f
	a.mu.Unlock()
}

// Driver returns the driver of an ATM.
func (a *Agent) Driver(id string) (*atm.Driver, bool) {
	d, ok := a.drivers[id]
	return d, ok
}

// IDs lists the ATMs in config order.
func (a *Agent) IDs() []string { return append([]string(nil), a.order...) }

// Close closes every line and waits for the goroutines that drain the
// drivers' events (each ends when its driver closes its Events channel).
func (a *Agent) Close() error {
	var errs []error
	for _, id := range a.order {
		if err := a.drivers[id].Close(); err != nil && !errors.Is(err, atm.ErrDriverClosed) {
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
		}
	}
	a.wg.Wait()
	return errors.Join(errs...)
}

// ATMStatus is what the agent reports of one ATM.
type ATMStatus struct {
	ID        string          `json:"id"`
	Port      string          `json:"port"`
	Baud      int             `json:"baud"`
	Up        bool            `json:"up"`
	Error     string          `json:"error,omitempty"`
	Shutter   uint8           `json:"shutter,omitempty"`
	AtExit    uint16          `json:"notes_at_exit"`
	RejectBin uint16          `json:"reject_bin"`
	Cassettes []CassetteState `json:"cassettes,omitempty"`
	Events    []EventInfo     `json:"recent_events,omitempty"`
	// Line is the serial line's counters since the agent started, summed
	// over reconnects: retransmissions, NAKs and bad CRCs tell a noisy
	// line from a dead one.
	Line atm.LinkCounts `json:"line"`
	// Pacing says who holds the line's writes to the baud: "egate" (the
	// port is a pseudo-terminal, which moves bytes at memory speed) or
	// "port" (a real UART shifts them out at the baud itself); empty
	// while the line is not open.
	Pacing string `json:"pacing,omitempty"`
}

// CassetteState is one cassette's report.
type CassetteState struct {
	ID       uint8  `json:"id"`
	DenomFen int64  `json:"denomination_fen"`
	Count    uint16 `json:"count"`
	State    uint8  `json:"state"`
}

// Status asks one ATM for its status (a STATUS command: no side effect).
func (a *Agent) Status(ctx context.Context, id string) (ATMStatus, error) {
	d, ok := a.drivers[id]
	if !ok {
		return ATMStatus{}, fmt.Errorf("no ATM %q at this agent", id)
	}
	c := a.cfgs[id]
	st := ATMStatus{ID: id, Port: c.Port, Baud: c.Baud}
	a.mu.Lock()
	st.Events = append([]EventInfo(nil), a.history[id]...)
	a.mu.Unlock()
	s, err := d.Status(ctx)
	st.Line = d.LineStats()
	if paced, open := d.Paced(); open {
		st.Pacing = "port"
		if paced {
			st.Pacing = "egate"
		}
	}
	if err != nil {
		st.Error = err.Error()
		return st, nil
	}
	st.Up, st.Shutter, st.AtExit, st.RejectBin = true, s.Shutter, s.AtExit, s.RejectBin
	for _, cs := range s.Cassettes {
		st.Cassettes = append(st.Cassettes, CassetteState{ID: cs.ID, DenomFen: cs.Denom, Count: cs.Count, State: cs.State})
	}
	return st, nil
}

// Check is a readiness check: every ATM answers STATUS.
func (a *Agent) Check(ctx context.Context) error {
	var down []string
	for _, id := range a.order {
		st, _ := a.Status(ctx, id)
		if !st.Up {
			down = append(down, id+": "+st.Error)
		}
	}
	sort.Strings(down)
	if len(down) > 0 {
		return fmt.Errorf("ATMs not answering: %v", down)
	}
	return nil
}

// Handler serves GET /atms and GET /atms/{id}.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /atms", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		out := []ATMStatus{}
		for _, id := range a.order {
			st, _ := a.Status(ctx, id)
			out = append(out, st)
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"atms": out})
	})
	mux.HandleFunc("GET /atms/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if _, ok := a.drivers[id]; !ok {
			httpx.WriteError(w, r, http.StatusNotFound, "unknown_atm", "no ATM "+id+" at this agent; GET /atms lists them")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		st, _ := a.Status(ctx, id)
		httpx.WriteJSON(w, http.StatusOK, st)
	})
	return mux
}
