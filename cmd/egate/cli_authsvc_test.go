package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/alerts"
	"github.com/egate-bank/egate/authsvc/sms"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/testenv"
)

// A real `egate authsvc` process with the SMS development sink on serves no
// simulator page, refuses the OTP verify API to an anonymous caller, and
// verifies a code (oathtool's) for the back-end client of its config file,
// whose secret comes from the environment.
func TestAuthsvcProcessOTPAPI(t *testing.T) {
	testenv.NeedCommand(t, "oathtool", "oathtool")
	b := newAdminBench(t)
	const secret = "core-banking-secret-0123456789abcdef0123"
	b.env = append(b.env, "EGATE_TEST_CORE_SECRET="+secret)
	plain := filepath.Join(b.dir, "tokens.pskc")
	writePSKC(t, plain, "P", 1, pskc.WriterOptions{})
	if r := b.admin(t, "token", "import-pskc", plain); r.code != 0 {
		t.Fatalf("import: %+v", r)
	}
	// A customer with a mobile and a failed-login alert waiting in the
	// outbox: egate authsvc itself must send it by SMS (here to the dev sink).
	if r := b.run(t, "admin", "user", "add", "--db", b.db, "--login", "carol", "--mobile", "13900001111", "--reserved-message", "green kite 7"); r.code != 0 {
		t.Fatalf("user add: %+v", r)
	}
	{
		db, err := store.Open(context.Background(), store.Config{Driver: store.SQLite, DSN: b.db})
		if err != nil {
			t.Fatal(err)
		}
		var pid string
		if err := db.QueryRow(context.Background(), `SELECT passport_id FROM customers WHERE login_name = ?`, "carol").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		if _, err := alerts.New(db, nil).Post(context.Background(), pid, alerts.KindLoginFailed, alerts.LoginFailed{Time: time.Now().UTC(), Client: "ebank", Device: "test", IP: "192.0.2.1"}); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	conf := filepath.Join(b.dir, "egate.yaml")
	os.WriteFile(conf, []byte(`http: {listen: "127.0.0.1:0"}
database: {driver: sqlite, dsn: "`+b.db+`"}
hsm: {module: "`+b.sh.Module+`", token: `+benchHSMToken+`, pin-source: "env:EGATE_TEST_HSM_PIN"}
factors: {enabled: [sms, otp], sms: {dev-sink: true}}
authsvc:
  backend-clients:
    - {id: core, secret-source: "env:EGATE_TEST_CORE_SECRET", scopes: [otp:verify]}
`), 0o600)

	base, stop := startAuthsvc(t, b, conf)

	for _, p := range []string{"/sim/sms/", "/sim/sms/messages.json"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}

	code, err := exec.Command("oathtool", "--hotp", "-d", "6", "-c", "0", hex.EncodeToString(bytes.Repeat([]byte{1, 0x5a}, 10))).Output()
	if err != nil {
		t.Fatal(err)
	}
	body := `{"serial":"P0001","code":"` + strings.TrimSpace(string(code)) + `"}`
	call := func(user, secret string) (int, http.Header, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/v1/otp/verify", strings.NewReader(body))
		if user != "" {
			req.SetBasicAuth(user, secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, resp.Header, v
	}
	if st, h, v := call("", ""); st != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic ") {
		t.Fatalf("anonymous: %d %v %v", st, h, v)
	}
	if st, _, v := call("core", secret+"x"); st != 401 {
		t.Fatalf("wrong secret: %d %v", st, v)
	}
	if st, _, v := call("core", secret); st != 200 || v["ok"] != true {
		t.Fatalf("core: %d %v", st, v)
	}

	// The failed-login alert went out by SMS.
	{
		db, err := store.Open(context.Background(), store.Config{Driver: store.SQLite, DSN: b.db})
		if err != nil {
			t.Fatal(err)
		}
		sink := sms.NewSink(db, nil)
		deadline := time.Now().Add(30 * time.Second)
		for {
			sent, err := sink.List(context.Background(), "13900001111", 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(sent) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("egate authsvc sent no SMS for the failed-login alert in 30 s")
			}
			time.Sleep(100 * time.Millisecond)
		}
		db.Close()
	}

	stderr := stop()
	if strings.Contains(stderr, secret) {
		t.Fatal("the secret reached the log")
	}
}
