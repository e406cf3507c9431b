// Package atmtest is the data centre and branch of the ATM tests
// (atm/gateway, atm/withdrawal): the bank CA with its keys in SoftHSM2, the
// agent gateway on a real mutual-TLS listener behind a TCP proxy that can
// cut or freeze every link, branch agents whose keys are on their own
// SoftHSM2 tokens, and simulated ATMs on pseudo-terminals at 115200 baud.
//
// SoftHSM2 reads its configuration once per process, so a test binary
// provisions every token in TestMain:
//
//	var env = atmtest.NewEnv()
//
//	func TestMain(m *testing.M) { atmtest.Main(m, env) }
//
// and a test asks env.NewDC(t, db) for its data centre (it skips, or fails
// under EGATE_TEST_STRICT=1, without SoftHSM2 or a pseudo-terminal).
package atmtest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	"github.com/egate-bank/egate/simulators/softhsm/softhsmtest"
)

// The tokens of a test binary: the data centre's HSM (the CA's keys, the
// gateway's TLS key) and two branch agents' tokens, all with one PIN.
const (
	DCToken   = "dc-hsm"
	BR01Token = "agent-br01"
	BR02Token = "agent-br02"
	PIN       = "246810"
	SOPIN     = "13579024"
)

// Env is one test binary's SoftHSM2 and the data centre's HSM session,
// opened on first use and shared by the binary's tests.
type Env struct {
	tokens  softhsmtest.Tokens
	pinFile string
	err     error

	mu sync.Mutex
	dc *hsm.Service
}

// NewEnv returns an Env for Main to provision.
func NewEnv() *Env {
	return &Env{tokens: softhsmtest.Tokens{Labels: []string{DCToken, BR01Token, BR02Token}, SOPIN: SOPIN, PIN: PIN}}
}

// Main provisions e (before anything loads the module), runs the tests,
// closes the HSM, removes the directory and exits with the tests' code. A
// failed provisioning is reported by NewDC.
func Main(m *testing.M, e *Env) {
	if e.err = e.tokens.Provision(); e.err == nil {
		e.pinFile = filepath.Join(e.tokens.Root, "pin")
		e.err = os.WriteFile(e.pinFile, []byte(PIN+"\n"), 0o600)
	}
	code := m.Run()
	e.mu.Lock()
	if e.dc != nil {
		e.dc.Close()
	}
	e.mu.Unlock()
	e.tokens.Remove()
	os.Exit(code)
}

