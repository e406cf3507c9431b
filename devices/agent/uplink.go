package agent

// The agent's link to the data centre: the agent dials out over mutual TLS
// (dclink protocol), announces its ATMs, executes the gateway's commands on
// its drivers and forwards the ATMs' events. The link may drop at any time;
// the drivers (and so the ATMs' state) do not depend on it, commands in
// flight run to their end, and their results wait in a cache for the
// gateway to ask again after the reconnect.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/egate-bank/egate/atm"
	"github.com/egate-bank/egate/devices/agent/dclink"
)

func (c Config) validateLink() error {
	if c.ReconnectMin < 0 || c.ReconnectMax < 0 || (c.ReconnectMax != 0 && c.ReconnectMax < c.ReconnectMin) {
		return fmt.Errorf("%w: reconnect-min %s, reconnect-max %s: give 0 < min ≤ max", ErrConfig, c.ReconnectMin, c.ReconnectMax)
	}
	if c.DatacentreURL == "" {
		return nil
	}
	if _, err := c.DatacentreAddr(); err != nil {
		return err
	}
	if !idRE.MatchString(c.Branch) {
		return fmt.Errorf("%w: branch %q: 1–32 letters, digits, - or _ (the branch id in the agent's certificate)", ErrConfig, c.Branch)
	}
	if c.DatacentreCA == "" {
		return fmt.Errorf("%w: datacentre-ca is empty: give the bank root CA's PEM file (egate admin ca export-root)", ErrConfig)
	}
	return c.Token.Validate()
}

// DatacentreAddr is the host:port of DatacentreURL (tls://host:port).
func (c Config) DatacentreAddr() (string, error) {
	u, err := url.Parse(c.DatacentreURL)
	if err != nil || u.Scheme != "tls" || u.Host == "" || u.Path != "" || u.Port() == "" {
		return "", fmt.Errorf("%w: datacentre-url %q: give tls://host:port", ErrConfig, c.DatacentreURL)
	}
	return u.Host, nil
}

// ClientTLS builds the agent's TLS client config: its certificate (key on
// the token), the bank root as the only anchor for the gateway's
// certificate, TLS 1.3.
func (c Config) ClientTLS(cert tls.Certificate) (*tls.Config, error) {
	addr, err := c.DatacentreAddr()
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(addr)
	pemBytes, err := os.ReadFile(c.DatacentreCA)
	if err != nil {
		return nil, fmt.Errorf("%w: datacentre-ca: %w", ErrConfig, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("%w: datacentre-ca %s holds no PEM certificate", ErrConfig, c.DatacentreCA)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS13}, nil
}

// UplinkOptions shape the link.
type UplinkOptions struct {
	// Branch is the branch id the agent announces (its certificate's CN).
	Branch string
	// Dial opens the TLS connection to the gateway (DialTLS in production).
	Dial func(ctx context.Context) (net.Conn, error)
	// ReconnectMin, ReconnectMax bound the backoff: attempt n waits a random
	// time in [d/2, d] with d = min(max, min·2ⁿ); 500ms and 30s when zero.
	ReconnectMin, ReconnectMax time.Duration
	// Rand returns a number in [0,1) for the jitter; math/rand when nil.
	Rand func() float64
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Registerer takes the link's metrics; may be nil.
	Registerer prometheus.Registerer
}

// DialTLS dials addr and completes the TLS handshake.
func DialTLS(addr string, conf *tls.Config) func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 15 * time.Second}, Config: conf}
		return d.DialContext(ctx, "tcp", addr)
	}
}

// RefusedError is the gateway's refusal of this agent.
type RefusedError struct {
	Code    string
	Message string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("the data centre refused this agent (%s): %s", e.Code, e.Message)
}

// Uplink is the agent's link to the data centre. Run it in one goroutine;
// its methods are safe for concurrent use.
type Uplink struct {
	a    *Agent
	opt  UplinkOptions
	rand func() float64

	mu       sync.Mutex
	st       LinkStatus
	conn     *dclink.Conn
	accepted map[string]bool
	cmds     map[string]*cmdEntry
	events   []dclink.Event // waiting for the link (bounded)
	runCtx   context.Context

	firstUp     chan struct{} // closed at the first welcome
	firstUpOnce sync.Once

	executed *prometheus.CounterVec
	connects prometheus.Counter
	up       prometheus.Gauge
}

type cmdEntry struct {
	digest string
	at     time.Time
	done   chan struct{}
	res    *dclink.Msg
}

