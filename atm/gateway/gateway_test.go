package gateway_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
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
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/internal/testenv"
	simatm "github.com/egate-bank/egate/simulators/atm"
	"github.com/egate-bank/egate/simulators/softhsm"
)

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
	root, err := os.MkdirTemp("", "egate-gateway-")
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
	d := &dc{ca: c, db: db, reg: gateway.NewRegistry(db, nil), events: make(chan dclink.Event, 64)}
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

func (b *branch) waitError(t *testing.T, want string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		last := b.up.Status().LastError
		if strings.Contains(last, want) {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent reports %q, want %q", last, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
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

func statusOf(t *testing.T, raw json.RawMessage) agent.ATMStatus {
	t.Helper()
	var st agent.ATMStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestEnrolledAgentRunsStatus: an agent whose key is on its SoftHSM token
// and whose certificate the bank CA issued connects out over mutual TLS;
// the gateway runs STATUS on its pinned ATM and gets the ATM's own answer;
// the gateway lists the link; the agent reports the link up.
func TestEnrolledAgentRunsStatus(t *testing.T) {
	d := newDC(t, storetest.SQLite(t))
	ctx := context.Background()
	if err := d.reg.Assign(ctx, "BR-01", "ATM-0101"); err != nil {
		t.Fatal(err)
	}
	tok := d.enroll(t, br01Tok, "status-agent", "BR-01")
	b := d.startAgent(t, agentSpec{branch: "BR-01", atms: []string{"ATM-0101"}, token: &tok})
	b.waitUp(t, 1)
	if err := b.up.Check(ctx); err != nil {
		t.Fatalf("readiness with the link up: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	raw, err := d.gw.Do(cctx, "ATM-0101", dclink.OpStatus, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := statusOf(t, raw)
	if !st.Up || st.ID != "ATM-0101" || len(st.Cassettes) != 4 || st.Cassettes[0].Count != 500 {
		t.Fatalf("status through the gateway: %+v", st)
	}
	ag := d.gw.Agents()
	if len(ag) != 1 || ag[0].Branch != "BR-01" || len(ag[0].ATMs) != 1 || ag[0].ATMs[0] != "ATM-0101" {
		t.Fatalf("gateway's agents: %+v", ag)
	}
	if b.up.Status().Executed[dclink.OpStatus] != 1 {
		t.Fatalf("agent executed: %+v", b.up.Status().Executed)
	}
}

// TestATMNotPinnedIsRefused: the agent announces a pinned ATM and one no
// branch owns; the second is refused with a message naming the fix, the
// gateway sends it nothing, and the agent says not ready.
func TestATMNotPinnedIsRefused(t *testing.T) {
	d := newDC(t, storetest.SQLite(t))
	ctx := context.Background()
	if err := d.reg.Assign(ctx, "BR-01", "ATM-0101"); err != nil {
		t.Fatal(err)
	}
	tok := d.enroll(t, br01Tok, "unpinned-agent", "BR-01")
	b := d.startAgent(t, agentSpec{branch: "BR-01", atms: []string{"ATM-0101", "ATM-0999"}, token: &tok})
	b.waitUp(t, 1)
	st := b.up.Status()
	if len(st.Accepted) != 1 || st.Accepted[0] != "ATM-0101" || len(st.Refused) != 1 ||
		st.Refused[0].ATM != "ATM-0999" || st.Refused[0].Code != dclink.CodeATMNotPinned || !strings.Contains(st.Refused[0].Message, "egate admin agent assign") {
		t.Fatalf("link status: %+v", st)
	}
	if err := b.up.Check(ctx); err == nil || !strings.Contains(err.Error(), "ATM-0999") {
		t.Fatalf("readiness with a refused ATM: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := d.gw.Do(cctx, "ATM-0999", dclink.OpStatus, nil); !errors.Is(err, gateway.ErrNotPinned) {
		t.Fatalf("a command for the unpinned ATM: %v", err)
	}
	if n := b.up.Status().Executed; len(n) != 0 {
		t.Fatalf("the agent executed %v", n)
	}
}

// TestRevokedCertificate: an agent with a live link is revoked with the
// CA. The next command finds it revoked (the gateway verifies the link's
// certificate before every command and every recheck interval), is not
// sent, and the link is dropped with the reason; every reconnection is
// refused with certificate_revoked. Nothing is dispensed.
func TestRevokedCertificate(t *testing.T) {
	d := newDC(t, storetest.SQLite(t))
	ctx := context.Background()
	if err := d.reg.Assign(ctx, "BR-01", "ATM-0101"); err != nil {
		t.Fatal(err)
	}
	tok := d.enroll(t, br01Tok, "revoked-agent", "BR-01")
	b := d.startAgent(t, agentSpec{branch: "BR-01", atms: []string{"ATM-0101"}, token: &tok})
	b.waitUp(t, 1)
	serial := d.gw.Agents()[0].CertSerial
	if err := d.ca.Revoke(ctx, serial, ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := d.gw.Do(cctx, "ATM-0101", dclink.OpDispense, dclink.DispenseArgs{Txn: atm.NewTxnID().String(), AmountFen: 10000, Notes: []dclink.Notes{{Cassette: 1, Count: 1}}})
	if !errors.Is(err, gateway.ErrAgentRefused) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a dispense for a revoked agent: %v", err)
	}
	msg := b.waitError(t, dclink.CodeCertRevoked)
	if !strings.Contains(msg, "enroll the agent again") {
		t.Fatalf("the agent's message: %q", msg)
	}
	// It keeps trying and is refused at each new connection.
	refusedAt := func() int {
		n := 0
		for _, r := range d.gw.Refusals() {
			if r.Code == dclink.CodeCertRevoked && r.Branch == "BR-01" {
				n++
			}
		}
		return n
	}
	waitFor(t, "two refusals at reconnection", func() bool { return refusedAt() >= 3 })
	if d.gw.Connected("BR-01") || b.up.Status().Up {
		t.Fatal("a revoked agent has a live link")
	}
	if n := notesOut(b.sims["ATM-0101"]); n != 0 || len(b.up.Status().Executed) != 0 {
		t.Fatalf("a revoked agent moved %d notes, executed %v", n, b.up.Status().Executed)
	}
}

// TestRevokedLiveLinkDroppedByRecheck: with no command to send, the
// gateway's periodic recheck finds the revocation and drops the live link.
func TestRevokedLiveLinkDroppedByRecheck(t *testing.T) {
	reported := make(chan gateway.Refusal, 16)
	connected := make(chan gateway.AgentInfo, 4)
	d := newDC(t, storetest.SQLite(t), func(o *gateway.Options) {
		o.Recheck = 100 * time.Millisecond
		o.OnRefusal = func(r gateway.Refusal) {
			select {
			case reported <- r:
			default:
			}
		}
		o.OnConnect = func(a gateway.AgentInfo) { connected <- a }
	})
	ctx := context.Background()
	if err := d.reg.Assign(ctx, "BR-01", "ATM-0101"); err != nil {
		t.Fatal(err)
	}
	tok := d.enroll(t, br01Tok, "recheck-agent", "BR-01")
	b := d.startAgent(t, agentSpec{branch: "BR-01", atms: []string{"ATM-0101"}, token: &tok})
	b.waitUp(t, 1)
	if err := d.ca.Revoke(ctx, d.gw.Agents()[0].CertSerial, ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	b.waitError(t, dclink.CodeCertRevoked)
	waitFor(t, "the gateway to drop the link", func() bool { return !d.gw.Connected("BR-01") })
	// The hooks the process audits with saw the link and its refusal.
	if a := <-connected; a.Branch != "BR-01" || len(a.ATMs) != 1 {
		t.Fatalf("OnConnect: %+v", a)
	}
	if r := <-reported; r.Code != dclink.CodeCertRevoked || r.Branch != "BR-01" {
		t.Fatalf("OnRefusal: %+v", r)
	}
}

// TestSilentLinkLoss: the connection stops carrying bytes without being
// closed (a dead line, a NAT that forgot it). Both ends notice within three
// pings, the agent reconnects, and commands flow again.
func TestSilentLinkLoss(t *testing.T) {
	d := newDC(t, storetest.SQLite(t), func(o *gateway.Options) { o.Ping = 200 * time.Millisecond })
	ctx := context.Background()
	if err := d.reg.Assign(ctx, "BR-01", "ATM-0101"); err != nil {
		t.Fatal(err)
	}
	tok := d.enroll(t, br01Tok, "silent-agent", "BR-01")
	b := d.startAgent(t, agentSpec{branch: "BR-01", atms: []string{"ATM-0101"}, token: &tok})
	b.waitUp(t, 1)
	d.proxy.freeze()
	b.waitError(t, "link lost")
	b.waitUp(t, 2)
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	raw, err := d.gw.Do(cctx, "ATM-0101", dclink.OpStatus, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := statusOf(t, raw); !st.Up {
		t.Fatalf("status after the reconnect: %+v", st)
	}
	if ag := d.gw.Agents(); len(ag) != 1 {
		t.Fatalf("the gateway keeps %d links for one branch", len(ag))
	}
}

// TestRefusedCertificates: certificates the gateway must not accept, each
// refused with a message saying what is wrong, and nothing dispensed.
func TestRefusedCertificates(t *testing.T) {
	d := newDC(t, storetest.SQLite(t))
	ctx := context.Background()
	for _, p := range [][2]string{{"BR-01", "ATM-0101"}, {"BR-02", "ATM-0201"}} {
		if err := d.reg.Assign(ctx, p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	br02 := d.enroll(t, br02Tok, "br02-agent", "BR-02")
	foreign := foreignCert(t, "BR-01")
	ushield := ushieldCert(t, d, "alice")

	t.Run("another branch's certificate presenting a foreign ATM", func(t *testing.T) {
		b := d.startAgent(t, agentSpec{branch: "BR-02", atms: []string{"ATM-0101", "ATM-0201"}, token: &br02})
		b.waitUp(t, 1)
		st := b.up.Status()
		if len(st.Refused) != 1 || st.Refused[0].ATM != "ATM-0101" || st.Refused[0].Code != dclink.CodeATMOtherBranch ||
			!strings.Contains(st.Refused[0].Message, "belongs to branch BR-01") {
			t.Fatalf("refusals: %+v", st.Refused)
		}
		// A dispense for ATM-0101 goes to BR-01's agent only, never
		// through BR-02's link: with BR-01 absent it finds no agent.
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		_, err := d.gw.Do(cctx, "ATM-0101", dclink.OpDispense, dclink.DispenseArgs{Txn: atm.NewTxnID().String(), AmountFen: 10000, Notes: []dclink.Notes{{Cassette: 1, Count: 1}}})
		if !errors.Is(err, gateway.ErrNoAgent) {
			t.Fatalf("dispense on the other branch's ATM: %v", err)
		}
		if n := notesOut(b.sims["ATM-0101"]); n != 0 || len(b.up.Status().Executed) != 0 {
			t.Fatalf("moved %d notes, executed %v", n, b.up.Status().Executed)
		}
	})
	t.Run("another branch's certificate claiming this branch", func(t *testing.T) {
		b := d.startAgent(t, agentSpec{branch: "BR-01", atms: []string{"ATM-0101"}, token: &br02})
		msg := b.waitError(t, dclink.CodeBranchMismatch)
		if !strings.Contains(msg, "issued to branch BR-02") {
			t.Fatalf("message: %q", msg)
		}
	})
	t.Run("certificate from another CA", func(t *testing.T) {
		b := d.startAgent(t, agentSpec{branch: "BR-01", atms: []string{"ATM-0101"}, cert: &foreign})
		b.waitError(t, "did not accept this agent's certificate at the TLS handshake")
		if d.gw.Connected("BR-01") {
			t.Fatal("a foreign certificate got a link")
		}
	})
	t.Run("a customer's U-shield certificate of the bank CA", func(t *testing.T) {
		b := d.startAgent(t, agentSpec{branch: "alice", atms: []string{"ATM-0101"}, cert: &ushield})
		b.waitError(t, dclink.CodeNotAgentCert)
		if d.gw.Connected("alice") {
			t.Fatal("a U-shield certificate got a link")
		}
	})
}

// TestLinkLossMidCommand: the TCP connection between agent and gateway is
// cut (by the proxy) while a dispense runs on the ATM. The agent keeps
// dispensing (the driver does not depend on the link), reconnects with
// backoff, and the gateway's re-sent command (same id) is answered with
// the first execution's result: one execution, the notes out once, one
// result delivered to the caller.
func TestLinkLossMidCommand(t *testing.T) {
	d := newDC(t, storetest.SQLite(t))
	ctx := context.Background()
	if err := d.reg.Assign(ctx, "BR-01", "ATM-0101"); err != nil {
		t.Fatal(err)
	}
	tok := d.enroll(t, br01Tok, "linkloss-agent", "BR-01")
	b := d.startAgent(t, agentSpec{branch: "BR-01", atms: []string{"ATM-0101"}, token: &tok, sim: simatm.Config{PickTime: 400 * time.Millisecond}})
	b.waitUp(t, 1)
	txn := atm.NewTxnID()
	cmd, err := gateway.NewCommand("ATM-0101", dclink.OpDispense, dclink.DispenseArgs{Txn: txn.String(), AmountFen: 30000, Notes: []dclink.Notes{{Cassette: 1, Count: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		raw json.RawMessage
		err error
	}
	got := make(chan result, 2)
	go func() {
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		raw, err := d.gw.Send(cctx, cmd)
		got <- result{raw, err}
	}()
	sim := b.sims["ATM-0101"]
	waitFor(t, "the ATM to start the dispense", func() bool { _, ok := sim.Sim.Record(txn); return ok })
	if cut := d.proxy.cut(); cut == 0 {
		t.Fatal("the proxy had no connection to cut")
	}
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	var rec dclink.TxnRecord
	if err := json.Unmarshal(r.raw, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Txn != txn.String() || rec.State != "PRESENTED" && rec.State != "TAKEN" || rec.Cassettes[0].Presented != 3 {
		t.Fatalf("the dispense's record: %+v", rec)
	}
	st := b.up.Status()
	if st.Connects < 2 {
		t.Fatalf("the agent did not reconnect: %+v", st)
	}
	if st.Executed[dclink.OpDispense] != 1 {
		t.Fatalf("the dispense ran %d times on the agent", st.Executed[dclink.OpDispense])
	}
	if n := notesOut(sim); n != 3 {
		t.Fatalf("%d notes left the cassettes, want 3", n)
	}
	// The same command once more (a caller that lost the answer): the
	// cached result, no new execution.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := d.gw.Send(cctx, cmd); err != nil {
		t.Fatal(err)
	}
	if n := b.up.Status().Executed[dclink.OpDispense]; n != 1 || notesOut(sim) != 3 {
		t.Fatalf("re-sent command: executed %d times, %d notes out", n, notesOut(sim))
	}
	// The same id for another command is refused.
	other := cmd
	other.Args = json.RawMessage(`{"txn":"` + atm.NewTxnID().String() + `","amount_fen":10000,"notes":[{"cassette":1,"count":1}]}`)
	var ce *gateway.CommandError
	if _, err := d.gw.Send(cctx, other); !errors.As(err, &ce) || ce.Err.Code != dclink.ErrCommandReused {
		t.Fatalf("an id re-used for another dispense: %v", err)
	}
	if notesOut(sim) != 3 {
		t.Fatal("the re-used id dispensed")
	}
	// The ATM's events reached the data centre.
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev := <-d.events:
			if ev.ATM == "ATM-0101" && ev.Record.Txn == txn.String() && ev.Kind == "taken" {
				return
			}
		case <-deadline:
			t.Fatal("no taken event reached the gateway")
		}
	}
}

// TestAgentOpensNoListener: the data centre has nothing to dial: starting
// an agent with its data-centre link adds no listening socket to the
// process (the gateway and proxy of the test listen before the count).
func TestAgentOpensNoListener(t *testing.T) {
	d := newDC(t, storetest.SQLite(t))
	ctx := context.Background()
	if err := d.reg.Assign(ctx, "BR-01", "ATM-0101"); err != nil {
		t.Fatal(err)
	}
	tok := d.enroll(t, br01Tok, "nolisten-agent", "BR-01")
	before := listeners(t)
	b := d.startAgent(t, agentSpec{branch: "BR-01", atms: []string{"ATM-0101"}, token: &tok})
	b.waitUp(t, 1)
	after := listeners(t)
	for ino := range after {
		if !before[ino] {
			t.Fatalf("the agent opened a listening socket (inode %s)", ino)
		}
	}
	if len(before) == 0 {
		t.Fatal("the test's own listeners were not seen: the check cannot fail")
	}
}

// listeners returns the inodes of this process's listening TCP sockets.
func listeners(t *testing.T) map[string]bool {
	t.Helper()
	mine := map[string]bool{}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		testenv.Missing(t, "/proc", err.Error())
	}
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			mine[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	out := map[string]bool{}
	for _, f := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) > 9 && fs[3] == "0A" && mine[fs[9]] { // 0A: LISTEN
				out[fs[9]] = true
			}
		}
	}
	return out
}

// foreignCert is an agent certificate for branch from a CA that is not the
// bank's, with a software key.
func foreignCert(t *testing.T, branch string) tls.Certificate {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Other Root"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: branch, OrganizationalUnit: []string{"Branch agent"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}
}

// ushieldCert is a customer's U-shield certificate from the bank CA (a
// client certificate of the right chain, but not an agent's).
func ushieldCert(t *testing.T, d *dc, customer string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: customer}}, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := d.ca.Issue(context.Background(), ca.IssueRequest{Kind: ca.KindToken, Owner: customer, CSR: csr, TokenKey: key.Public()})
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key}
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
