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
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/atm"
	"github.com/egate-bank/egate/atm/atmtest"
	"github.com/egate-bank/egate/atm/gateway"
	"github.com/egate-bank/egate/authsvc/ca"
	"github.com/egate-bank/egate/devices/agent"
	"github.com/egate-bank/egate/devices/agent/dclink"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/internal/testenv"
	simatm "github.com/egate-bank/egate/simulators/atm"
)

var env = atmtest.NewEnv()

func TestMain(m *testing.M) { atmtest.Main(m, env) }

// dc is the shared harness's data centre (atm/atmtest).
type dc = atmtest.DC

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
	d := env.NewDC(t, storetest.SQLite(t))
	ctx := context.Background()
	if err := d.Reg.Assign(ctx, "BR-01", "ATM-0101"); err != nil {
		t.Fatal(err)
	}
	tok := d.Enroll(t, atmtest.BR01Token, "status-agent", "BR-01")
	b := d.StartAgent(t, atmtest.AgentSpec{Branch: "BR-01", ATMs: []string{"ATM-0101"}, Token: &tok})
	b.WaitUp(t, 1)
	if err := b.Up.Check(ctx); err != nil {
		t.Fatalf("readiness with the link up: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	raw, err := d.GW.Do(cctx, "ATM-0101", dclink.OpStatus, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := statusOf(t, raw)
	if !st.Up || st.ID != "ATM-0101" || len(st.Cassettes) != 4 || st.Cassettes[0].Count != 500 {
		t.Fatalf("status through the gateway: %+v", st)
	}
	ag := d.GW.Agents()
	if len(ag) != 1 || ag[0].Branch != "BR-01" || len(ag[0].ATMs) != 1 || ag[0].ATMs[0] != "ATM-0101" {
		t.Fatalf("gateway's agents: %+v", ag)
	}
	if b.Up.Status().Executed[dclink.OpStatus] != 1 {
		t.Fatalf("agent executed: %+v", b.Up.Status().Executed)
	}
}

// TestATMNotPinnedIsRefused: the agent announces a pinned ATM and one no
// branch owns; the second is refused with a message naming the fix, the
// gateway sends it nothing, and the agent says not ready.
func TestATMNotPinnedIsRefused(t *testing.T) {
	d := env.NewDC(t, storetest.SQLite(t))
	ctx := context.Background()
	if err := d.Reg.Assign(ctx, "BR-01", "ATM-0101"); err != nil {
		t.Fatal(err)
	}
	tok := d.Enroll(t, atmtest.BR01Token, "unpinned-agent", "BR-01")
	b := d.StartAgent(t, atmtest.AgentSpec{Branch: "BR-01", ATMs: []string{"ATM-0101", "ATM-0999"}, Token: &tok})
	b.WaitUp(t, 1)
	st := b.Up.Status()
	if len(st.Accepted) != 1 || st.Accepted[0] != "ATM-0101" || len(st.Refused) != 1 ||
		st.Refused[0].ATM != "ATM-0999" || st.Refused[0].Code != dclink.CodeATMNotPinned || !strings.Contains(st.Refused[0].Message, "egate admin agent assign") {
		t.Fatalf("link status: %+v", st)
	}
	if err := b.Up.Check(ctx); err == nil || !strings.Contains(err.Error(), "ATM-0999") {
		t.Fatalf("readiness with a refused ATM: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := d.GW.Do(cctx, "ATM-0999", dclink.OpStatus, nil); !errors.Is(err, gateway.ErrNotPinned) {
		t.Fatalf("a command for the unpinned ATM: %v", err)
	}
	if n := b.Up.Status().Executed; len(n) != 0 {
		t.Fatalf("the agent executed %v", n)
	}
}

// TestRevokedCertificate: an agent with a live link is revoked with the
// CA. The next command finds it revoked (the gateway verifies the link's
// certificate before every command and every recheck interval), is not
// sent, and the link is dropped with the reason; every reconnection is
// refused with certificate_revoked. Nothing is dispensed.
func TestRevokedCertificate(t *testing.T) {
	d := env.NewDC(t, storetest.SQLite(t))
	ctx := context.Background()
	if err := d.Reg.Assign(ctx, "BR-01", "ATM-0101"); err != nil {
		t.Fatal(err)
	}
	tok := d.Enroll(t, atmtest.BR01Token, "revoked-agent", "BR-01")
	b := d.StartAgent(t, atmtest.AgentSpec{Branch: "BR-01", ATMs: []string{"ATM-0101"}, Token: &tok})
	b.WaitUp(t, 1)
	serial := d.GW.Agents()[0].CertSerial
	if err := d.CA.Revoke(ctx, serial, ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := d.GW.Do(cctx, "ATM-0101", dclink.OpDispense, dclink.DispenseArgs{Txn: atm.NewTxnID().String(), AmountFen: 10000, Notes: []dclink.Notes{{Cassette: 1, Count: 1}}})
	if !errors.Is(err, gateway.ErrAgentRefused) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a dispense for a revoked agent: %v", err)
	}
	msg := b.WaitError(t, dclink.CodeCertRevoked)
	if !strings.Contains(msg, "enroll the agent again") {
		t.Fatalf("the agent's message: %q", msg)
	}
	// It keeps trying and is refused at each new connection.
	refusedAt := func() int {
		n := 0
		for _, r := range d.GW.Refusals() {
			if r.Code == dclink.CodeCertRevoked && r.Branch == "BR-01" {
				n++
			}
		}
		return n
	}
	atmtest.WaitFor(t, "two refusals at reconnection", func() bool { return refusedAt() >= 3 })
	if d.GW.Connected("BR-01") || b.Up.Status().Up {
		t.Fatal("a revoked agent has a live link")
	}
	if n := atmtest.NotesOut(b.Sims["ATM-0101"]); n != 0 || len(b.Up.Status().Executed) != 0 {
		t.Fatalf("a revoked agent moved %d notes, executed %v", n, b.Up.Status().Executed)
	}
}

// TestRevokedLiveLinkDroppedByRecheck: with no command to send, the
// gateway's periodic recheck finds the revocation and drops the live link.
func TestRevokedLiveLinkDroppedByRecheck(t *testing.T) {
	reported := make(chan gateway.Refusal, 16)
	connected := make(chan gateway.AgentInfo, 4)
	d := env.NewDC(t, storetest.SQLite(t), func(o *gateway.Options) {
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
	if err := d.Reg.Assign(ctx, "BR-01", "ATM-0101"); err != nil {
		t.Fatal(err)
	}
	tok := d.Enroll(t, atmtest.BR01Token, "recheck-agent", "BR-01")
	b := d.StartAgent(t, atmtest.AgentSpec{Branch: "BR-01", ATMs: []string{"ATM-0101"}, Token: &tok})
	b.WaitUp(t, 1)
	if err := d.CA.Revoke(ctx, d.GW.Agents()[0].CertSerial, ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	b.WaitError(t, dclink.CodeCertRevoked)
	atmtest.WaitFor(t, "the gateway to drop the link", func() bool { return !d.GW.Connected("BR-01") })
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
	d := env.NewDC(t, storetest.SQLite(t), func(o *gateway.Options) { o.Ping = 200 * time.Millisecond })
	ctx := context.Background()
	if err := d.Reg.Assign(ctx, "BR-01", "ATM-0101"); err != nil {
		t.Fatal(err)
	}
	tok := d.Enroll(t, atmtest.BR01Token, "silent-agent", "BR-01")
	b := d.StartAgent(t, atmtest.AgentSpec{Branch: "BR-01", ATMs: []string{"ATM-0101"}, Token: &tok})
	b.WaitUp(t, 1)
	d.Proxy.Freeze()
	b.WaitError(t, "link lost")
	b.WaitUp(t, 2)
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	raw, err := d.GW.Do(cctx, "ATM-0101", dclink.OpStatus, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := statusOf(t, raw); !st.Up {
		t.Fatalf("status after the reconnect: %+v", st)
	}
	if ag := d.GW.Agents(); len(ag) != 1 {
		t.Fatalf("the gateway keeps %d links for one branch", len(ag))
	}
}

// TestRefusedCertificates: certificates the gateway must not accept, each
// refused with a message saying what is wrong, and nothing dispensed.
func TestRefusedCertificates(t *testing.T) {
	d := env.NewDC(t, storetest.SQLite(t))
	ctx := context.Background()
	for _, p := range [][2]string{{"BR-01", "ATM-0101"}, {"BR-02", "ATM-0201"}} {
		if err := d.Reg.Assign(ctx, p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	br02 := d.Enroll(t, atmtest.BR02Token, "br02-agent", "BR-02")
	foreign := foreignCert(t, "BR-01")
	ushield := ushieldCert(t, d, "alice")

	t.Run("another branch's certificate presenting a foreign ATM", func(t *testing.T) {
		b := d.StartAgent(t, atmtest.AgentSpec{Branch: "BR-02", ATMs: []string{"ATM-0101", "ATM-0201"}, Token: &br02})
		b.WaitUp(t, 1)
		st := b.Up.Status()
		if len(st.Refused) != 1 || st.Refused[0].ATM != "ATM-0101" || st.Refused[0].Code != dclink.CodeATMOtherBranch ||
			!strings.Contains(st.Refused[0].Message, "belongs to branch BR-01") {
			t.Fatalf("refusals: %+v", st.Refused)
		}
		// A dispense for ATM-0101 goes to BR-01's agent only, never
		// through BR-02's link: with BR-01 absent it finds no agent.
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		_, err := d.GW.Do(cctx, "ATM-0101", dclink.OpDispense, dclink.DispenseArgs{Txn: atm.NewTxnID().String(), AmountFen: 10000, Notes: []dclink.Notes{{Cassette: 1, Count: 1}}})
		if !errors.Is(err, gateway.ErrNoAgent) {
			t.Fatalf("dispense on the other branch's ATM: %v", err)
		}
		if n := atmtest.NotesOut(b.Sims["ATM-0101"]); n != 0 || len(b.Up.Status().Executed) != 0 {
			t.Fatalf("moved %d notes, executed %v", n, b.Up.Status().Executed)
		}
	})
	t.Run("another branch's certificate claiming this branch", func(t *testing.T) {
		b := d.StartAgent(t, atmtest.AgentSpec{Branch: "BR-01", ATMs: []string{"ATM-0101"}, Token: &br02})
		msg := b.WaitError(t, dclink.CodeBranchMismatch)
		if !strings.Contains(msg, "issued to branch BR-02") {
			t.Fatalf("message: %q", msg)
		}
	})
	t.Run("certificate from another CA", func(t *testing.T) {
		b := d.StartAgent(t, atmtest.AgentSpec{Branch: "BR-01", ATMs: []string{"ATM-0101"}, Cert: &foreign})
		b.WaitError(t, "did not accept this agent's certificate at the TLS handshake")
		if d.GW.Connected("BR-01") {
			t.Fatal("a foreign certificate got a link")
		}
	})
	t.Run("a customer's U-shield certificate of the bank CA", func(t *testing.T) {
		b := d.StartAgent(t, atmtest.AgentSpec{Branch: "alice", ATMs: []string{"ATM-0101"}, Cert: &ushield})
		b.WaitError(t, dclink.CodeNotAgentCert)
		if d.GW.Connected("alice") {
			t.Fatal("a U-shield certificate got a link")
		}
	})
}

// TestSameCommandAtOnce: two callers send the same command (same id) at
// once, as a withdrawal's approval and its recovery do: both get its one
// result, executed once (before, the second caller's wait took the
// first's place and one of them waited for its timeout).
func TestSameCommandAtOnce(t *testing.T) {
	d := env.NewDC(t, storetest.SQLite(t))
	ctx := context.Background()
	if err := d.Reg.Assign(ctx, "BR-01", "ATM-0101"); err != nil {
		t.Fatal(err)
	}
	tok := d.Enroll(t, atmtest.BR01Token, "samecmd-agent", "BR-01")
	b := d.StartAgent(t, atmtest.AgentSpec{Branch: "BR-01", ATMs: []string{"ATM-0101"}, Token: &tok, Sim: simatm.Config{PickTime: 200 * time.Millisecond}})
	b.WaitUp(t, 1)
	txn := atm.NewTxnID()
	cmd, err := gateway.NewCommand("ATM-0101", dclink.OpDispense, dclink.DispenseArgs{Txn: txn.String(), AmountFen: 30000, Notes: []dclink.Notes{{Cassette: 1, Count: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	errs := make(chan error, 2)
	send := func() {
		raw, err := d.GW.Send(cctx, cmd)
		var rec dclink.TxnRecord
		if err == nil {
			err = json.Unmarshal(raw, &rec)
		}
		if err == nil && rec.Txn != txn.String() {
			err = fmt.Errorf("the result names %s", rec.Txn)
		}
		errs <- err
	}
	go send()
	sim := b.Sims["ATM-0101"]
	// the first send is waiting for the result while the ATM picks
	atmtest.WaitFor(t, "the ATM to start the dispense", func() bool { _, ok := sim.Sim.Record(txn); return ok })
	go send()
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("a caller of the command: %v", err)
		}
	}
	if n := b.Up.Status().Executed[dclink.OpDispense]; n != 1 || atmtest.NotesOut(sim) != 3 {
		t.Fatalf("executed %d times, %d notes out", n, atmtest.NotesOut(sim))
	}
}

// TestLinkLossMidCommand: the TCP connection between agent and gateway is
// cut (by the proxy) while a dispense runs on the ATM. The agent keeps
// dispensing (the driver does not depend on the link), reconnects with
// backoff, and the gateway's re-sent command (same id) is answered with
// the first execution's result: one execution, the notes out once, one
// result delivered to the caller.
func TestLinkLossMidCommand(t *testing.T) {
	d := env.NewDC(t, storetest.SQLite(t))
	ctx := context.Background()
	if err := d.Reg.Assign(ctx, "BR-01", "ATM-0101"); err != nil {
		t.Fatal(err)
	}
	tok := d.Enroll(t, atmtest.BR01Token, "linkloss-agent", "BR-01")
	b := d.StartAgent(t, atmtest.AgentSpec{Branch: "BR-01", ATMs: []string{"ATM-0101"}, Token: &tok, Sim: simatm.Config{PickTime: 400 * time.Millisecond}})
	b.WaitUp(t, 1)
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
		raw, err := d.GW.Send(cctx, cmd)
		got <- result{raw, err}
	}()
	sim := b.Sims["ATM-0101"]
	atmtest.WaitFor(t, "the ATM to start the dispense", func() bool { _, ok := sim.Sim.Record(txn); return ok })
	if cut := d.Proxy.Cut(); cut == 0 {
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
	st := b.Up.Status()
	if st.Connects < 2 {
		t.Fatalf("the agent did not reconnect: %+v", st)
	}
	if st.Executed[dclink.OpDispense] != 1 {
		t.Fatalf("the dispense ran %d times on the agent", st.Executed[dclink.OpDispense])
	}
	if n := atmtest.NotesOut(sim); n != 3 {
		t.Fatalf("%d notes left the cassettes, want 3", n)
	}
	// The same command once more (a caller that lost the answer): the
	// cached result, no new execution.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := d.GW.Send(cctx, cmd); err != nil {
		t.Fatal(err)
	}
	if n := b.Up.Status().Executed[dclink.OpDispense]; n != 1 || atmtest.NotesOut(sim) != 3 {
		t.Fatalf("re-sent command: executed %d times, %d notes out", n, atmtest.NotesOut(sim))
	}
	// The same id for another command is refused.
	other := cmd
	other.Args = json.RawMessage(`{"txn":"` + atm.NewTxnID().String() + `","amount_fen":10000,"notes":[{"cassette":1,"count":1}]}`)
	var ce *gateway.CommandError
	if _, err := d.GW.Send(cctx, other); !errors.As(err, &ce) || ce.Err.Code != dclink.ErrCommandReused {
		t.Fatalf("an id re-used for another dispense: %v", err)
	}
	if atmtest.NotesOut(sim) != 3 {
		t.Fatal("the re-used id dispensed")
	}
	// The ATM's events reached the data centre.
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev := <-d.Events:
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
	d := env.NewDC(t, storetest.SQLite(t))
	ctx := context.Background()
	if err := d.Reg.Assign(ctx, "BR-01", "ATM-0101"); err != nil {
		t.Fatal(err)
	}
	tok := d.Enroll(t, atmtest.BR01Token, "nolisten-agent", "BR-01")
	before := listeners(t)
	b := d.StartAgent(t, atmtest.AgentSpec{Branch: "BR-01", ATMs: []string{"ATM-0101"}, Token: &tok})
	b.WaitUp(t, 1)
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
	cert, err := d.CA.Issue(context.Background(), ca.IssueRequest{Kind: ca.KindToken, Owner: customer, CSR: csr, TokenKey: key.Public()})
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key}
}
