package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/atm"
	"github.com/egate-bank/egate/authsvc"
	"github.com/egate-bank/egate/authsvc/backend"
	"github.com/egate-bank/egate/authsvc/wdpin"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
	simatm "github.com/egate-bank/egate/simulators/atm"
)

// The operator's path for a branch agent, through the egate binary:
// egate admin agent gateway-cert, enroll (key made on the agent's SoftHSM
// token, sign-only and never extractable, as pkcs11-tool sees it), assign;
// then egate agent-gateway and egate agent as processes, the agent dialling
// out with the token's key, and the ATM's STATUS read through the gateway.
// Bad input (a second enrollment on the label, a wrong PIN, an ATM pinned
// to another branch) is one line and changes nothing. The gateway opens a
// withdrawal session only for the back-end client with atm:withdrawals;
// then a whole QR withdrawal through egate authsvc, egate agent-gateway and
// egate agent as processes: egate sim phone (bound through the passport)
// scans the ATM's QR image and signs, the withdrawal PIN is typed on the
// simulated ATM's PIN pad and opened in the HSM, 300 yuan are dispensed,
// taken and CAPTURED, alice's account is 300 yuan lighter and egate admin
// ledger check passes.
func TestAdminAgentAndLink(t *testing.T) {
	tool := testenv.NeedCommand(t, "pkcs11-tool", "opensc")
	if _, err := simatm.OpenPTY(); err != nil {
		testenv.Missing(t, "a pseudo-terminal", err.Error())
	}
	b := newAdminBench(t)
	b.caInit(t)
	const agentPIN = "11335577"
	if _, _, err := b.sh.InitToken(context.Background(), "branch-0101", "99887766", agentPIN); err != nil {
		t.Fatal(err)
	}
	b.env = append(b.env, "EGATE_TEST_AGENT_PIN="+agentPIN, "EGATE_TEST_AGENT_WRONG=24242424")
	rootPEM, gwPEM := filepath.Join(b.dir, "root.pem"), filepath.Join(b.dir, "gateway.pem")

	r := b.admin(t, "agent", "gateway-cert", "--host", "127.0.0.1", "--out", gwPEM)
	if r.code != 0 || !strings.Contains(r.stdout, "egate-agent-gateway") {
		t.Fatalf("gateway-cert: %+v", r)
	}
	raw, _ := os.ReadFile(gwPEM)
	if n := strings.Count(string(raw), "BEGIN CERTIFICATE"); n != 2 {
		t.Fatalf("gateway.pem holds %d certificates, want the gateway's and the issuing CA's", n)
	}

	enroll := func(pinEnv string) result {
		return b.admin(t, "agent", "enroll", "--branch", "BR-0101", "--token-module", b.sh.Module, "--token-label", "branch-0101",
			"--pin-source", "env:"+pinEnv, "--ca-out", rootPEM)
	}
	r = enroll("EGATE_TEST_AGENT_WRONG")
	oneLine(t, r, "branch-0101")
	if strings.Contains(r.stderr, "24242424") || strings.Contains(r.stderr, agentPIN) {
		t.Fatalf("a PIN reached the error: %s", r.stderr)
	}
	r = enroll("EGATE_TEST_AGENT_PIN")
	m := regexp.MustCompile(`key: "(pkcs11:token=branch-0101;object=egate-agent;type=private)"`).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("enroll: %+v", r)
	}
	oneLine(t, enroll("EGATE_TEST_AGENT_PIN"), "already holds a key", "egate-agent")
	cmd := exec.Command(tool, "--module", b.sh.Module, "--token-label", "branch-0101", "--login", "--pin", agentPIN, "--list-objects")
	cmd.Env = append(os.Environ(), b.sh.Env())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool: %v\n%s", err, out)
	}
	objs := string(out)
	if strings.Count(objs, "Private Key Object") != 1 || !strings.Contains(objs, "CN=BR-0101") ||
		!regexp.MustCompile(`Private Key Object; EC\n\s+label:\s+egate-agent\n\s+ID:\s+\S+\n\s+Usage:\s+sign\n\s+Access:\s+sensitive, always sensitive, never extractable`).MatchString(objs) {
		t.Fatalf("the agent token after enroll:\n%s", objs)
	}

	ob := &opBench{adminBench: b, dsn: b.db}
	serial := regexp.MustCompile(`serial ([0-9a-f]+)`).FindStringSubmatch(r.stdout)[1]
	ob.lastAudit(t, "admin.agent.enroll", map[string]string{"operator": osUser(t), "branch": "BR-0101", "cert_serial": serial, "token": "branch-0101"})
	if r := b.admin(t, "agent", "assign", "--branch", "BR-0101", "--atm", "ATM-0101", "--operator", "li.na"); r.code != 0 {
		t.Fatalf("assign: %+v", r)
	}
	ob.lastAudit(t, "admin.agent.assign", map[string]string{"operator": "li.na", "branch": "BR-0101", "atm": "ATM-0101"})
	before := len(ob.audit(t))
	oneLine(t, b.admin(t, "agent", "assign", "--branch", "BR-0202", "--atm", "ATM-0101"), "belongs to branch BR-0101")
	if after := len(ob.audit(t)); after != before {
		t.Fatalf("a refused assign was audited: %d → %d", before, after)
	}
	if r := b.admin(t, "agent", "list"); r.code != 0 || !regexp.MustCompile(`ATM-0101\s+BR-0101`).MatchString(r.stdout) {
		t.Fatalf("list: %+v", r)
	}

	const padKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	// The passport (egate authsvc, its transaction API for the gateway's
	// back-end client), alice with 1,000 yuan, her phone app bound through
	// it, and her withdrawal PIN (the HMAC made in the HSM).
	const txSecret = "agent-gateway-tx-0123456789abcdef0123456789abcdef"
	pid := b.customer(t, "alice")
	db := openBenchDB(t, b)
	ctx := context.Background()
	l := ledger.New(db, nil)
	if _, err := ebank.EnsureBankAccounts(ctx, l); err != nil {
		t.Fatal(err)
	}
	accts, err := ebank.OpenCustomerAccounts(ctx, l, pid, "alice", ebank.Opening{Current: 1_000_00})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", b.sh.ConfPath)
	hsmPIN := filepath.Join(b.dir, "hsm-pin")
	os.WriteFile(hsmPIN, []byte(benchHSMPIN), 0o600)
	h, err := hsm.Open(ctx, hsm.Config{Module: b.sh.Module, Token: benchHSMToken, PINSource: "file:" + hsmPIN})
	if err != nil {
		t.Fatal(err)
	}
	pp, err := authsvc.NewPassport(ctx, db, config.Defaults().Authsvc.Passport, nil)
	if err != nil {
		t.Fatal(err)
	}
	pins, err := wdpin.New(wdpin.Options{DB: db, HSM: h, Attempts: pp})
	if err != nil {
		t.Fatal(err)
	}
	const wdPIN = "135790"
	if err := pins.Set(ctx, pid, []byte(wdPIN)); err != nil {
		t.Fatal(err)
	}
	h.Close()
	db.Close()
	authConf := filepath.Join(b.dir, "auth.yaml")
	os.WriteFile(authConf, []byte(fmt.Sprintf(`http: {listen: "%s"}
database: {driver: sqlite, dsn: "%s"}
hsm: {module: "%s", token: %s, pin-source: "env:EGATE_TEST_HSM_PIN"}
factors: {enabled: [sms, phone], sms: {dev-sink: true}}
authsvc:
  backend-clients:
    - {id: agent-gateway, secret-sha256: %s, scopes: [tx:authorize, tx:execute, alerts:balance]}
`, freePort(t), b.db, b.sh.Module, benchHSMToken, backend.HashSecret([]byte(txSecret)))), 0o600)
	authBase, _ := startAuthsvc(t, b, authConf)
	b.env = append(b.env, "EGATE_TEST_APP_PIN=2468")
	phoneState := bindPhone(t, b, authBase)

	// The two processes.
	padKeyBytes, _ := hex.DecodeString(padKey)
	sim, err := simatm.StartPTY(context.Background(), simatm.Config{Cassettes: simatm.DefaultCassettes(),
		JournalPath: filepath.Join(b.dir, "journal"), Link: atm.LinkConfig{Baud: 115200}, PINKey: padKeyBytes, PINKeyID: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Stop()
	gwTLS, gwHTTP, agHTTP := freeAddr(t), freeAddr(t), freeAddr(t)
	dcCfg := filepath.Join(b.dir, "dc.yaml")
	// The bank's ATM application opens withdrawal sessions as a back-end
	// client with atm:withdrawals; core banking's client has other scopes.
	const atmAppSecret, coreSecret = "atm-app-0123456789abcdef0123456789abcdef", "core-0123456789abcdef0123456789abcdef"
	os.WriteFile(dcCfg, []byte(fmt.Sprintf(`database: {driver: sqlite, dsn: %s}
hsm: {module: %s, token: %s, pin-source: "env:EGATE_TEST_HSM_PIN"}
http: {listen: %s}
agent-gateway: {listen: %s, cert: %s}
withdrawals: {enabled: true, tx-url: "%s", tx-client: agent-gateway, tx-secret: "%s"}
authsvc:
  backend-clients:
    - {id: atm-app, secret-sha256: %s, scopes: [atm:withdrawals]}
    - {id: core, secret-sha256: %s, scopes: [tx:authorize, ebank:holds]}
`, b.db, b.sh.Module, benchHSMToken, gwHTTP, gwTLS, gwPEM, authBase, txSecret, backend.HashSecret([]byte(atmAppSecret)), backend.HashSecret([]byte(coreSecret)))), 0o600)
	agCfg := filepath.Join(b.dir, "agent.yaml")
	os.WriteFile(agCfg, []byte(fmt.Sprintf(`agent:
  listen: %s
  atms: [{id: ATM-0101, port: %s, baud: 115200}]
  branch: BR-0101
  datacentre-url: tls://%s
  datacentre-ca: %s
  token: {module: %s, key: %q, pin-source: "env:EGATE_TEST_AGENT_PIN", module-env: [%q]}
  reconnect-min: 50ms
  reconnect-max: 500ms
`, agHTTP, sim.TTYName, gwTLS, rootPEM, b.sh.Module, m[1], b.sh.Env())), 0o600)
	start := func(env []string, args ...string) {
		c := exec.Command(egateBin, args...)
		c.Dir, c.Env = b.dir, env
		var buf strings.Builder
		c.Stdout, c.Stderr = &buf, &buf
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			c.Process.Kill()
			c.Wait()
			if t.Failed() {
				t.Logf("egate %v:\n%s", args, buf.String())
			}
		})
	}
	// The agent finds its token through agent.token.module-env alone.
	var agentEnv []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SOFTHSM2_CONF=") {
			agentEnv = append(agentEnv, kv)
		}
	}
	start(append(agentEnv, "EGATE_TEST_AGENT_PIN="+agentPIN), "--config", agCfg, "agent") // first: it waits for the data centre
	start(append(os.Environ(), b.env...), "--config", dcCfg, "agent-gateway")
	var st struct {
		ID        string `json:"id"`
		Up        bool   `json:"up"`
		Cassettes []any  `json:"cassettes"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + gwHTTP + "/agent-gateway/atms/ATM-0101/status")
		if err == nil {
			ok := resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&st) == nil
			resp.Body.Close()
			if ok {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no STATUS of ATM-0101 through the gateway: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // two processes starting; nothing to wait on
	}
	if st.ID != "ATM-0101" || !st.Up || len(st.Cassettes) != 4 {
		t.Fatalf("status through the gateway: %+v", st)
	}
	// The link is audited by the gateway.
	var linked bool
	for _, a := range ob.audit(t) {
		linked = linked || a.Kind == "agent.connected" && a.Fields["branch"] == "BR-0101" && a.Fields["atms"] == "ATM-0101"
	}
	if !linked {
		t.Fatalf("no agent.connected record for BR-0101 in the audit log: %+v", ob.audit(t))
	}
	resp, err := http.Get("http://" + agHTTP + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the agent's /readyz with the link up: %d", resp.StatusCode)
	}

	// The ATM's PIN pad key into the HSM (key never printed), then the QR
	// withdrawal API on the gateway's http.listen (withdrawals.enabled):
	// a session shown on the ATM through the agent, an approval without the
	// phone's proof refused, nothing dispensed.
	b.env = append(b.env, "EGATE_TEST_PAD_KEY="+padKey)
	r = b.admin(t, "atm", "pin-key", "--atm", "ATM-0101", "--key-source", "env:EGATE_TEST_PAD_KEY", "--operator", "li.na")
	if r.code != 0 || !strings.Contains(r.stdout, "egate-atm-tpk-ATM-0101") || strings.Contains(r.stdout+r.stderr, padKey) {
		t.Fatalf("pin-key: %+v", r)
	}
	ob.lastAudit(t, "admin.atm.pin-key", map[string]string{"operator": "li.na", "atm": "ATM-0101"})
	openSession := func(id, secret string) *http.Response {
		req, _ := http.NewRequest("POST", "http://"+gwHTTP+"/atm/withdrawals", strings.NewReader(`{"atm":"ATM-0101"}`))
		if id != "" {
			req.SetBasicAuth(id, secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, c := range []struct {
		name, id, secret string
		status           int
		code             string
	}{
		{"anonymous", "", "", http.StatusUnauthorized, "unauthorized"},
		{"a wrong secret", "atm-app", coreSecret, http.StatusUnauthorized, "invalid_client"},
		{"core banking (no atm:withdrawals)", "core", coreSecret, http.StatusForbidden, "insufficient_scope"},
	} {
		resp := openSession(c.id, c.secret)
		var e struct {
			Error struct{ Code, Message string }
		}
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != c.status || e.Error.Code != c.code || (c.status == http.StatusUnauthorized) != (resp.Header.Get("WWW-Authenticate") != "") {
			t.Fatalf("open a session, %s: %d %+v (WWW-Authenticate %q)", c.name, resp.StatusCode, e, resp.Header.Get("WWW-Authenticate"))
		}
		if text, _ := sim.Sim.ScreenNow(); strings.HasPrefix(text, "egate-wd:") {
			t.Fatalf("open a session, %s: the ATM shows a QR %q", c.name, text)
		}
	}
	resp = openSession("atm-app", atmAppSecret)
	var opened struct{ Session, QR, State string }
	json.NewDecoder(resp.Body).Decode(&opened)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || opened.State != "QR_SHOWN" {
		t.Fatalf("open a withdrawal session through egate agent-gateway: %d %+v", resp.StatusCode, opened)
	}
	if text, png := sim.Sim.ScreenNow(); text != opened.QR || len(png) == 0 {
		t.Fatalf("the ATM shows %q, want the session's QR %q", text, opened.QR)
	}
	resp, err = http.Post("http://"+gwHTTP+"/atm/withdrawals/approve", "application/json",
		strings.NewReader(`{"qr":"`+opened.QR+`","account":"6299000000000000001","amount_fen":10000,"proof":"{}"}`))
	if err != nil {
		t.Fatal(err)
	}
	var refused struct {
		Error struct{ Code, Message string }
	}
	json.NewDecoder(resp.Body).Decode(&refused)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || refused.Error.Code != "bad_proof" {
		t.Fatalf("an approval without the phone's proof: %d %+v", resp.StatusCode, refused)
	}
	if tot := sim.Sim.Totals(); tot.Taken != 0 || tot.AtExit != 0 {
		t.Fatalf("something was dispensed: %+v", tot)
	}

	// The whole withdrawal: a new session, its QR image scanned by egate
	// sim phone (the app PIN signs the challenge), the withdrawal PIN on
	// the ATM's PIN pad (typed ahead: the pad keeps it for its prompt), the
	// cash dispensed and taken, captured.
	resp = openSession("atm-app", atmAppSecret)
	json.NewDecoder(resp.Body).Decode(&opened)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("open: %d", resp.StatusCode)
	}
	text, png := sim.Sim.ScreenNow()
	if text != opened.QR {
		t.Fatalf("the ATM shows %q, want %q", text, opened.QR)
	}
	img := filepath.Join(b.dir, "atm-qr.png")
	os.WriteFile(img, png, 0o644)
	rr := httptest.NewRecorder()
	typed := httptest.NewRequest("POST", "/pin", strings.NewReader("digits="+wdPIN))
	typed.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sim.Sim.Handler().ServeHTTP(rr, typed)
	if rr.Code != http.StatusNoContent {
		t.Fatalf("typing the withdrawal PIN on the ATM's pad: %d %s", rr.Code, rr.Body)
	}
	r = run(t, b.dir, b.env, "sim", "phone", "scan", img, "--state", phoneState, "--pin-source", "env:EGATE_TEST_APP_PIN",
		"--account", accts[0].Number, "--amount", "300", "--bank", "http://"+gwHTTP, "--yes")
	if r.code != 0 {
		t.Fatalf("sim phone scan: %+v", r)
	}
	var wd struct {
		State    string `json:"state"`
		Captured int64  `json:"captured_fen"`
	}
	for deadline := time.Now().Add(30 * time.Second); wd.State != "CAPTURED"; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("withdrawal %s: %+v, want CAPTURED", opened.Session, wd)
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+gwHTTP+"/atm/withdrawals/"+opened.Session, nil)
		req.SetBasicAuth("atm-app", atmAppSecret) // the amounts are the ATM application's; anonymous reads get the state
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&wd)
		resp.Body.Close()
	}
	if wd.Captured != 300_00 {
		t.Fatalf("captured %d fen, want 30000", wd.Captured)
	}
	db = openBenchDB(t, b)
	defer db.Close()
	a, err := ledger.New(db, nil).Account(ctx, accts[0].Number)
	if err != nil || a.Balance() != 700_00 || a.Available() != 700_00 {
		t.Fatalf("alice's account after 300 yuan out: %+v, %v", a, err)
	}
	if tot := sim.Sim.Totals(); tot.Taken != 3 {
		t.Fatalf("the ATM's notes taken: %+v, want 3 of 100 yuan", tot)
	}
	if r := run(t, b.dir, nil, "admin", "ledger", "check", "--db", b.db); r.code != 0 {
		t.Fatalf("ledger check: %+v", r)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
