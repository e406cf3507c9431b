package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/simulators/softhsm"
)

var egateBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "egate-cli-test")
	if err != nil {
		panic(err)
	}
	egateBin = filepath.Join(dir, "egate")
	out, err := exec.Command("go", "build", "-o", egateBin, ".").CombinedOutput()
	if err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(egateBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, so.String(), se.String()}
}

// oneLine checks the bad-input contract: a non-zero exit and exactly one
// line on stderr that names what is wrong.
func oneLine(t *testing.T, r result, mentions ...string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("exit 0, want failure; stdout %q", r.stdout)
	}
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("stderr has %d lines, want 1:\n%s", len(lines), r.stderr)
	}
	for _, m := range mentions {
		if !strings.Contains(r.stderr, m) {
			t.Fatalf("stderr %q does not mention %q", r.stderr, m)
		}
	}
}

func TestVersion(t *testing.T) {
	r := run(t, t.TempDir(), nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "egate ") {
		t.Fatalf("version: %+v", r)
	}
}

func TestConfigBadInput(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "unknown.yaml"), []byte("database:\n  drvier: sqlite\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "good.yaml"), []byte("clients: []\n"), 0o600)
	tests := []struct {
		name     string
		env      []string
		args     []string
		mentions []string
	}{
		{"unknown key in the file", nil, []string{"demo", "--config", "unknown.yaml"}, []string{"drvier"}},
		{"unknown top-level key", nil, []string{"admin", "config", "print", "--config", "good.yaml"}, []string{"clients"}},
		{"unknown environment key", []string{"EGATE_DATABASE_DNS=x"}, []string{"demo"}, []string{"EGATE_DATABASE_DNS"}},
		{"unknown --set key", nil, []string{"demo", "--set", "hsm.pin=1234"}, []string{"hsm.pin"}},
		{"bad listen address", nil, []string{"demo", "--set", "http.listen=nowhere"}, []string{"http.listen"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			oneLine(t, run(t, dir, tc.env, tc.args...), tc.mentions...)
			if _, err := os.Stat(filepath.Join(dir, "var")); err == nil {
				t.Fatal("the demo created ./var despite the bad config")
			}
		})
	}
	r := run(t, dir, []string{"EGATE_HSM_PIN_SOURCE=env:SOME_PIN"}, "admin", "config", "print", "--set", "log.level=debug")
	if r.code != 0 || !strings.Contains(r.stdout, "pin-source: env:SOME_PIN") || !strings.Contains(r.stdout, "level: debug") {
		t.Fatalf("config print: %+v", r)
	}
	if strings.Contains(r.stdout, "client-secret: s") {
		t.Fatal("secrets not redacted")
	}
}

