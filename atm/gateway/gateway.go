// Package gateway is the data centre's end of the branch agents' links: a
// mutual-TLS listener that branch agents dial out to (the data centre never
// dials a branch), which checks each agent's certificate with the bank CA
// (chain, revocation read from the database at every new connection, and
// that it is an agent certificate), takes the branch id from the
// certificate, accepts only the ATMs the registry pins to that branch, and
// then sends commands to the ATMs over that connection (Send) and receives
// their events (Options.OnEvent). The protocol is devices/agent/dclink.
//
// Concurrency: one goroutine reads each connection; Send may be called from
// any goroutine. A branch has at most one live link: a new, verified
// connection of the branch replaces the old one. A command is re-sent with
// the same id on the branch's next link until its result arrives or the
// caller's context ends; the agent executes an id once. Callers sending
// the same command at once all get its result.
package gateway

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/egate-bank/egate/devices/agent/dclink"
)

// Errors of Send.
var (
	ErrNoAgent      = errors.New("no agent of the ATM's branch is connected")
	ErrATMRefused   = errors.New("the branch's agent did not announce the ATM, or it was refused")
	ErrAgentRefused = errors.New("the agent's certificate is no longer accepted")
	ErrNoResult     = errors.New("the command was sent but no result came back; send it again with the same id")
	ErrClosed       = errors.New("the gateway is closed")
)

// CommandError is a command the agent executed, or refused, with an error.
type CommandError struct {
	ATM, Op string
	Err     *dclink.Error
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("ATM %s: %s: %s", e.ATM, e.Op, e.Err.Error())
}

// Verifier checks an agent's certificate against the bank CA (chain,
// validity, revocation now, that it is an agent's) and returns its branch
// id. An error matching ErrCertRevoked, ErrCertExpired, ErrCertInvalid or
// ErrNotAgentCert (errors.Is) refuses the agent; any other error is taken
// as the verifier being unable to decide now (the database is down): the
// connection is turned away with "unavailable", a live link is kept. The
// bank CA is adapted to it by internal/app.AgentVerifier (a driver does not
// import the services above it).
type Verifier interface {
	VerifyAgent(ctx context.Context, cert *x509.Certificate) (string, error)
}

// What a Verifier's errors say about a certificate.
var (
	ErrCertRevoked  = errors.New("the agent certificate is revoked")
	ErrCertExpired  = errors.New("the agent certificate is expired or not yet valid")
	ErrCertInvalid  = errors.New("the certificate was not issued by the bank CA to an agent")
	ErrNotAgentCert = errors.New("the certificate was not issued to a branch agent")
)

func serialHex(c *x509.Certificate) string { return hex.EncodeToString(c.SerialNumber.Bytes()) }

// Options shape the gateway.
type Options struct {
	Verifier Verifier
	Registry *Registry
	// Cert is the gateway's TLS server certificate (its key in the HSM).
	Cert tls.Certificate
	// ClientCAs are the bank's root and issuing CA certificates.
	ClientCAs *x509.CertPool
	// Ping is how often the gateway pings each agent; a link silent for
	// three pings is dead. 5s when zero.
	Ping time.Duration
	// Recheck is how often the certificates of live links are verified
	// again (a revoked one is dropped); 30s when zero. They are also
	// verified before every command.
	Recheck time.Duration
	// OnEvent receives the ATMs' events (from accepted ATMs only). It must
	// not block for long: it runs on the link's reader.
	OnEvent func(branch string, ev dclink.Event)
	// OnRefusal and OnConnect report each refusal (of a connection or of
	// an ATM) and each accepted link, for the audit log; they may be nil.
	// Like OnEvent they run on the link's goroutine.
	OnRefusal func(r Refusal)
	OnConnect func(a AgentInfo)
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Registerer takes the gateway's metrics; may be nil.
	Registerer prometheus.Registerer
}

// Gateway accepts agents' links and sends them commands.
type Gateway struct {
	opt  Options
	conf *tls.Config

	mu       sync.Mutex
	sessions map[string]*session
	changed  chan struct{} // closed when sessions change
	refusals []Refusal
	closed   bool

	connected prometheus.Gauge
	refused   *prometheus.CounterVec
	commands  *prometheus.CounterVec
}

