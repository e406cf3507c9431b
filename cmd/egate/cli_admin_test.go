package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/audit"
	"github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/simulators/softhsm"
)

// adminBench is a SoftHSM directory with the bank's HSM token, after
// `egate admin hsm init`, and an SQLite database file: what the operator
// commands run against.
type adminBench struct {
	dir, db string
	sh      *softhsm.Dir
	env     []string
	flags   []string // --db and --hsm-* for the authenticator admin commands
}

const (
	benchHSMToken = "egate-hsm"
	benchHSMPIN   = "12345678"
)

func newAdminBench(t *testing.T) *adminBench {
	t.Helper()
	testenv.NeedCommand(t, "softhsm2-util", "softhsm2")
	dir := t.TempDir()
	sh, err := softhsm.New(filepath.Join(dir, "softhsm"))
	if err != nil {
		testenv.Missing(t, "SoftHSM2 ("+err.Error()+")", "apt-get install softhsm2")
	}
	if _, _, err := sh.InitToken(context.Background(), benchHSMToken, "87654321", benchHSMPIN); err != nil {
		t.Fatal(err)
	}
	b := &adminBench{dir: dir, db: filepath.Join(dir, "egate.db"), sh: sh,
		env: []string{sh.Env(), "EGATE_TEST_HSM_PIN=" + benchHSMPIN, "EGATE_NEW_PASSWORD=Blue-Kite-47"}}
	b.flags = []string{"--db", b.db, "--hsm-module", sh.Module, "--hsm-token", benchHSMToken, "--hsm-pin-source", "env:EGATE_TEST_HSM_PIN"}
	r := b.run(t, "admin", "hsm", "init", "--module", sh.Module, "--token", benchHSMToken, "--pin-source", "env:EGATE_TEST_HSM_PIN")
	if r.code != 0 {
		t.Fatalf("admin hsm init: %+v", r)
	}
	return b
}

func (b *adminBench) run(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, b.dir, b.env, args...)
}

// admin runs egate admin ARGS... with the bench's database and HSM flags.
func (b *adminBench) admin(t *testing.T, args ...string) result {
	t.Helper()
	return b.run(t, append(append([]string{"admin"}, args...), b.flags...)...)
}

// count is the number of rows of table (in the database, read directly).
func (b *adminBench) count(t *testing.T, table string) int {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{Driver: store.SQLite, DSN: b.db})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// customer registers a customer with egate admin user add and returns its
// passport id.
func (b *adminBench) customer(t *testing.T, login string) string {
	t.Helper()
	r := b.run(t, "admin", "user", "add", "--db", b.db, "--login", login, "--mobile", "13812345678", "--reserved-message", "red lantern 88")
	m := regexp.MustCompile(`registered (\S+) \(login name `).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("user add: %+v", r)
	}
	return m[1]
}

func (b *adminBench) caInit(t *testing.T) {
	t.Helper()
	if r := b.admin(t, "ca", "init"); r.code != 0 {
		t.Fatalf("ca init: %+v", r)
	}
}

