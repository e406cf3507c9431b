package withdrawal_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/egate-bank/egate/atm"
	"github.com/egate-bank/egate/atm/gateway"
	"github.com/egate-bank/egate/authsvc/ca"
	"github.com/egate-bank/egate/devices/agent"
	"github.com/egate-bank/egate/devices/agent/dclink"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/internal/app"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/testenv"
	simatm "github.com/egate-bank/egate/simulators/atm"
	"github.com/egate-bank/egate/simulators/softhsm"
)

// The harness is the agent gateway tests' (atm/gateway/gateway_test.go).
// One SoftHSM directory per test binary (SOFTHSM2_CONF is read once per
// process): the data centre's HSM (CA keys, the gateway's TLS key) and two
// branch agents' tokens.
var hsmEnv struct {
	dir     *softhsm.Dir
	pinFile string
	err     error
	dc      *hsm.Service
}

const (
	dcToken = "dc-hsm"
	br01Tok = "agent-br01"
	br02Tok = "agent-br02"
	userPIN = "246810"
	soPIN   = "13579024"
)

func TestMain(m *testing.M) {
	root, err := os.MkdirTemp("", "egate-withdrawal-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hsmEnv.err = setupHSM(root)
	code := m.Run()
	if hsmEnv.dc != nil {
		hsmEnv.dc.Close()
	}
	os.RemoveAll(root)
	os.Exit(code)
}

func setupHSM(root string) error {
	d, err := softhsm.New(filepath.Join(root, "softhsm"))
	if err != nil {
		return err
	}
	if err := d.Activate(); err != nil {
		return err
	}
	for _, l := range []string{dcToken, br01Tok, br02Tok} {
		if _, _, err := d.InitToken(context.Background(), l, soPIN, userPIN); err != nil {
			return err
		}
	}
	pin := filepath.Join(root, "pin")
	if err := os.WriteFile(pin, []byte(userPIN+"\n"), 0o600); err != nil {
		return err
	}
	hsmEnv.dir, hsmEnv.pinFile = d, pin
	return nil
}

// dc is the data centre of a test: the CA (keys in SoftHSM), the database,
// the registry, the gateway on a real TLS listener, and a TCP proxy in front
// of it that can cut every connection.
type dc struct {
	ca      *ca.CA
	db      *store.DB
	reg     *gateway.Registry
	gw      *gateway.Gateway
	proxy   *proxy
	rootPEM string // file with the bank root, for agent.datacentre-ca
	gwAddr  string
	events  chan dclink.Event
}

var dcOnce sync.Mutex

func newDC(t *testing.T, db *store.DB, tune ...func(*gateway.Options)) *dc {
	t.Helper()
	if hsmEnv.err != nil || hsmEnv.dir == nil {
		testenv.Missing(t, "SoftHSM2", fmt.Sprintf("apt-get install softhsm2 (%v)", hsmEnv.err))
	}
	ctx := context.Background()
	dcOnce.Lock()
	if hsmEnv.dc == nil {
		s, err := hsm.Open(ctx, hsm.Config{Module: hsmEnv.dir.Module, Token: dcToken, PINSource: "file:" + hsmEnv.pinFile})
		if err != nil {
			dcOnce.Unlock()
			t.Fatal(err)
		}
		for _, l := range []string{ca.RootKeyLabel, ca.IssuingKeyLabel, "egate-agent-gateway"} {
			if _, _, err := s.EnsureKey(ctx, hsm.KeySpec{Label: l, Type: hsm.KeyECDSAP256}); err != nil {
				dcOnce.Unlock()
				t.Fatal(err)
			}
		}
		hsmEnv.dc = s
	}
	dcOnce.Unlock()
	h := hsmEnv.dc
	rootKey, err := h.Signer(ctx, ca.RootKeyLabel)
	if err != nil {
		t.Fatal(err)
	}
	issKey, err := h.Signer(ctx, ca.IssuingKeyLabel)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Init(ctx, db, rootKey, issKey, ca.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gwKey, err := h.Signer(ctx, "egate-agent-gateway")
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "127.0.0.1"}}, gwKey)
	if err != nil {
		t.Fatal(err)
	}
	gwCert, err := c.IssueGateway(ctx, csr, []string{"127.0.0.1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cas := x509.NewCertPool()
	cas.AddCert(c.Root())
	cas.AddCert(c.Issuing())
	d := &dc{ca: c, db: db, reg: gateway.NewRegistry(db, nil), events: make(chan dclink.Event, 4096)}
	opt := gateway.Options{
		Verifier: app.AgentVerifier{CA: c}, Registry: d.reg, ClientCAs: cas, Ping: time.Second,
		Cert:    tls.Certificate{Certificate: [][]byte{gwCert.Raw, c.Issuing().Raw}, PrivateKey: gwKey, Leaf: gwCert},
		OnEvent: func(_ string, ev dclink.Event) { d.events <- ev },
	}
	for _, f := range tune {
		f(&opt)
	}
	d.gw, err = gateway.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.gwAddr = ln.Addr().String()
	sctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- d.gw.Serve(sctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	d.proxy = newProxy(t, d.gwAddr)
	d.rootPEM = filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(d.rootPEM, ca.CertPEM(c.Root()), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// enroll makes the agent key object on a branch token and has the bank CA
// issue its certificate, as egate admin agent enroll does.
func (d *dc) enroll(t *testing.T, token, object, branch string) agent.TokenConfig {
	t.Helper()
	cfg := agent.TokenConfig{Module: hsmEnv.dir.Module, Key: "pkcs11:token=" + token + ";object=" + object, PINSource: "file:" + hsmEnv.pinFile}
	tok, err := agent.OpenToken(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	_, err = tok.Enroll(context.Background(), branch, func(ctx context.Context, csr []byte) (*x509.Certificate, error) {
		return d.ca.Issue(ctx, ca.IssueRequest{Kind: ca.KindAgent, Owner: branch, CSR: csr})
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// branch is one running agent with its simulated ATMs.
type branch struct {
	a      *agent.Agent
	up     *agent.Uplink
	sims   map[string]*simatm.Running
	cancel context.CancelFunc
	done   chan struct{}
}

type agentSpec struct {
	branch string
	atms   []string
	token  *agent.TokenConfig // the agent's key on its token
	cert   *tls.Certificate   // or a certificate with a software key
	direct bool               // dial the gateway, not the proxy
	sim    simatm.Config      // overrides for the simulators
}

func (d *dc) startAgent(t *testing.T, spec agentSpec) *branch {
	t.Helper()
	if _, err := simatm.OpenPTY(); err != nil {
		testenv.Missing(t, "a pseudo-terminal", err.Error())
	}
	ctx := context.Background()
	b := &branch{sims: map[string]*simatm.Running{}, done: make(chan struct{})}
	var atms []agent.ATMConfig
	for _, id := range spec.atms {
		sc := spec.sim
		sc.Cassettes, sc.JournalPath = simatm.DefaultCassettes(), filepath.Join(t.TempDir(), "journal-"+id)
		sc.Link = atm.LinkConfig{Baud: 115200}
		if sc.TakeAfter == 0 {
			sc.TakeAfter = time.Millisecond
		}
		sim, err := simatm.StartPTY(ctx, sc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sim.Stop() })
		b.sims[id] = sim
		atms = append(atms, agent.ATMConfig{ID: id, Port: sim.TTYName, Baud: 115200})
	}
	addr := d.proxy.addr
	if spec.direct {
		addr = d.gwAddr
	}
	cfg := agent.Config{ATMs: atms, Branch: spec.branch, DatacentreURL: "tls://" + addr, DatacentreCA: d.rootPEM}
	var cert tls.Certificate
	if spec.token != nil {
		cfg.Token = *spec.token
		tok, err := agent.OpenToken(ctx, cfg.Token)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tok.Close() })
		if cert, err = tok.TLSCertificate(); err != nil {
			t.Fatal(err)
		}
	} else {
		cfg.Token = agent.TokenConfig{Module: "/unused", Key: "pkcs11:token=x;object=y", PINSource: "env:UNUSED"}
		cert = *spec.cert
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(cfg, agent.SerialLines, nil)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := cfg.ClientTLS(cert)
	if err != nil {
		t.Fatal(err)
	}
	dcAddr, _ := cfg.DatacentreAddr()
	up, err := agent.NewUplink(a, cfg.DatacentreURL, agent.UplinkOptions{Branch: cfg.Branch, Dial: agent.DialTLS(dcAddr, conf),
		ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b.a, b.up = a, up
	rctx, cancel := context.WithCancel(ctx)
	b.cancel = cancel
	go func() { defer close(b.done); up.Run(rctx) }()
	t.Cleanup(func() { b.stop() })
	return b
}

func (b *branch) stop() {
	b.cancel()
	<-b.done
	b.a.Close()
}

// waitFor polls cond (a link or an ATM changes state in another process's
// terms; no channel reports it) until it holds or 20 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (b *branch) waitUp(t *testing.T, connects int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("the link up after %d welcome(s)", connects), func() bool {
		st := b.up.Status()
		return st.Up && st.Connects >= connects
	})
}

func notesOut(s *simatm.Running) int {
	n := 0
	for _, c := range simatm.DefaultCassettes() {
		for _, got := range s.Sim.Totals().Cassettes {
			if got.ID == c.ID {
				n += c.Count - got.Count
			}
		}
	}
	return n
}

// proxy forwards TCP connections to the gateway and can cut them all, or
// freeze them (stop forwarding, close nothing: a link that dies silently).
type proxy struct {
	addr   string
	mu     sync.Mutex
	conns  []net.Conn
	frozen chan struct{} // closed by freeze for the connections made before
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), frozen: make(chan struct{})}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			frozen := p.frozen
			p.mu.Unlock()
			go func() { copyUntil(u, c, frozen); u.Close() }()
			go func() { copyUntil(c, u, frozen); c.Close() }()
		}
	}()
	return p
}

// freeze stops forwarding on the current connections without closing
// them; new connections are forwarded.
func (p *proxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.frozen)
	p.frozen = make(chan struct{})
}

// copyUntil copies src to dst until either fails or frozen is closed; after
// that it reads and drops what src sends.
func copyUntil(dst io.Writer, src io.Reader, frozen <-chan struct{}) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-frozen:
			if err != nil {
				return
			}
			continue
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// cut closes every connection through the proxy; it returns how many
// agent connections it cut.
func (p *proxy) cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns) / 2
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	return n
}