// Refusal is a connection or an ATM the gateway refused, kept for the
// operators' listing.
type Refusal struct {
	At      time.Time `json:"at"`
	Remote  string    `json:"remote"`
	Branch  string    `json:"branch,omitempty"`
	ATM     string    `json:"atm,omitempty"`
	Code    string    `json:"code"`
	Message string    `json:"message"`
}

const maxRefusals = 50

type session struct {
	branch string
	cert   *x509.Certificate
	remote string
	since  time.Time
	nc     net.Conn
	c      *dclink.Conn

	accepted map[string]bool
	refused  []dclink.Refusal

	mu      sync.Mutex
	pending map[string][]chan *dclink.Msg // the callers waiting for each command id
	done    chan struct{}
	once    sync.Once
}

// New makes a gateway; Serve runs it on a listener.
func New(opt Options) (*Gateway, error) {
	if opt.Verifier == nil || opt.Registry == nil || opt.ClientCAs == nil || len(opt.Cert.Certificate) == 0 {
		return nil, errors.New("gateway: Verifier, Registry, ClientCAs and Cert are required")
	}
	if opt.Ping <= 0 {
		opt.Ping = 5 * time.Second
	}
	if opt.Recheck <= 0 {
		opt.Recheck = 30 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	g := &Gateway{opt: opt, sessions: map[string]*session{}, changed: make(chan struct{})}
	g.conf = &tls.Config{
		Certificates: []tls.Certificate{opt.Cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    opt.ClientCAs,
		MinVersion:   tls.VersionTLS13,
	}
	g.connected = prometheus.NewGauge(prometheus.GaugeOpts{Name: "egate_gateway_agents_connected", Help: "Branch agents with a live link."})
	g.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "egate_gateway_refusals_total", Help: "Agent connections and ATMs refused, by code."}, []string{"code"})
	g.commands = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "egate_gateway_commands_total", Help: "Commands answered by agents, by operation and outcome."}, []string{"op", "outcome"})
	if opt.Registerer != nil {
		for _, c := range []prometheus.Collector{g.connected, g.refused, g.commands} {
			if err := opt.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return g, nil
}

// TLSConfig is the listener's TLS config (client certificates required and
// verified against the bank CA).
func (g *Gateway) TLSConfig() *tls.Config { return g.conf.Clone() }

// Serve accepts agents on ln (a TCP listener; the gateway does the TLS)
// until ctx ends, then closes every link.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	go g.recheckLoop(ctx)
	var wg sync.WaitGroup
	defer func() {
		g.mu.Lock()
		g.closed = true
		ss := make([]*session, 0, len(g.sessions))
		for _, s := range g.sessions {
			ss = append(ss, s)
		}
		g.mu.Unlock()
		for _, s := range ss {
			s.close()
		}
		wg.Wait()
	}()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.handle(ctx, nc)
		}()
	}
}

func (g *Gateway) refuse(r Refusal) {
	r.At = g.opt.Now().UTC()
	g.refused.WithLabelValues(r.Code).Inc()
	g.mu.Lock()
	g.refusals = append(g.refusals, r)
	if n := len(g.refusals) - maxRefusals; n > 0 {
		g.refusals = g.refusals[n:]
	}
	g.mu.Unlock()
	if g.opt.OnRefusal != nil {
		g.opt.OnRefusal(r)
	}
}

// certRefusal maps a verification error to a refusal code and a message
// an operator (and the branch) can act on; ok is false for errors that
// say nothing about the certificate (the database is down).
func certRefusal(err error, serial string) (code, msg string, ok bool) {
	switch {
	case errors.Is(err, ErrCertRevoked):
		return dclink.CodeCertRevoked, "the agent certificate " + serial + " is revoked; enroll the agent again (egate admin agent enroll)", true
	case errors.Is(err, ErrCertExpired):
		return dclink.CodeCertInvalid, "the agent certificate " + serial + " is expired or not yet valid; enroll the agent again", true
	case errors.Is(err, ErrNotAgentCert):
		return dclink.CodeNotAgentCert, "certificate " + serial + " was not issued to a branch agent: " + err.Error(), true
	case errors.Is(err, ErrCertInvalid):
		return dclink.CodeCertInvalid, "certificate " + serial + " was not issued by the bank CA to an agent", true
	}
	return dclink.CodeUnavailable, "the data centre cannot check certificates now; the agent will retry", false
}