// hsm opens the data centre's HSM once and makes its keys.
func (e *Env) hsm(t testing.TB) *hsm.Service {
	t.Helper()
	if e.err != nil || e.pinFile == "" {
		testenv.Missing(t, "SoftHSM2", fmt.Sprintf("apt-get install softhsm2 (%v)", e.err))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dc != nil {
		return e.dc
	}
	ctx := context.Background()
	s, err := hsm.Open(ctx, hsm.Config{Module: e.tokens.Dir.Module, Token: DCToken, PINSource: "file:" + e.pinFile})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{ca.RootKeyLabel, ca.IssuingKeyLabel, "egate-agent-gateway"} {
		if _, _, err := s.EnsureKey(ctx, hsm.KeySpec{Label: l, Type: hsm.KeyECDSAP256}); err != nil {
			s.Close()
			t.Fatal(err)
		}
	}
	e.dc = s
	return s
}

// DC is the data centre of a test: the CA (keys in SoftHSM2), the
// database, the registry, the gateway on a real TLS listener, and a TCP
// proxy in front of it that can cut every connection.
type DC struct {
	env     *Env
	CA      *ca.CA
	DB      *store.DB
	Reg     *gateway.Registry
	GW      *gateway.Gateway
	Proxy   *Proxy
	RootPEM string // file with the bank root, for agent.datacentre-ca
	GWAddr  string
	Events  chan dclink.Event // the gateway's OnEvent, unless tune replaces it
}

// NewDC starts a data centre over db; tune adjusts the gateway's options.
// Everything stops when t ends.
func (e *Env) NewDC(t *testing.T, db *store.DB, tune ...func(*gateway.Options)) *DC {
	t.Helper()
	h := e.hsm(t)
	ctx := context.Background()
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
	d := &DC{env: e, CA: c, DB: db, Reg: gateway.NewRegistry(db, nil), Events: make(chan dclink.Event, 4096)}
	opt := gateway.Options{
		Verifier: app.AgentVerifier{CA: c}, Registry: d.Reg, ClientCAs: cas, Ping: time.Second,
		Cert:    tls.Certificate{Certificate: [][]byte{gwCert.Raw, c.Issuing().Raw}, PrivateKey: gwKey, Leaf: gwCert},
		OnEvent: func(_ string, ev dclink.Event) { d.Events <- ev },
	}
	for _, f := range tune {
		f(&opt)
	}
	d.GW, err = gateway.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := listen()
	if err != nil {
		t.Fatal(err)
	}
	d.GWAddr = ln.Addr().String()
	sctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- d.GW.Serve(sctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	d.Proxy = NewProxy(t, d.GWAddr)
	d.RootPEM = filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(d.RootPEM, ca.CertPEM(c.Root()), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// Enroll makes the agent key object on a branch token and has the bank CA
// issue its certificate, as egate admin agent enroll does.
func (d *DC) Enroll(t *testing.T, token, object, branch string) agent.TokenConfig {
	t.Helper()
	cfg := agent.TokenConfig{Module: d.env.tokens.Dir.Module, Key: "pkcs11:token=" + token + ";object=" + object, PINSource: "file:" + d.env.pinFile}
	tok, err := agent.OpenToken(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	_, err = tok.Enroll(context.Background(), branch, func(ctx context.Context, csr []byte) (*x509.Certificate, error) {
		return d.CA.Issue(ctx, ca.IssueRequest{Kind: ca.KindAgent, Owner: branch, CSR: csr})
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Uplink is one running agent and its link to the data centre.
type Uplink struct {
	A      *agent.Agent
	Up     *agent.Uplink
	cancel context.CancelFunc
	done   chan struct{}
}

// RunAgent starts an agent of cfg with the client certificate cert and
// runs its link; Stop ends both (the agent killed). onStop runs after the
// link has stopped (closing the token, say); it may be nil.
func (d *DC) RunAgent(t *testing.T, cfg agent.Config, cert tls.Certificate, onStop func()) *Uplink {
	t.Helper()
	a, err := agent.New(cfg, agent.SerialLines, nil)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := cfg.ClientTLS(cert)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := cfg.DatacentreAddr()
	up, err := agent.NewUplink(a, cfg.DatacentreURL, agent.UplinkOptions{Branch: cfg.Branch, Dial: agent.DialTLS(addr, conf),
		ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	u := &Uplink{A: a, Up: up, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(u.done)
		up.Run(ctx)
		if onStop != nil {
			onStop()
		}
	}()
	return u
}

// Stop stops the link and closes the agent.
func (u *Uplink) Stop() {
	u.cancel()
	<-u.done
	u.A.Close()
}

// WaitUp waits for the link to be up after at least connects welcomes.
func (u *Uplink) WaitUp(t *testing.T, connects int) {
	t.Helper()
	WaitFor(t, fmt.Sprintf("the link up after %d welcome(s)", connects), func() bool {
		st := u.Up.Status()
		return st.Up && st.Connects >= connects
	})
}

// WaitError waits for the agent to report an error containing want, and
// returns it.
func (u *Uplink) WaitError(t *testing.T, want string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		last := u.Up.Status().LastError
		if strings.Contains(last, want) {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent reports %q, want %q", last, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Branch is one running agent with its simulated ATMs.
type Branch struct {
	*Uplink
	Sims map[string]*simatm.Running
}

// AgentSpec says which agent StartAgent runs.
type AgentSpec struct {
	Branch string
	ATMs   []string
	Token  *agent.TokenConfig // the agent's key on its token
	Cert   *tls.Certificate   // or a certificate with a software key
	Direct bool               // dial the gateway, not the proxy
	Sim    simatm.Config      // overrides for the simulators
}

// NeedPTY skips t (fails it, strict) without pseudo-terminals.
func NeedPTY(t testing.TB) {
	t.Helper()
	if _, err := simatm.OpenPTY(); err != nil {
		testenv.Missing(t, "a pseudo-terminal", err.Error())
	}
}

// StartAgent starts the spec's ATM simulators (default cassettes, a
// journal each, 115200 baud) and its agent; all stop when t ends.
func (d *DC) StartAgent(t *testing.T, spec AgentSpec) *Branch {
	t.Helper()
	NeedPTY(t)
	ctx := context.Background()
	b := &Branch{Sims: map[string]*simatm.Running{}}
	var atms []agent.ATMConfig
	for _, id := range spec.ATMs {
		sc := spec.Sim
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
		b.Sims[id] = sim
		atms = append(atms, agent.ATMConfig{ID: id, Port: sim.TTYName, Baud: 115200})
	}
	addr := d.Proxy.Addr
	if spec.Direct {
		addr = d.GWAddr
	}
	cfg := agent.Config{ATMs: atms, Branch: spec.Branch, DatacentreURL: "tls://" + addr, DatacentreCA: d.RootPEM}
	var cert tls.Certificate
	if spec.Token != nil {
		cfg.Token = *spec.Token
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
		cert = *spec.Cert
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	b.Uplink = d.RunAgent(t, cfg, cert, nil)
	t.Cleanup(b.Stop)
	return b
}

// WaitFor polls cond (a link or an ATM changes state in another process's
// terms; no channel reports it) until it holds or 20 s pass.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// NotesOut is how many notes left the simulator's cassettes since they
// were loaded with the default cassettes.
func NotesOut(s *simatm.Running) int {
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