// LinkStatus is what the agent reports of its data-centre link.
type LinkStatus struct {
	Datacentre string            `json:"datacentre"`
	Branch     string            `json:"branch"`
	Up         bool              `json:"up"`
	Since      time.Time         `json:"since,omitzero"`
	Attempts   int               `json:"attempts"` // failed attempts since the last welcome
	Connects   int               `json:"connects"` // welcomes since start
	LastError  string            `json:"last_error,omitempty"`
	NextTry    time.Time         `json:"next_try,omitzero"`
	Accepted   []string          `json:"accepted_atms,omitempty"`
	Refused    []dclink.Refusal  `json:"refused_atms,omitempty"`
	Executed   map[string]uint64 `json:"commands_executed,omitempty"`
}

const (
	maxQueuedEvents = 1000
	maxCachedCmds   = 10000
	cmdCacheTTL     = 24 * time.Hour
	helloTimeout    = 15 * time.Second
)

// NewUplink makes the agent's link; Run starts it. One per agent.
func NewUplink(a *Agent, datacentre string, opt UplinkOptions) (*Uplink, error) {
	if opt.ReconnectMin == 0 {
		opt.ReconnectMin = 500 * time.Millisecond
	}
	if opt.ReconnectMax == 0 {
		opt.ReconnectMax = 30 * time.Second
	}
	if opt.ReconnectMax < opt.ReconnectMin {
		opt.ReconnectMax = opt.ReconnectMin
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	u := &Uplink{a: a, opt: opt, rand: opt.Rand, cmds: map[string]*cmdEntry{}, accepted: map[string]bool{}, firstUp: make(chan struct{})}
	if u.rand == nil {
		u.rand = rand.Float64
	}
	u.st = LinkStatus{Datacentre: datacentre, Branch: opt.Branch, Executed: map[string]uint64{}}
	u.executed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "egate_agent_dc_commands_executed_total", Help: "Data-centre commands executed on an ATM (a re-sent command id is answered from the cache, not counted)."}, []string{"op"})
	u.connects = prometheus.NewCounter(prometheus.CounterOpts{Name: "egate_agent_dc_connects_total", Help: "Times the data centre welcomed this agent."})
	u.up = prometheus.NewGauge(prometheus.GaugeOpts{Name: "egate_agent_dc_link_up", Help: "1 while the data-centre link is up."})
	if opt.Registerer != nil {
		for _, c := range []prometheus.Collector{u.executed, u.connects, u.up} {
			if err := opt.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	a.setSink(u.forward)
	return u, nil
}

// FirstUp is closed when the data centre welcomes the agent for the first
// time.
func (u *Uplink) FirstUp() <-chan struct{} { return u.firstUp }

// Status returns the link's state.
func (u *Uplink) Status() LinkStatus {
	u.mu.Lock()
	defer u.mu.Unlock()
	st := u.st
	st.Accepted = append([]string(nil), u.st.Accepted...)
	st.Refused = append([]dclink.Refusal(nil), u.st.Refused...)
	st.Executed = map[string]uint64{}
	for k, v := range u.st.Executed {
		st.Executed[k] = v
	}
	return st
}

// Check is a readiness check: the link is up and every ATM was accepted.
func (u *Uplink) Check(context.Context) error {
	st := u.Status()
	if !st.Up {
		msg := "data-centre link down"
		if st.LastError != "" {
			msg += ": " + st.LastError
		}
		return errors.New(msg)
	}
	if len(st.Refused) > 0 {
		var r []string
		for _, x := range st.Refused {
			r = append(r, x.ATM+": "+x.Message)
		}
		return fmt.Errorf("the data centre refused ATMs: %s", strings.Join(r, "; "))
	}
	return nil
}

// Run keeps the link up until ctx ends: dial, session, backoff, again.
// Commands already running when ctx ends are given their own deadline
// (they move money; they are not cut by the link), not ctx's.
func (u *Uplink) Run(ctx context.Context) error {
	u.mu.Lock()
	u.runCtx = ctx
	u.mu.Unlock()
	attempt := 0
	for {
		welcomed, err := u.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if welcomed {
			attempt = 0
		}
		d := u.backoff(attempt)
		attempt++
		u.mu.Lock()
		u.st.Up, u.conn = false, nil
		u.st.Attempts = attempt
		if err != nil {
			u.st.LastError = err.Error()
		}
		u.st.NextTry = u.opt.Now().Add(d)
		u.mu.Unlock()
		u.up.Set(0)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// backoff is attempt n's wait: uniform in [d/2, d], d = min(max, min·2ⁿ).
func (u *Uplink) backoff(n int) time.Duration {
	d := u.opt.ReconnectMin
	for i := 0; i < n && d < u.opt.ReconnectMax; i++ {
		d *= 2
	}
	d = min(d, u.opt.ReconnectMax)
	return d/2 + time.Duration(u.rand()*float64(d/2))
}

// session runs one connection; it reports whether the gateway welcomed it.
func (u *Uplink) session(ctx context.Context) (bool, error) {
	nc, err := u.opt.Dial(ctx)
	if err != nil {
		return false, explainDial(err)
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	c := dclink.NewConn(nc)
	if err := c.Write(&dclink.Msg{Type: dclink.TypeHello, Version: dclink.Version, Branch: u.opt.Branch, ATMs: u.a.IDs()}); err != nil {
		return false, explainDial(err)
	}
	nc.SetReadDeadline(time.Now().Add(helloTimeout))
	m, err := c.Read()
	if err != nil {
		return false, explainDial(err)
	}
	switch m.Type {
	case dclink.TypeRefused:
		return false, &RefusedError{Code: m.Code, Message: m.Message}
	case dclink.TypeWelcome:
	default:
		return false, fmt.Errorf("the data centre answered %q to hello", m.Type)
	}
	ping := time.Duration(m.PingMS) * time.Millisecond
	if ping <= 0 {
		ping = 5 * time.Second
	}
	u.mu.Lock()
	u.conn = c
	u.accepted = map[string]bool{}
	for _, id := range m.Accepted {
		u.accepted[id] = true
	}
	u.st.Up, u.st.Since, u.st.Attempts, u.st.LastError, u.st.NextTry = true, u.opt.Now(), 0, "", time.Time{}
	u.st.Connects++
	u.st.Accepted, u.st.Refused = m.Accepted, m.Refused
	queued := u.events
	u.events = nil
	u.mu.Unlock()
	u.connects.Inc()
	u.up.Set(1)
	u.firstUpOnce.Do(func() { close(u.firstUp) })
	for i := range queued {
		if err := c.Write(&dclink.Msg{Type: dclink.TypeEvent, Event: &queued[i]}); err != nil {
			u.requeue(queued[i:])
			return true, fmt.Errorf("link lost: %w", err)
		}
	}
	for {
		nc.SetReadDeadline(time.Now().Add(3 * ping))
		m, err := c.Read()
		if err != nil {
			return true, fmt.Errorf("link lost: %w", err)
		}
		switch m.Type {
		case dclink.TypePing:
			if err := c.Write(&dclink.Msg{Type: dclink.TypePong, Seq: m.Seq}); err != nil {
				return true, fmt.Errorf("link lost: %w", err)
			}
		case dclink.TypeCommand:
			go func() {
				res := u.execute(m)
				c.Write(res) // a lost link loses the write; the gateway asks again
			}()
		case dclink.TypeRefused:
			return true, &RefusedError{Code: m.Code, Message: m.Message}
		case dclink.TypePong:
		default:
			// A message of a newer protocol: ignored.
		}
	}
}

func (u *Uplink) requeue(evs []dclink.Event) {
	u.mu.Lock()
	u.events = append(append([]dclink.Event(nil), evs...), u.events...)
	if n := len(u.events) - maxQueuedEvents; n > 0 {
		u.events = u.events[n:]
	}
	u.mu.Unlock()
}

// explainDial turns a handshake failure into what an operator can act on.
func explainDial(err error) error {
	// A TLS alert from the server arrives as a *net.OpError "remote
	// error" around crypto/tls's unexported alert type: its text is all
	// there is to look at.
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" && (strings.Contains(oe.Err.Error(), "certificate") || strings.Contains(oe.Err.Error(), "unknown certificate authority")) {
		return fmt.Errorf("the data centre did not accept this agent's certificate at the TLS handshake (not issued by the bank CA, or expired): %w", err)
	}
	var ue x509.UnknownAuthorityError
	if errors.As(err, &ue) {
		return fmt.Errorf("the data centre's certificate is not from the bank CA in agent.datacentre-ca: %w", err)
	}
	var he x509.HostnameError
	if errors.As(err, &he) {
		return fmt.Errorf("the data centre's certificate is not for this address (agent.datacentre-url): %w", err)
	}
	return err
}

// forward sends an ATM event to the gateway, or queues it while the link
// is down (the oldest are dropped past maxQueuedEvents; the truth is always
// in txn_status).
func (u *Uplink) forward(id string, ev atm.Event) {
	e := dclink.Event{ATM: id, Kind: eventKind(ev.Kind), No: ev.No, Advanced: ev.Advanced, Record: wireRecord(ev.Record)}
	u.mu.Lock()
	c := u.conn
	if c == nil {
		u.events = append(u.events, e)
		if n := len(u.events) - maxQueuedEvents; n > 0 {
			u.events = u.events[n:]
		}
		u.mu.Unlock()
		return
	}
	u.mu.Unlock()
	if err := c.Write(&dclink.Msg{Type: dclink.TypeEvent, Event: &e}); err != nil {
		u.requeue([]dclink.Event{e})
	}
}

// execute runs a command once per id and returns its result message.
func (u *Uplink) execute(m *dclink.Msg) *dclink.Msg {
	dig := m.Digest()
	now := u.opt.Now()
	u.mu.Lock()
	e, seen := u.cmds[m.ID]
	if seen && e.digest != dig {
		u.mu.Unlock()
		return errResult(m, dclink.ErrCommandReused, "command id "+m.ID+" was used before for another command; nothing done")
	}
	if !seen {
		e = &cmdEntry{digest: dig, at: now, done: make(chan struct{})}
		u.prune(now)
		u.cmds[m.ID] = e
	}
	accepted := u.accepted[m.ATM]
	ctx := u.runCtx
	u.mu.Unlock()
	if !seen {
		if !accepted {
			e.res = errResult(m, dclink.ErrUnknownATM, "ATM "+m.ATM+" is not an ATM of this agent accepted by the data centre")
		} else {
			e.res = u.run(context.WithoutCancel(ctx), m)
			u.mu.Lock()
			u.st.Executed[m.Op]++
			u.mu.Unlock()
			u.executed.WithLabelValues(m.Op).Inc()
		}
		close(e.done)
	}
	<-e.done
	return e.res
}

// prune drops finished entries older than the TTL, and the oldest finished
// ones past maxCachedCmds. Caller holds u.mu.
func (u *Uplink) prune(now time.Time) {
	if len(u.cmds) < maxCachedCmds {
		return
	}
	type aged struct {
		id string
		at time.Time
	}
	var done []aged
	for id, e := range u.cmds {
		select {
		case <-e.done:
			if now.Sub(e.at) > cmdCacheTTL {
				delete(u.cmds, id)
			} else {
				done = append(done, aged{id, e.at})
			}
		default:
		}
	}
	sort.Slice(done, func(i, j int) bool { return done[i].at.Before(done[j].at) })
	for i := 0; len(u.cmds) >= maxCachedCmds && i < len(done); i++ {
		delete(u.cmds, done[i].id)
	}
}

// opTimeout bounds one operation on the ATM.
var opTimeout = map[string]time.Duration{
	dclink.OpStatus: 10 * time.Second, dclink.OpShowQR: 10 * time.Second, dclink.OpCancelQR: 10 * time.Second,
	dclink.OpTxnStatus: 30 * time.Second, dclink.OpDispense: 3 * time.Minute, dclink.OpRetract: 2 * time.Minute,
	dclink.OpPIN: 3 * time.Minute,
}

func (u *Uplink) run(ctx context.Context, m *dclink.Msg) *dclink.Msg {
	d, ok := u.a.Driver(m.ATM)
	if !ok {
		return errResult(m, dclink.ErrUnknownATM, "no ATM "+m.ATM+" at this agent")
	}
	to, ok := opTimeout[m.Op]
	if !ok {
		return errResult(m, dclink.ErrUnknownOp, "this agent does not know operation "+m.Op)
	}
	ctx, cancel := context.WithTimeout(ctx, to)
	defer cancel()
	var out any
	var err error
	switch m.Op {
	case dclink.OpStatus:
		var st ATMStatus
		st, err = u.a.Status(ctx, m.ATM)
		if err == nil && !st.Up {
			err = fmt.Errorf("%w: %s", errUnavailable, st.Error)
		}
		out = st
	case dclink.OpShowQR, dclink.OpCancelQR:
		var a dclink.QRArgs
		var sid atm.TxnID
		if sid, err = parseArgs(m, &a, func() string { return a.Session }); err != nil {
			return errResult(m, dclink.ErrBadArgs, err.Error())
		}
		if m.Op == dclink.OpCancelQR {
			err, out = d.CancelQR(ctx, sid), struct{}{}
			break
		}
		var mode uint8
		mode, err = d.DisplayQR(ctx, sid, a.TTLSec, a.Text)
		out = dclink.QRResult{Mode: mode}
	case dclink.OpPIN:
		var a dclink.PINArgs
		var sid atm.TxnID
		if sid, err = parseArgs(m, &a, func() string { return a.Session }); err != nil {
			return errResult(m, dclink.ErrBadArgs, err.Error())
		}
		var r atm.PINReply
		r, err = d.PIN(ctx, atm.PINRequest{Session: sid, MinLen: a.MinLen, MaxLen: a.MaxLen, TimeoutSec: a.TimeoutSec, PAN: a.PAN})
		out = dclink.PINResult{Format: r.Format, KeyID: r.KeyID, Block: r.Block[:]}
	case dclink.OpDispense:
		var a dclink.DispenseArgs
		var id atm.TxnID
		if id, err = parseArgs(m, &a, func() string { return a.Txn }); err != nil {
			return errResult(m, dclink.ErrBadArgs, err.Error())
		}
		if a.AmountFen <= 0 || len(a.Notes) == 0 {
			return errResult(m, dclink.ErrBadArgs, "dispense needs a positive amount_fen and notes")
		}
		notes := make([]atm.Notes, len(a.Notes))
		for i, n := range a.Notes {
			notes[i] = atm.Notes{Cassette: n.Cassette, Count: n.Count}
		}
		var rec atm.TxnRecord
		rec, err = d.Dispense(ctx, id, a.AmountFen, notes)
		out = wireRecord(rec)
	case dclink.OpTxnStatus, dclink.OpRetract:
		var a dclink.TxnArgs
		var id atm.TxnID
		if id, err = parseArgs(m, &a, func() string { return a.Txn }); err != nil {
			return errResult(m, dclink.ErrBadArgs, err.Error())
		}
		var rec atm.TxnRecord
		if m.Op == dclink.OpRetract {
			rec, err = d.Retract(ctx, id)
		} else {
			rec, err = d.TxnStatus(ctx, id)
		}
		out = wireRecord(rec)
	}
	if err != nil {
		return deviceResult(m, err)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return errResult(m, dclink.ErrBadArgs, err.Error())
	}
	return &dclink.Msg{Type: dclink.TypeResult, ID: m.ID, ATM: m.ATM, Op: m.Op, Result: b}
}

var errUnavailable = errors.New("the ATM does not answer")

func parseArgs(m *dclink.Msg, v any, id func() string) (atm.TxnID, error) {
	if err := json.Unmarshal(m.Args, v); err != nil {
		return atm.TxnID{}, fmt.Errorf("arguments of %s: %v", m.Op, err)
	}
	return atm.ParseTxnID(id())
}

func errResult(m *dclink.Msg, code, msg string) *dclink.Msg {
	return &dclink.Msg{Type: dclink.TypeResult, ID: m.ID, ATM: m.ATM, Op: m.Op, Error: &dclink.Error{Code: code, Message: msg}}
}

func deviceResult(m *dclink.Msg, err error) *dclink.Msg {
	res := errResult(m, dclink.ErrUnavailable, err.Error())
	var de *atm.DeviceError
	switch {
	case errors.Is(err, atm.ErrUncertain):
		res.Error.Code = dclink.ErrUncertain
	case errors.As(err, &de):
		res.Error.Code, res.Error.Device = dclink.ErrDevice, de.Code.String()
		if de.Record != nil {
			r := wireRecord(*de.Record)
			res.Error.Record = &r
		}
	}
	return res
}

func eventKind(k uint8) string {
	if s := kindNames[k]; s != "" {
		return s
	}
	return fmt.Sprintf("kind-%d", k)
}

func wireRecord(r atm.TxnRecord) dclink.TxnRecord {
	w := dclink.TxnRecord{Txn: r.ID.String(), State: r.State.String(), AmountFen: r.Amount, Retracted: r.Retracted}
	if r.Error != atm.OK {
		w.Error = r.Error.String()
	}
	for _, c := range r.Cassettes {
		w.Cassettes = append(w.Cassettes, dclink.CassetteCount{Cassette: c.Cassette, Requested: c.Requested, Picked: c.Picked, Presented: c.Presented, Rejected: c.Rejected})
	}
	return w
}