func (g *Gateway) handle(ctx context.Context, nc net.Conn) {
	remote := nc.RemoteAddr().String()
	tc := tls.Server(nc, g.conf)
	defer tc.Close()
	stop := context.AfterFunc(ctx, func() { tc.Close() }) // Serve's end does not wait for a slow hello
	defer stop()
	hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err := tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		g.refuse(Refusal{Remote: remote, Code: dclink.CodeCertInvalid, Message: "TLS handshake failed: " + err.Error()})
		return
	}
	cert := tc.ConnectionState().PeerCertificates[0]
	serial := serialHex(cert)
	c := dclink.NewConn(tc)
	refuse := func(branch, code, msg string) {
		g.refuse(Refusal{Remote: remote, Branch: branch, Code: code, Message: msg})
		tc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		c.Write(&dclink.Msg{Type: dclink.TypeRefused, Code: code, Message: msg})
	}
	branch, err := g.opt.Verifier.VerifyAgent(ctx, cert)
	if err != nil {
		code, msg, _ := certRefusal(err, serial)
		refuse(cert.Subject.CommonName, code, msg)
		return
	}
	tc.SetReadDeadline(time.Now().Add(15 * time.Second))
	hello, err := c.Read()
	if err != nil || hello.Type != dclink.TypeHello {
		refuse(branch, dclink.CodeBadHello, "the agent must start with hello")
		return
	}
	if hello.Version != dclink.Version {
		refuse(branch, dclink.CodeBadHello, fmt.Sprintf("protocol version %d is not spoken here (%d is)", hello.Version, dclink.Version))
		return
	}
	if hello.Branch != branch {
		refuse(branch, dclink.CodeBranchMismatch, fmt.Sprintf("this agent's certificate was issued to branch %s but the agent says it is branch %q (agent.branch); enroll the agent for its branch or correct agent.branch", branch, hello.Branch))
		return
	}
	s := &session{branch: branch, cert: cert, remote: remote, since: g.opt.Now().UTC(), nc: tc, c: c,
		accepted: map[string]bool{}, pending: map[string][]chan *dclink.Msg{}, done: make(chan struct{})}
	var accepted []string
	for _, id := range hello.ATMs {
		pinned, err := g.opt.Registry.Branch(ctx, id)
		var r *dclink.Refusal
		switch {
		case errors.Is(err, ErrNotPinned):
			r = &dclink.Refusal{ATM: id, Code: dclink.CodeATMNotPinned, Message: fmt.Sprintf("ATM %s is not pinned to any branch; an operator pins it with egate admin agent assign --branch %s --atm %s", id, branch, id)}
		case err != nil:
			refuse(branch, dclink.CodeUnavailable, "the data centre cannot read its ATM registry now; the agent will retry")
			return
		case pinned != branch:
			r = &dclink.Refusal{ATM: id, Code: dclink.CodeATMOtherBranch, Message: fmt.Sprintf("ATM %s belongs to branch %s, not to branch %s of this agent's certificate; it gets no commands through this agent", id, pinned, branch)}
		}
		if r != nil {
			s.refused = append(s.refused, *r)
			g.refuse(Refusal{Remote: remote, Branch: branch, ATM: id, Code: r.Code, Message: r.Message})
			continue
		}
		if !s.accepted[id] {
			s.accepted[id] = true
			accepted = append(accepted, id)
		}
	}
	tc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.Write(&dclink.Msg{Type: dclink.TypeWelcome, Branch: branch, Accepted: accepted, Refused: s.refused, PingMS: g.opt.Ping.Milliseconds()}); err != nil {
		return
	}
	tc.SetWriteDeadline(time.Time{})
	if !g.add(s) {
		return
	}
	defer g.remove(s)
	if g.opt.OnConnect != nil {
		g.opt.OnConnect(s.info())
	}
	go g.pinger(s)
	for {
		tc.SetReadDeadline(time.Now().Add(3 * g.opt.Ping))
		m, err := c.Read()
		if err != nil {
			s.close()
			return
		}
		switch m.Type {
		case dclink.TypeResult:
			s.deliver(m)
		case dclink.TypeEvent:
			if m.Event != nil && s.accepted[m.Event.ATM] && g.opt.OnEvent != nil {
				g.opt.OnEvent(branch, *m.Event)
			}
		case dclink.TypePing:
			c.Write(&dclink.Msg{Type: dclink.TypePong, Seq: m.Seq})
		}
	}
}