// egate admin ca init on a fresh token and database, init again, and the
// exported root read by openssl and by crypto/x509.
func TestAdminCAInitAndExport(t *testing.T) {
	b := newAdminBench(t)
	first := b.admin(t, "ca", "init")
	if first.code != 0 ||
		!regexp.MustCompile(`(?m)^root CA +egate Bank Root CA serial [0-9a-f]+, until \d{4}-\d\d-\d\d$`).MatchString(first.stdout) ||
		!regexp.MustCompile(`(?m)^issuing CA egate Bank Issuing CA 1 serial [0-9a-f]+, until \d{4}-\d\d-\d\d$`).MatchString(first.stdout) {
		t.Fatalf("ca init: %+v", first)
	}
	rootSerial := regexp.MustCompile(`Root CA serial ([0-9a-f]+)`).FindStringSubmatch(first.stdout)[1]
	export := b.admin(t, "ca", "export-root")
	if export.code != 0 {
		t.Fatalf("ca export-root: %+v", export)
	}

	hsmKeys := func() string {
		t.Helper()
		r := b.run(t, "admin", "hsm", "keys", "--module", b.sh.Module, "--token", benchHSMToken, "--pin-source", "env:EGATE_TEST_HSM_PIN")
		if r.code != 0 || !strings.Contains(r.stdout, "egate-ca-root") {
			t.Fatalf("hsm keys: %+v", r)
		}
		return r.stdout
	}
	keysBefore := hsmKeys()

	// Init again: it says the CA exists (one line, non-zero exit) and
	// changes nothing, in the database or in the HSM.
	again := b.admin(t, "ca", "init")
	oneLine(t, again, "already initialised")
	if keysAfter := hsmKeys(); keysAfter != keysBefore {
		t.Fatalf("the HSM keys changed after the second init:\nbefore\n%s\nafter\n%s", keysBefore, keysAfter)
	}
	if strings.Contains(again.stdout, "root CA") {
		t.Fatalf("second ca init reports a new CA: %+v", again)
	}
	if n := b.count(t, "ca_authorities"); n != 2 {
		t.Fatalf("ca_authorities has %d rows after two inits, want 2", n)
	}
	if r := b.admin(t, "ca", "export-root"); r.code != 0 || r.stdout != export.stdout {
		t.Fatalf("the root changed after the second init:\nbefore %s\nafter %+v", export.stdout, r)
	}

	rootPath := filepath.Join(b.dir, "root.pem")
	if err := os.WriteFile(rootPath, []byte(export.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"openssl reads the PEM", func(t *testing.T) {
			openssl := testenv.NeedCommand(t, "openssl", "openssl")
			out, err := exec.Command(openssl, "x509", "-in", rootPath, "-noout", "-subject", "-serial").CombinedOutput()
			if err != nil {
				t.Fatalf("openssl x509: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "CN = egate Bank Root CA") || !strings.Contains(string(out), "O = egate Bank") {
				t.Fatalf("openssl subject: %s", out)
			}
			if !strings.Contains(strings.ToLower(string(out)), "serial="+strings.TrimLeft(rootSerial, "0")) {
				t.Fatalf("openssl serial differs from the one ca init printed (%s): %s", rootSerial, out)
			}
		}},
		{"crypto/x509 parses a self-signed CA", func(t *testing.T) {
			blk, rest := pem.Decode([]byte(export.stdout))
			if blk == nil || blk.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
				t.Fatalf("export-root is not one CERTIFICATE PEM block: %q", export.stdout)
			}
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if !c.IsCA || !c.BasicConstraintsValid || c.KeyUsage&x509.KeyUsageCertSign == 0 {
				t.Fatalf("not a CA: IsCA %v, key usage %v", c.IsCA, c.KeyUsage)
			}
			if err := c.CheckSignatureFrom(c); err != nil {
				t.Fatalf("root not self-signed: %v", err)
			}
		}},
		{"issuing chains to the root", func(t *testing.T) {
			r := b.admin(t, "ca", "export-root", "--issuing")
			rest := []byte(r.stdout)
			var certs []*x509.Certificate
			for {
				var blk *pem.Block
				if blk, rest = pem.Decode(rest); blk == nil {
					break
				}
				c, err := x509.ParseCertificate(blk.Bytes)
				if err != nil {
					t.Fatal(err)
				}
				certs = append(certs, c)
			}
			if r.code != 0 || len(certs) != 2 {
				t.Fatalf("export-root --issuing gave %d certificates: %+v", len(certs), r)
			}
			if err := certs[1].CheckSignatureFrom(certs[0]); err != nil {
				t.Fatalf("issuing CA not signed by the root: %v", err)
			}
		}},
		{"CRL: PEM on stdout, DER to a file, both signed by the issuing CA", func(t *testing.T) {
			r := b.admin(t, "ca", "export-root", "--issuing")
			_, rest := pem.Decode([]byte(r.stdout))
			blk, _ := pem.Decode(rest)
			if blk == nil {
				t.Fatalf("no issuing certificate: %+v", r)
			}
			issuing, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			out := b.admin(t, "ca", "crl")
			pblk, prest := pem.Decode([]byte(out.stdout))
			if out.code != 0 || pblk == nil || pblk.Type != "X509 CRL" || len(bytes.TrimSpace(prest)) != 0 {
				t.Fatalf("ca crl on stdout is not one X509 CRL PEM block: %+v", out)
			}
			derPath := filepath.Join(b.dir, "ca.crl")
			if r := b.admin(t, "ca", "crl", "-o", derPath); r.code != 0 {
				t.Fatalf("ca crl -o: %+v", r)
			}
			der, err := os.ReadFile(derPath)
			if err != nil {
				t.Fatal(err)
			}
			for name, raw := range map[string][]byte{"stdout (PEM)": pblk.Bytes, "file (DER)": der} {
				crl, err := x509.ParseRevocationList(raw)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if err := crl.CheckSignatureFrom(issuing); err != nil {
					t.Fatalf("%s: CRL not signed by the issuing CA: %v", name, err)
				}
			}
			oneLine(t, b.admin(t, "ca", "crl", "--format", "xml"), "--format", "der or pem")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.check)
	}
}

// writePSKC writes a PSKC file of n HOTP tokens with serials prefix0001….
func writePSKC(t *testing.T, path, prefix string, n int, o pskc.WriterOptions) {
	t.Helper()
	var buf bytes.Buffer
	w, err := pskc.NewWriter(&buf, o)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		serial := fmt.Sprintf("%s%04d", prefix, i)
		secret := bytes.Repeat([]byte{byte(i), 0x5a}, 10)
		if err := w.Add(&pskc.Key{ID: serial, Serial: serial, Manufacturer: "egate-test", Issuer: "egate Bank",
			Params: otp.Params{Kind: otp.KindHOTP, Hash: crypto.SHA1, Digits: 6}, Secret: secret}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// egate admin token import-pskc: a plain file, a PBKDF2 password file, the
// same file again (duplicates skipped, as the help says), a truncated file
// and a wrong password (nothing imported, one line naming the entry).
func TestAdminTokenImportPSKC(t *testing.T) {
	b := newAdminBench(t)
	b.env = append(b.env, "EGATE_TEST_PSKC_PASSWORD=Transport-Pass-9", "EGATE_TEST_WRONG_PASSWORD=not-the-one")
	plain := filepath.Join(b.dir, "plain.pskc")
	enc := filepath.Join(b.dir, "password.pskc")
	trunc := filepath.Join(b.dir, "truncated.pskc")
	writePSKC(t, plain, "P", 5, pskc.WriterOptions{})
	writePSKC(t, enc, "E", 3, pskc.WriterOptions{Password: []byte("Transport-Pass-9"), Iterations: 1000})
	writePSKC(t, trunc, "T", 4, pskc.WriterOptions{})
	raw, _ := os.ReadFile(trunc)
	// Cut the file inside the third key package's secret.
	third := bytes.Index(raw, []byte("T0003"))
	cut := third + bytes.Index(raw[third:], []byte("<PlainValue>")) + len("<PlainValue>") + 4
	if third < 0 || cut <= third {
		t.Fatal("cannot find the third key package")
	}
	os.WriteFile(trunc, raw[:cut], 0o600)

	tests := []struct {
		name    string
		args    []string
		ok      bool
		summary string // regexp on stdout when ok
		errHas  []string
		rows    int // otp_tokens rows afterwards
	}{
		{"plain file", []string{plain}, true, `(?m)^imported 5 tokens, skipped 0 already present$`, nil, 5},
		{"PBKDF2 password file", []string{enc, "--password-source", "env:EGATE_TEST_PSKC_PASSWORD"}, true, `(?m)^imported 3 tokens, skipped 0 already present$`, nil, 8},
		{"the same file again", []string{plain}, true, `(?m)^imported 0 tokens, skipped 5 already present$`, nil, 8},
		{"truncated file", []string{trunc}, false, "", []string{"truncated.pskc", "nothing was imported", "key package 3"}, 8},
		// The MAC key in the header is the first thing decrypted: the error
		// names that, not a key package.
		{"wrong password", []string{enc, "--password-source", "env:EGATE_TEST_WRONG_PASSWORD"}, false, "", []string{"password.pskc", "nothing was imported", "wrong key or password"}, 8},
		{"no such file", []string{filepath.Join(b.dir, "missing.pskc")}, false, "", []string{"PSKC file", "missing.pskc does not exist"}, 8},
		{"a directory", []string{b.dir}, false, "", []string{"is a directory"}, 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := b.admin(t, append([]string{"token", "import-pskc"}, tc.args...)...)
			if tc.ok {
				if r.code != 0 || !regexp.MustCompile(tc.summary).MatchString(r.stdout) {
					t.Fatalf("import: %+v", r)
				}
				// stderr is a pipe here, not a terminal: the bar is drawn
				// as one line per 10% per phase, ending at 100%.
				if !regexp.MustCompile(`(?m)^\w+: 100% \(\d+ of \d+\)$`).MatchString(r.stderr) {
					t.Fatalf("no progress lines ending at 100%% on stderr:\n%s", r.stderr)
				}
			} else {
				// Progress lines may precede the error; the error itself is one line.
				var errLines []string
				for _, l := range strings.Split(strings.TrimRight(r.stderr, "\n"), "\n") {
					if !regexp.MustCompile(`^\w+: \d+% \(\d+ of \d+\)$`).MatchString(l) {
						errLines = append(errLines, l)
					}
				}
				if r.code == 0 || len(errLines) != 1 {
					t.Fatalf("want a failure with one error line: %+v", r)
				}
				for _, m := range tc.errHas {
					if !strings.Contains(errLines[0], m) {
						t.Fatalf("error %q does not mention %q", errLines[0], m)
					}
				}
				if strings.Contains(r.stderr, "Transport-Pass-9") || strings.Contains(r.stderr, "not-the-one") {
					t.Fatal("a password reached the error")
				}
			}
			if n := b.count(t, "otp_tokens"); n != tc.rows {
				t.Fatalf("otp_tokens has %d rows, want %d", n, tc.rows)
			}
		})
	}
}

// egate admin gridcard issue: a PNG for a registered customer, its serial
// on stdout; an unknown customer creates nothing.
func TestAdminGridcardIssue(t *testing.T) {
	b := newAdminBench(t)
	id := b.customer(t, "alice")
	tests := []struct {
		name     string
		customer string
		ok       bool
	}{
		{"registered customer", id, true},
		{"unknown customer", "no-such-customer", false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(b.dir, fmt.Sprintf("card%d.png", i))
			before := b.count(t, "gridcards")
			r := b.admin(t, "gridcard", "issue", "--customer", tc.customer, "--out", out)
			if !tc.ok {
				oneLine(t, r, tc.customer)
				if _, err := os.Stat(out); err == nil {
					t.Fatal("a PNG was written for an unknown customer")
				}
				if n := b.count(t, "gridcards"); n != before {
					t.Fatalf("gridcards went from %d to %d rows", before, n)
				}
				return
			}
			m := regexp.MustCompile(`issued grid card (\d{12}) \(8×10\) for ` + regexp.QuoteMeta(id)).FindStringSubmatch(r.stdout)
			if r.code != 0 || m == nil {
				t.Fatalf("gridcard issue: %+v", r)
			}
			raw, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(raw, []byte("\x89PNG\r\n\x1a\n")) {
				t.Fatalf("not a PNG: % x", raw[:min(8, len(raw))])
			}
			img, err := png.Decode(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			if sz := img.Bounds().Size(); sz.X < 200 || sz.Y < 200 || sz.X > 8000 || sz.Y > 8000 {
				t.Fatalf("implausible card image size %v", sz)
			}
			if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 {
				t.Fatalf("card image mode %v, want 0600", st.Mode().Perm())
			}
			ctx := context.Background()
			db, err := store.Open(ctx, store.Config{Driver: store.SQLite, DSN: b.db})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var owner, status string
			if err := db.QueryRow(ctx, `SELECT passport_id, status FROM gridcards WHERE serial = ?`, m[1]).Scan(&owner, &status); err != nil {
				t.Fatalf("card %s not stored: %v", m[1], err)
			}
			if owner != id || status != "active" {
				t.Fatalf("card %s: owner %q status %q", m[1], owner, status)
			}
		})
	}
}

// egate admin token enroll-ushield on a second SoftHSM token playing the
// customer's U-shield; OpenSC's pkcs11-tool then sees the certificate and a
// never-extractable private key. A wrong PIN enrolls nothing.
func TestAdminTokenEnrollUShield(t *testing.T) {
	tool := testenv.NeedCommand(t, "pkcs11-tool", "opensc")
	b := newAdminBench(t)
	b.caInit(t)
	id := b.customer(t, "bob")
	ctx := context.Background()
	const shieldPIN = "24681357"
	for _, l := range []string{"ushield-1", "ushield-2"} {
		if _, _, err := b.sh.InitToken(ctx, l, "11223344", shieldPIN); err != nil {
			t.Fatal(err)
		}
	}
	b.env = append(b.env, "EGATE_TEST_SHIELD_PIN="+shieldPIN, "EGATE_TEST_SHIELD_WRONG=97531864")
	listObjects := func(t *testing.T, label string) string {
		t.Helper()
		cmd := exec.Command(tool, "--module", b.sh.Module, "--token-label", label, "--login", "--pin", shieldPIN, "--list-objects")
		cmd.Env = append(os.Environ(), b.sh.Env())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("pkcs11-tool: %v\n%s", err, out)
		}
		return string(out)
	}
	tests := []struct {
		name, token, pinEnv, customer string
		ok                            bool
		rows                          int
		want                          string // in the one error line
	}{
		{"unknown customer", "ushield-2", "EGATE_TEST_SHIELD_PIN", "no-such-customer", false, 0, "no customer"},
		{"wrong PIN", "ushield-2", "EGATE_TEST_SHIELD_WRONG", id, false, 0, "wrong PIN"},
		{"right PIN", "ushield-1", "EGATE_TEST_SHIELD_PIN", id, true, 1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := b.admin(t, "token", "enroll-ushield", "--module", b.sh.Module, "--token", tc.token,
				"--customer", tc.customer, "--pin-source", "env:"+tc.pinEnv)
			if n := b.count(t, "ushield_tokens"); n != tc.rows {
				t.Fatalf("ushield_tokens has %d rows, want %d", n, tc.rows)
			}
			objs := listObjects(t, tc.token)
			if !tc.ok {
				if tc.customer == id {
					oneLine(t, r, tc.token)
				} else {
					oneLine(t, r, tc.customer)
				}
				if !strings.Contains(r.stderr, tc.want) {
					t.Fatalf("the error does not say %q: %s", tc.want, r.stderr)
				}
				if strings.Contains(r.stderr, "97531864") || strings.Contains(r.stderr, shieldPIN) {
					t.Fatalf("a PIN reached the error: %s", r.stderr)
				}
				if strings.Contains(objs, "Object;") {
					t.Fatalf("objects on the token after a refused enrollment:\n%s", objs)
				}
				return
			}
			m := regexp.MustCompile(`enrolled U-shield "ushield-1" \(serial \S+, generation 1\) for ` + regexp.QuoteMeta(id) + `: key id ([0-9a-f]+), certificate serial ([0-9a-f]+)`).FindStringSubmatch(r.stdout)
			if r.code != 0 || m == nil {
				t.Fatalf("enroll-ushield: %+v", r)
			}
			if !strings.Contains(objs, "Certificate Object") || !strings.Contains(objs, "CN="+id) ||
				!strings.Contains(strings.ToLower(objs), "serial:     "+m[2]) {
				t.Fatalf("no certificate for %s with serial %s on the token:\n%s", id, m[2], objs)
			}
			i := strings.Index(objs, "Private Key Object")
			if i < 0 {
				t.Fatalf("no private key on the token:\n%s", objs)
			}
			// The key's section: its header line and the indented lines after it.
			lines := strings.Split(objs[i:], "\n")
			n := 1
			for n < len(lines) && strings.HasPrefix(lines[n], " ") {
				n++
			}
			key := strings.Join(lines[:n], "\n")
			if !strings.Contains(key, "ID:         "+m[1]) {
				t.Fatalf("the private key's CKA_ID is not %s:\n%s", m[1], key)
			}
			if !strings.Contains(key, "never extractable") || !regexp.MustCompile(`(?m)^\s+Access:.*\bsensitive\b`).MatchString(key) {
				t.Fatalf("the private key is not sensitive and never extractable:\n%s", key)
			}
			if r := b.admin(t, "ushield", "list", "--customer", id); r.code != 0 || !strings.Contains(r.stdout, "ushield-1") {
				t.Fatalf("ushield list: %+v", r)
			}
			// The enrollment, the loss and a revocation are audited with
			// the operator; a revocation of nothing is refused, unaudited.
			ob := &opBench{adminBench: b, dsn: b.db}
			ob.lastAudit(t, "admin.ushield.enroll", map[string]string{"operator": osUser(t), "passport_id": id, "cert_serial": m[2], "generation": "1"})
			if r := ob.op(t, "user", "show", id); !regexp.MustCompile(`(?m)^ushield \(gen 1\)\s+ushield-1 serial \S+ cert ` + m[2] + `\s+active\s+-\s+-$`).MatchString(r.stdout) {
				t.Fatalf("user show does not list the U-shield:\n%s", r.stdout)
			}
			if r := b.admin(t, "ushield", "report-lost", "--customer", id, "--serial", m[2], "--operator", "wang.li"); r.code != 0 {
				t.Fatalf("report-lost: %+v", r)
			}
			ob.lastAudit(t, "admin.ushield.report-lost", map[string]string{"operator": "wang.li", "passport_id": id, "cert_serial": m[2]})
			if r := ob.op(t, "user", "show", id); !regexp.MustCompile(`(?m)^ushield \(gen 1\)\s+.*\s+lost\s+-\s+-$`).MatchString(r.stdout) {
				t.Fatalf("user show does not list the U-shield lost:\n%s", r.stdout)
			}
			before := len(ob.audit(t))
			oneLine(t, b.admin(t, "ca", "revoke", "00ff00ff"), "00ff00ff")
			if after := len(ob.audit(t)); after != before {
				t.Fatalf("a refused revocation was audited: %d → %d", before, after)
			}
			if r := b.admin(t, "ca", "revoke", m[2], "--operator", "zhao.min"); r.code != 0 {
				t.Fatalf("ca revoke: %+v", r)
			}
			ob.lastAudit(t, "admin.ca.revoke", map[string]string{"operator": "zhao.min", "cert_serial": m[2]})
		})
	}
}