func TestHSMBadInput(t *testing.T) {
	testenv.NeedCommand(t, "softhsm2-util", "softhsm2")
	ctx := context.Background()
	dir := t.TempDir()
	sh, err := softhsm.New(filepath.Join(dir, "softhsm"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := sh.InitToken(ctx, "egate-cli", "87654321", "12345678"); err != nil {
		t.Fatal(err)
	}
	env := []string{sh.Env(), "EGATE_TEST_HSM_PIN=12345678", "EGATE_TEST_WRONG_PIN=99999999"}
	base := []string{"--module", sh.Module, "--token", "egate-cli", "--pin-source", "env:EGATE_TEST_HSM_PIN"}
	with := func(args []string, over ...string) []string {
		out := append([]string{"admin", "hsm"}, args...)
		out = append(out, base...)
		return append(out, over...)
	}
	tests := []struct {
		name     string
		args     []string
		mentions []string
	}{
		{"wrong module path", with([]string{"init"}, "--module", "/nonexistent/libpkcs11.so"), []string{"/nonexistent/libpkcs11.so"}},
		{"token label that does not exist", with([]string{"init"}, "--token", "no-such-token"), []string{"no-such-token"}},
		{"wrong PIN", with([]string{"init"}, "--pin-source", "env:EGATE_TEST_WRONG_PIN"), []string{"PIN"}},
		{"PIN source unset", with([]string{"init"}, "--pin-source", "env:EGATE_TEST_UNSET_PIN"), []string{"EGATE_TEST_UNSET_PIN"}},
		{"malformed key URI", with([]string{"keys", "pkcs11:token=egate-cli;object=%ZZ"}), []string{"pkcs11"}},
		{"unknown attribute in a key URI", with([]string{"keys", "pkcs11:tokn=egate-cli"}), []string{"tokn"}},
		{"key that does not exist", with([]string{"keys", "pkcs11:token=egate-cli;object=no-such-key"}), []string{"no-such-key"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, dir, env, tc.args...)
			oneLine(t, r, tc.mentions...)
			if strings.Contains(r.stderr, "99999999") || strings.Contains(r.stderr, "12345678") {
				t.Fatalf("a PIN reached the error: %s", r.stderr)
			}
		})
	}
	// Nothing was created by the failed runs: the token has no keys yet.
	r := run(t, dir, env, with([]string{"keys"})...)
	if r.code != 0 || strings.Contains(r.stdout, "egate-") {
		t.Fatalf("keys after failures: %+v", r)
	}
	// Then init works, twice, with the same keys.
	r1 := run(t, dir, env, with([]string{"init"})...)
	r2 := run(t, dir, env, with([]string{"init"})...)
	if r1.code != 0 || r2.code != 0 || r1.stdout != r2.stdout || !strings.Contains(r1.stdout, "pkcs11:token=egate-cli;object=egate-passport-signing") {
		t.Fatalf("init twice:\n%+v\n%+v", r1, r2)
	}
	// One key by its URI, as init printed it.
	uri := regexp.MustCompile(`pkcs11:token=egate-cli;object=egate-ca-issuing;\S+`).FindString(r1.stdout)
	if r := run(t, dir, env, with([]string{"keys", uri})...); r.code != 0 || !strings.Contains(r.stdout, "egate-ca-issuing") || strings.Contains(r.stdout, "egate-hmac") {
		t.Fatalf("keys %s: %+v", uri, r)
	}
	// OpenSC's pkcs11-tool sees the keys egate made, never extractable.
	tool := testenv.NeedCommand(t, "pkcs11-tool", "opensc")
	cmd := exec.Command(tool, "--module", sh.Module, "--token-label", "egate-cli", "--login", "--pin", "12345678", "--list-objects")
	cmd.Env = append(os.Environ(), sh.Env())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool: %v\n%s", err, out)
	}
	for _, label := range []string{"egate-passport-signing", "egate-ca-issuing", "egate-secrets-wrap", "egate-otp-seed-wrap", "egate-audit-checkpoint", "egate-tx-encryption"} {
		if !strings.Contains(string(out), label) {
			t.Errorf("pkcs11-tool does not list %s", label)
		}
	}
	// The seed-wrap key wraps and unwraps, and nothing else.
	if !regexp.MustCompile(`label:\s+egate-otp-seed-wrap\n.*\n\s+Usage:\s+wrap, unwrap\n`).MatchString(string(out)) {
		t.Errorf("pkcs11-tool does not show egate-otp-seed-wrap with usage wrap, unwrap only:\n%s", out)
	}
	// The transaction-encryption key's private half decrypts with RSA-OAEP,
	// and nothing else (its public half, listed too, encrypts).
	if !regexp.MustCompile(`Private Key Object; RSA\s*\n\s+label:\s+egate-tx-encryption\n.*\n\s+Usage:\s+decrypt\n.*never extractable.*\n\s+Allowed mechanisms:\s+RSA-PKCS-OAEP\n`).MatchString(string(out)) {
		t.Errorf("pkcs11-tool does not show egate-tx-encryption's private key with usage decrypt only:\n%s", out)
	}
	if !strings.Contains(string(out), "never extractable") {
		t.Errorf("pkcs11-tool does not report the keys never extractable:\n%s", out)
	}
}

// TestNoDatabaseDirectory: an operator command run where the default SQLite
// database's directory (./var) does not exist says so in one line, with the
// fix, and creates nothing.
func TestNoDatabaseDirectory(t *testing.T) {
	dir := t.TempDir()
	oneLine(t, run(t, dir, nil, "admin", "user", "show", "nobody"), "./var does not exist", "egate demo", "database.dsn")
	if _, err := os.Stat(filepath.Join(dir, "var")); err == nil {
		t.Fatal("./var was created")
	}
}

// TestHSMMustBeConfigured: no process falls back to a development token. With
// hsm.module empty, egate authsvc and the operator's HSM commands stop with
// one line naming the key to set; given a config like the one egate demo
// writes (var/egate.yaml), they reach its token through hsm.module-env even
// when the environment points the SoftHSM library elsewhere.
func TestHSMMustBeConfigured(t *testing.T) {
	testenv.NeedCommand(t, "softhsm2-util", "softhsm2")
	dir := t.TempDir()
	oneLine(t, run(t, dir, nil, "authsvc", "--set", "http.listen=127.0.0.1:0", "--set", "factors.sms.dev-sink=true"), "hsm.module is empty", "hsm.token", "hsm.pin-source")
	oneLine(t, run(t, dir, nil, "admin", "hsm", "keys"), "hsm.module is empty")

	sh, err := softhsm.New(filepath.Join(dir, "softhsm"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := sh.InitToken(context.Background(), "egate-conf", "87654321", "12345678"); err != nil {
		t.Fatal(err)
	}
	pin := filepath.Join(dir, "pin")
	if err := os.WriteFile(pin, []byte("12345678"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "egate.yaml")
	conf := fmt.Sprintf("hsm:\n  module: %s\n  token: egate-conf\n  pin-source: file:%s\n  module-env: [%s]\n", sh.Module, pin, sh.Env())
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	elsewhere := []string{"SOFTHSM2_CONF=" + filepath.Join(dir, "no-such.conf")}
	r := run(t, t.TempDir(), elsewhere, "admin", "hsm", "init", "--config", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "pkcs11:token=egate-conf;object=egate-passport-signing") {
		t.Fatalf("admin hsm init with module-env: %+v", r)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(strings.Replace(conf, sh.Env(), "1BAD=x", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	oneLine(t, run(t, dir, nil, "admin", "hsm", "keys", "--config", bad), "hsm.module-env", "NAME=value")
}