func (g *Gateway) pinger(s *session) {
	t := time.NewTicker(g.opt.Ping)
	defer t.Stop()
	var seq uint64
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			seq++
			s.nc.SetWriteDeadline(time.Now().Add(g.opt.Ping))
			if err := s.c.Write(&dclink.Msg{Type: dclink.TypePing, Seq: seq}); err != nil {
				s.close()
				return
			}
		}
	}
}

// add makes s the branch's live link, closing the one it replaces.
func (g *Gateway) add(s *session) bool {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		s.close()
		return false
	}
	old := g.sessions[s.branch]
	g.sessions[s.branch] = s
	g.notifyLocked()
	g.connected.Set(float64(len(g.sessions)))
	g.mu.Unlock()
	if old != nil {
		old.close()
	}
	return true
}

func (g *Gateway) remove(s *session) {
	s.close()
	g.mu.Lock()
	if g.sessions[s.branch] == s {
		delete(g.sessions, s.branch)
		g.notifyLocked()
	}
	g.connected.Set(float64(len(g.sessions)))
	g.mu.Unlock()
}

func (g *Gateway) notifyLocked() {
	close(g.changed)
	g.changed = make(chan struct{})
}

func (s *session) close() {
	s.once.Do(func() {
		close(s.done)
		s.nc.Close()
	})
}

// deliver hands a result to every caller waiting for its command id (the
// same command may be sent by two callers at once: a withdrawal's approval
// and its recovery).
func (s *session) deliver(m *dclink.Msg) {
	s.mu.Lock()
	chs := s.pending[m.ID]
	delete(s.pending, m.ID)
	s.mu.Unlock()
	for _, ch := range chs {
		ch <- m // buffered, one result per caller
	}
}

var errSessionGone = errors.New("link lost")

// call sends m on this link and waits for its result.
func (s *session) call(ctx context.Context, m *dclink.Msg) (*dclink.Msg, error) {
	ch := make(chan *dclink.Msg, 1)
	s.mu.Lock()
	s.pending[m.ID] = append(s.pending[m.ID], ch)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		chs := slices.DeleteFunc(s.pending[m.ID], func(c chan *dclink.Msg) bool { return c == ch })
		if len(chs) == 0 {
			delete(s.pending, m.ID)
		} else {
			s.pending[m.ID] = chs
		}
	}()
	s.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := s.c.Write(m); err != nil {
		s.close()
		return nil, errSessionGone
	}
	select {
	case res := <-ch:
		return res, nil
	case <-s.done:
		select {
		case res := <-ch:
			return res, nil
		default:
			return nil, errSessionGone
		}
	case <-ctx.Done():
		return nil, fmt.Errorf("%w (command %s): %w", ErrNoResult, m.ID, ctx.Err())
	}
}

// Command is one command for an ATM. Keep it to send it again: the same id
// is executed once by the agent.
type Command struct {
	ID   string
	ATM  string
	Op   string
	Args json.RawMessage
}

// NewCommand makes a command with a fresh random id.
func NewCommand(atmID, op string, args any) (Command, error) {
	var b [16]byte
	rand.Read(b[:])
	c := Command{ID: hex.EncodeToString(b[:]), ATM: atmID, Op: op}
	if args != nil {
		raw, err := json.Marshal(args)
		if err != nil {
			return Command{}, err
		}
		c.Args = raw
	}
	return c, nil
}

// Send routes cmd to the agent of the ATM's branch and returns the result.
// While the branch has no link it waits for one; a link lost before the
// result came is survived by sending the command again (same id) on the
// next link, until ctx ends (ErrNoResult: the outcome is unknown, send the
// same command again to learn it). The link's certificate is verified
// again before the command goes out: a revoked agent gets no command.
func (g *Gateway) Send(ctx context.Context, cmd Command) (json.RawMessage, error) {
	branch, err := g.opt.Registry.Branch(ctx, cmd.ATM)
	if err != nil {
		return nil, err
	}
	m := &dclink.Msg{Type: dclink.TypeCommand, ID: cmd.ID, ATM: cmd.ATM, Op: cmd.Op, Args: cmd.Args}
	sent := false
	for {
		s, err := g.wait(ctx, branch, cmd.ATM, sent)
		if err != nil {
			return nil, err
		}
		if err := g.recheck(ctx, s); err != nil {
			return nil, err
		}
		sent = true
		res, err := s.call(ctx, m)
		if errors.Is(err, errSessionGone) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if res.Error != nil {
			g.commands.WithLabelValues(cmd.Op, res.Error.Code).Inc()
			return nil, &CommandError{ATM: cmd.ATM, Op: cmd.Op, Err: res.Error}
		}
		g.commands.WithLabelValues(cmd.Op, "ok").Inc()
		return res.Result, nil
	}
}

