package app

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/egate-bank/egate/authsvc/backend"
	"github.com/egate-bank/egate/authsvc/oath"
	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	devotp "github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/internal/testenv"
)

func TestMain(m *testing.M) { hsmtest.Main(m) }

const (
	coreSecret = "core-banking-0123456789abcdef0123456789abcdef"
	deskSecret = "call-centre-desk-0123456789abcdef0123456789"
)

// startAuthsvc runs app.NewAuthsvc as egate authsvc does (no options) on
// SoftHSM2 and db, with the SMS development sink on, and two back-end
// clients: "core" (otp:verify and otp:resync, secret from a file) and
// "desk" (otp:resync only, secret by its SHA-256).
func startAuthsvc(t *testing.T, db store.Config) *Authsvc {
	t.Helper()
	secretFile := filepath.Join(t.TempDir(), "core-secret")
	if err := os.WriteFile(secretFile, []byte(coreSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.HSM = hsmtest.Config(t)
	cfg.Database = db
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Factors.Enabled = []string{"sms", "gridcard", "otp"}
	cfg.Factors.SMS.DevSink = true
	cfg.Authsvc.BackendClients = []backend.ClientConfig{
		{ID: "core", SecretSource: "file:" + secretFile, Scopes: []string{backend.ScopeOTPVerify, backend.ScopeOTPResync}},
		{ID: "desk", SecretSHA256: backend.HashSecret([]byte(deskSecret)), Scopes: []string{backend.ScopeOTPResync}},
	}
	a, err := NewAuthsvc(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), AuthsvcOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a.Server.Start()
	t.Cleanup(func() { a.Server.HTTP.Close(); a.Close() })
	return a
}

// importHOTP imports an HOTP token with a random seed from a PSKC file
// (the seed wrapped in the HSM) and returns its serial and seed.
func importHOTP(t testing.TB, s *oath.Service) (serial string, seed []byte) {
	t.Helper()
	seed = make([]byte, 20)
	rand.Read(seed)
	serial = "APP" + hex.EncodeToString(seed[:4])
	path := filepath.Join(t.TempDir(), "token.pskc")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pskc.NewWriter(f, pskc.WriterOptions{})
	if err == nil {
		err = w.Add(&pskc.Key{ID: "1", Serial: serial, Manufacturer: "egate test",
			Params: devotp.Params{Kind: devotp.KindHOTP, Hash: crypto.SHA1, Digits: 6}, Secret: seed})
	}
	if err == nil {
		err = w.Close()
	}
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImportPSKC(context.Background(), func() (io.ReadCloser, error) { return os.Open(path) }, oath.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	return serial, seed
}

// oathHOTP is the code oathtool (the reference) computes for counter c.
func oathHOTP(t *testing.T, seed []byte, c int) string {
	t.Helper()
	out, err := exec.Command("oathtool", "--hotp", "-d", "6", "-c", strconv.Itoa(c), hex.EncodeToString(seed)).Output()
	if err != nil {
		t.Fatalf("oathtool: %v", err)
	}
	return strings.TrimSpace(string(out))
}

type apiAnswer struct {
	status int
	header http.Header
	OK     bool   `json:"ok"`
	Serial string `json:"serial"`
	Error  struct {
		Code, Message string
	} `json:"error"`
}

func post(t *testing.T, url, user, secret, body string) apiAnswer {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.SetBasicAuth(user, secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a apiAnswer
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("%s: not JSON: %d %q", url, resp.StatusCode, b)
	}
	a.status, a.header = resp.StatusCode, resp.Header
	return a
}

// TestAuthsvcOTPAPI: egate authsvc serves POST /v1/otp/verify and /resync
// to registered back-end clients only. Anonymous callers, a customer's
// bearer token, a wrong secret and an unknown client get 401 with
// WWW-Authenticate; a client without the scope gets 403; none of them
// uses up the code, which the right client then verifies against the seed
// wrapped in SoftHSM2 (code from oathtool); on SQLite and PostgreSQL.
func TestAuthsvcOTPAPI(t *testing.T) {
	testenv.NeedCommand(t, "oathtool", "oathtool")
	dbs := map[string]func(t *testing.T) store.Config{
		"sqlite": func(t *testing.T) store.Config {
			return store.Config{Driver: store.SQLite, DSN: filepath.Join(t.TempDir(), "egate.db")}
		},
		"postgres": func(t *testing.T) store.Config {
			return store.Config{Driver: store.Postgres, DSN: storetest.PostgresDSN(t)}
		},
	}
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			a := startAuthsvc(t, dbs[engine](t))
			serial, seed := importHOTP(t, a.Factors.OTP)
			verify, resync := a.Server.URL()+"/v1/otp/verify", a.Server.URL()+"/v1/otp/resync"
			code0 := oathHOTP(t, seed, 0)
			body := `{"serial":"` + serial + `","code":"` + code0 + `"}`

			refused := []struct {
				name, url, user, secret, auth string
				status                        int
				code                          string
			}{
				{"anonymous verify", verify, "", "", "", 401, "unauthorized"},
				{"anonymous resync", resync, "", "", "", 401, "unauthorized"},
				{"bearer token", verify, "", "", "Bearer eyJhbGciOiJFUzI1NiJ9.e30.sig", 401, "unauthorized"},
				{"wrong secret", verify, "core", deskSecret, "", 401, "invalid_client"},
				{"unknown client", verify, "ebank", coreSecret, "", 401, "invalid_client"},
				{"client without otp:verify", verify, "desk", deskSecret, "", 403, "insufficient_scope"},
			}
			for _, tc := range refused {
				t.Run(tc.name, func(t *testing.T) {
					req, _ := http.NewRequest("POST", tc.url, strings.NewReader(body))
					if tc.user != "" {
						req.SetBasicAuth(tc.user, tc.secret)
					}
					if tc.auth != "" {
						req.Header.Set("Authorization", tc.auth)
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					defer resp.Body.Close()
					var e apiAnswer
					json.NewDecoder(resp.Body).Decode(&e)
					if resp.StatusCode != tc.status || e.Error.Code != tc.code {
						t.Fatalf("%d %+v, want %d %s", resp.StatusCode, e.Error, tc.status, tc.code)
					}
					wa := resp.Header.Get("WWW-Authenticate")
					if (tc.status == 401) != strings.HasPrefix(wa, `Basic realm=`) {
						t.Fatalf("WWW-Authenticate %q with %d", wa, resp.StatusCode)
					}
				})
			}

			// The refused calls used nothing up: the right client verifies code 0.
			ok := post(t, verify, "core", coreSecret, body)
			if ok.status != 200 || !ok.OK || ok.Serial != serial {
				t.Fatalf("core verifies code 0: %d %+v", ok.status, ok)
			}
			if again := post(t, verify, "core", coreSecret, body); again.status != 409 || again.Error.Code != "replay" {
				t.Fatalf("replayed code 0: %d %+v", again.status, again.Error)
			}
			// A wrong code is the token's answer (401 wrong_answer), not a
			// challenge for the client's credentials.
			bad := post(t, verify, "core", coreSecret, `{"serial":"`+serial+`","code":"000000"}`)
			if bad.status != 401 || bad.Error.Code != "wrong_answer" || bad.header.Get("WWW-Authenticate") != "" {
				t.Fatalf("wrong code: %d %+v %v", bad.status, bad.Error, bad.header)
			}
			// desk holds otp:resync: codes 40 and 41 bring the counter forward.
			rs := post(t, resync, "desk", deskSecret, `{"serial":"`+serial+`","code":"`+oathHOTP(t, seed, 40)+`","code2":"`+oathHOTP(t, seed, 41)+`"}`)
			if rs.status != 200 || !rs.OK {
				t.Fatalf("desk resyncs: %d %+v", rs.status, rs.Error)
			}
			if ok := post(t, verify, "core", coreSecret, `{"serial":"`+serial+`","code":"`+oathHOTP(t, seed, 42)+`"}`); ok.status != 200 {
				t.Fatalf("core verifies code 42 after the resync: %d %+v", ok.status, ok.Error)
			}
		})
	}
}

// TestAuthsvcServesNoSimulatorPages: egate authsvc never mounts /sim/...,
// not even with the SMS development sink on.
func TestAuthsvcServesNoSimulatorPages(t *testing.T) {
	a := startAuthsvc(t, store.Config{Driver: store.SQLite, DSN: filepath.Join(t.TempDir(), "egate.db")})
	if a.Factors.SMSSink == nil {
		t.Fatal("the development sink is not in use")
	}
	for _, p := range []string{"/sim/sms/", "/sim/sms/messages.json", "/sim/otp/", "/sim/gridcard.png", "/sim/atm/"} {
		resp, err := http.Get(a.Server.URL() + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
	// The CA's public files stay served.
	resp, err := http.Get(a.Server.URL() + "/ca/crl")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		t.Errorf("GET /ca/crl: 404")
	}
}

// TestNewAuthsvcRefusesBadBackendClients: a bad authsvc.backend-clients
// entry in the config file stops egate authsvc before it opens the
// database, with one error naming the entry and what is wrong.
func TestNewAuthsvcRefusesBadBackendClients(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	short := filepath.Join(dir, "short-secret")
	os.WriteFile(short, []byte("0123456789\n"), 0o600)
	cases := []struct {
		name    string
		clients string
		want    []string
	}{
		{"unknown scope", `[{id: core, secret-source: "env:X", scopes: [otp:admin]}]`, []string{"authsvc.backend-clients[0] (core)", `unknown scope "otp:admin"`}},
		{"secret inline", `[{id: core, secret-source: "hunter2-hunter2-hunter2-hunter2-hunter2", scopes: [otp:verify]}]`, []string{"authsvc.backend-clients[0] (core)", "secret-source"}},
		{"no secret", `[{id: core, scopes: [otp:verify]}]`, []string{"secret-sha256", "secret-source"}},
		{"secret file missing", `[{id: core, secret-source: "file:` + filepath.Join(dir, "none") + `", scopes: [otp:verify]}]`, []string{"authsvc.backend-clients[0] (core)", "cannot open"}},
		{"secret too short", `[{id: core, secret-source: "file:` + short + `", scopes: [otp:verify]}]`, []string{"shorter than 32"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(dir, "egate"+strconv.Itoa(i)+".yaml")
			dsn := filepath.Join(dir, "never-made"+strconv.Itoa(i)+".db")
			os.WriteFile(file, []byte("authsvc:\n  backend-clients: "+tc.clients+"\n"), 0o600)
			cfg, err := config.Load(config.Sources{File: file, Sets: []string{"hsm.module=/nonexistent/libpkcs11.so", "database.dsn=" + dsn, "factors.sms.dev-sink=true"}})
			if err != nil {
				t.Fatal(err)
			}
			a, err := NewAuthsvc(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), AuthsvcOptions{})
			if err == nil {
				a.Close()
				t.Fatal("authsvc started")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "0123456789") {
				t.Fatalf("error %q holds the secret", err)
			}
			if _, err := os.Stat(dsn); err == nil {
				t.Fatal("the database was opened before the config was checked")
			}
		})
	}
}