// egate admin audit verify|tail on a log written by the audit package: the
// count and the head (recomputed here), the last records as JSON lines, and
// after an edit in the database one line naming the first broken record,
// exit 1.
func TestAdminAudit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "egate.db")
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{Driver: store.SQLite, DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l := audit.New(db, func() time.Time { return time.UnixMilli(1700000000000) })
	head := audit.Genesis
	hashes := []string{head}
	for i := 1; i <= 3; i++ {
		f := map[string]string{"client": "ebank", "n": strconv.Itoa(i)}
		seq, err := l.Append(ctx, "login.password", f)
		if err != nil {
			t.Fatal(err)
		}
		head, _ = audit.ChainHash(head, audit.Record{Seq: seq, AtMS: 1700000000000, Kind: "login.password", Fields: f}.Canonical())
		hashes = append(hashes, head)
	}

	r := run(t, dir, nil, "admin", "audit", "verify", "--db", path)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "audit log intact: 3 records\nhead "+head+"\ncheckpoints not checked: give --public-key FILE") {
		t.Fatalf("verify: %+v, want head %s", r, head)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		first int // the first record's number; then consecutive
		n     int
	}{
		{"the last two", []string{"-n", "2"}, 2, 2},
		{"one from record 1", []string{"--from", "1", "-n", "1"}, 1, 1},
		{"from record 2 on", []string{"--from", "2"}, 2, 2},
	} {
		t.Run("tail "+tc.name, func(t *testing.T) {
			r := run(t, dir, nil, append([]string{"admin", "audit", "tail", "--db", path}, tc.args...)...)
			lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
			if r.code != 0 || len(lines) != tc.n {
				t.Fatalf("tail %v: %+v", tc.args, r)
			}
			for i, line := range lines {
				var rec struct {
					Seq      int64             `json:"seq"`
					Kind     string            `json:"kind"`
					At       string            `json:"at"`
					Fields   map[string]string `json:"fields"`
					Hash     string            `json:"hash"`
					PrevHash string            `json:"prev_hash"`
				}
				want := tc.first + i
				if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Seq != int64(want) || rec.Kind != "login.password" ||
					rec.Fields["n"] != strconv.Itoa(want) || rec.At != "2023-11-14T22:13:20Z" ||
					rec.Hash != hashes[want] || rec.PrevHash != hashes[want-1] {
					t.Fatalf("tail line %d: %s (%v)", i, line, err)
				}
			}
		})
	}
	oneLine(t, run(t, dir, nil, "admin", "audit", "tail", "-n", "0", "--db", path), "-n 0")

	// A mistyped path is an error and creates nothing; a database without
	// egate's tables is named as such.
	typo := filepath.Join(dir, "egate-typo.db")
	oneLine(t, run(t, dir, nil, "admin", "audit", "verify", "--db", typo), "does not exist", "nothing was created")
	if _, err := os.Stat(typo); !os.IsNotExist(err) {
		t.Fatalf("verify created %s: %v", typo, err)
	}
	other := filepath.Join(dir, "other.db")
	os.WriteFile(other, nil, 0o600)
	oneLine(t, run(t, dir, nil, "admin", "audit", "verify", "--db", other), "has no audit log")

	if _, err := db.Exec(ctx, `UPDATE audit_log SET record = REPLACE(record, '"n":"2"', '"n":"7"') WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	oneLine(t, run(t, dir, nil, "admin", "audit", "verify", "--db", path), "audit chain broken at record 2", "from 2 on")
}

// A mistyped subcommand of a command group is an error, not the group's
// help with exit 0 (which a script would take for success).
func TestUnknownSubcommand(t *testing.T) {
	for _, args := range [][]string{{"admin", "ca", "isue"}, {"admin", "token", "list"}, {"sim", "nosuch"}, {"completion", "bsh"}} {
		oneLine(t, run(t, t.TempDir(), nil, args...), "unknown command \""+args[len(args)-1]+"\"", "commands: ")
	}
	oneLine(t, run(t, t.TempDir(), nil, "admin", "help", "nosuch"), "unknown help topic \"nosuch\"")
	// Help in every form cobra offers still works, with exit 0.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"admin", "ca"}, "the bank CA"},
		{[]string{"admin", "--help"}, "operator tasks"},
		{[]string{"help", "admin"}, "operator tasks"},
		{[]string{"admin", "help"}, "operator tasks"},
		{[]string{"admin", "help", "ca"}, "the bank CA"},
		{[]string{"completion", "bash"}, "bash completion"},
		{[]string{"__complete", "admin", ""}, "audit"},
	} {
		if r := run(t, t.TempDir(), nil, tc.args...); r.code != 0 || !strings.Contains(r.stdout, tc.want) {
			t.Fatalf("egate %v: %+v", tc.args, r)
		}
	}
}

// egate admin user add names the flags it lacks before touching anything.
func TestUserAddRequiredFlags(t *testing.T) {
	dir := t.TempDir()
	oneLine(t, run(t, dir, nil, "admin", "user", "add", "--login", "bob"), "required flag(s)", "mobile", "reserved-message")
	if _, err := os.Stat(filepath.Join(dir, "var")); err == nil {
		t.Fatal("something was created")
	}
}