// Do is NewCommand and Send.
func (g *Gateway) Do(ctx context.Context, atmID, op string, args any) (json.RawMessage, error) {
	cmd, err := NewCommand(atmID, op, args)
	if err != nil {
		return nil, err
	}
	return g.Send(ctx, cmd)
}

func (g *Gateway) wait(ctx context.Context, branch, atmID string, sent bool) (*session, error) {
	for {
		g.mu.Lock()
		s, ch, closed := g.sessions[branch], g.changed, g.closed
		g.mu.Unlock()
		if closed {
			return nil, ErrClosed
		}
		if s != nil {
			if !s.accepted[atmID] {
				return nil, fmt.Errorf("%w: ATM %s, branch %s", ErrATMRefused, atmID, branch)
			}
			return s, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if sent {
				return nil, fmt.Errorf("%w: the link of branch %s was lost: %w", ErrNoResult, branch, ctx.Err())
			}
			return nil, fmt.Errorf("%w: branch %s (ATM %s): %w", ErrNoAgent, branch, atmID, ctx.Err())
		}
	}
}

// recheck verifies a live link's certificate again; a refused one is told
// why and dropped.
func (g *Gateway) recheck(ctx context.Context, s *session) error {
	_, err := g.opt.Verifier.VerifyAgent(ctx, s.cert)
	if err == nil {
		return nil
	}
	code, msg, definite := certRefusal(err, serialHex(s.cert))
	if !definite {
		return fmt.Errorf("checking the agent certificate of branch %s: %w", s.branch, err)
	}
	g.refuse(Refusal{Remote: s.remote, Branch: s.branch, Code: code, Message: msg})
	s.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	s.c.Write(&dclink.Msg{Type: dclink.TypeRefused, Code: code, Message: msg})
	s.close()
	return fmt.Errorf("%w: branch %s: %s", ErrAgentRefused, s.branch, msg)
}

func (g *Gateway) recheckLoop(ctx context.Context) {
	t := time.NewTicker(g.opt.Recheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.mu.Lock()
			ss := make([]*session, 0, len(g.sessions))
			for _, s := range g.sessions {
				ss = append(ss, s)
			}
			g.mu.Unlock()
			for _, s := range ss {
				g.recheck(ctx, s)
			}
		}
	}
}

// AgentInfo is one live link, for the operators' listing.
type AgentInfo struct {
	Branch       string           `json:"branch"`
	Remote       string           `json:"remote"`
	Since        time.Time        `json:"since"`
	CertSerial   string           `json:"cert_serial"`
	CertNotAfter time.Time        `json:"cert_not_after"`
	ATMs         []string         `json:"atms"`
	RefusedATMs  []dclink.Refusal `json:"refused_atms,omitempty"`
	Pending      int              `json:"commands_pending"`
}

// Agents lists the live links by branch.
func (g *Gateway) Agents() []AgentInfo {
	g.mu.Lock()
	ss := make([]*session, 0, len(g.sessions))
	for _, s := range g.sessions {
		ss = append(ss, s)
	}
	g.mu.Unlock()
	out := []AgentInfo{}
	for _, s := range ss {
		out = append(out, s.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Branch < out[j].Branch })
	return out
}

func (s *session) info() AgentInfo {
	ai := AgentInfo{Branch: s.branch, Remote: s.remote, Since: s.since, CertSerial: serialHex(s.cert),
		CertNotAfter: s.cert.NotAfter.UTC(), ATMs: []string{}, RefusedATMs: s.refused}
	for id := range s.accepted {
		ai.ATMs = append(ai.ATMs, id)
	}
	sort.Strings(ai.ATMs)
	s.mu.Lock()
	ai.Pending = len(s.pending)
	s.mu.Unlock()
	return ai
}

// Refusals returns the most recent refusals, oldest first.
func (g *Gateway) Refusals() []Refusal {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Refusal{}, g.refusals...)
}

// Connected reports whether branch has a live link.
func (g *Gateway) Connected(branch string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sessions[branch] != nil
}
