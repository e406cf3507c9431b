package pivcard_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-piv/piv-go/v2/piv"

	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/simulators/pivcard"
	"github.com/egate-bank/egate/simulators/pivcard/pivtest"
)

// apduLog records the instructions that reached the card.
type apduLog struct {
	mu   sync.Mutex
	cmds [][]byte
}

func (l *apduLog) trace(cmd, _ []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cmds = append(l.cmds, cmd)
}

func (l *apduLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.cmds)
}

// saw reports whether a command with INS ins and P2 p2 reached the card.
func (l *apduLog) saw(ins, p2 byte) bool { return l.sawSince(0, ins, p2) }

// sawSince is saw for the commands after the first n.
func (l *apduLog) sawSince(n int, ins, p2 byte) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.cmds[n:] {
		if len(c) >= 4 && c[1] == ins && c[3] == p2 {
			return true
		}
	}
	return false
}

func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	return runEnv(t, nil, name, args...)
}

// runEnv runs a tool with extra environment variables.
func runEnv(t *testing.T, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// onlyReader writes an OpenSC configuration that ignores every virtual
// reader but reader, so that OpenSC's slots cannot change under a test when
// a parallel test inserts or removes a card in another reader, and returns
// the OPENSC_CONF setting that selects it.
func onlyReader(t *testing.T, reader string) string {
	t.Helper()
	var ignored []string
	for _, r := range pivtest.Readers {
		if r != reader {
			ignored = append(ignored, strconv.Quote(r))
		}
	}
	conf := "app default {\n"
	if len(ignored) > 0 {
		conf += "  ignored_readers = " + strings.Join(ignored, ", ") + ";\n"
	}
	conf += "}\n"
	path := filepath.Join(t.TempDir(), "opensc.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return "OPENSC_CONF=" + path
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := run(t, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func insertTraced(t *testing.T) (*pivtest.Inserted, *apduLog) {
	t.Helper()
	pivtest.NeedPCSC(t)
	log := &apduLog{}
	card, err := pivcard.Open(pivcard.Config{Path: filepath.Join(t.TempDir(), "card.json"), Vendor: pivtest.Vendor(t), Trace: log.trace})
	if err != nil {
		t.Fatal(err)
	}
	in := pivtest.Insert(t, pivtest.TakeReader(t), card)
	// Wait until PC/SC clients can connect.
	yk := openReaderNoCleanup(t, in.Reader)
	yk.Close()
	return in, log
}

func openReaderNoCleanup(t *testing.T, reader string) *piv.YubiKey {
	t.Helper()
	yk, err := openUntil(reader)
	if err != nil {
		t.Fatalf("opening %s: %v", reader, err)
	}
	return yk
}

// selfSignWithOpenSSL makes a self-signed certificate for the key in slot
// 9a of the card in reader with software that is not egate's: OpenSSL's
// req command through the libp11 PKCS#11 engine and OpenSC's PIV driver,
// over pcscd. The card signs; OpenSSL builds the certificate.
//
// OpenSC lists a PIV private key only with its certificate or, before there
// is one, with the public key in a file named by PIV_9A_KEY (DER); the
// OPENSC_CONF written here hides the other virtual readers so that a card a
// parallel test inserted there is not taken for this one.
func selfSignWithOpenSSL(t *testing.T, reader string, pub crypto.PublicKey, certPath string) *x509.Certificate {
	t.Helper()
	openssl := testenv.NeedCommand(t, "openssl", "openssl")
	engine := "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so"
	module := "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
	for path, pkg := range map[string]string{engine: "libengine-pkcs11-openssl", module: "opensc-pkcs11"} {
		if _, err := os.Stat(path); err != nil {
			testenv.Missing(t, path, "apt-get install "+pkg)
		}
	}
	dir := t.TempDir()
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pubPath := filepath.Join(dir, "9a.der")
	files := map[string]string{
		pubPath: string(pubDER),
		filepath.Join(dir, "openssl.cnf"): `openssl_conf = init
[init]
engines = engines
[engines]
pkcs11 = pkcs11
[pkcs11]
engine_id = pkcs11
dynamic_path = ` + engine + `
MODULE_PATH = ` + module + `
init = 0
[req]
distinguished_name = dn
[dn]
`,
	}
	for path, data := range files {
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, openssl, "req", "-new", "-x509", "-engine", "pkcs11", "-keyform", "engine",
		"-key", "pkcs11:id=%01;type=private;pin-value="+piv.DefaultPIN,
		"-subj", "/CN=egate interop", "-days", "1", "-sha256", "-out", certPath)
	cmd.Env = append(os.Environ(), "PIV_9A_KEY="+pubPath, onlyReader(t, reader),
		"OPENSSL_CONF="+filepath.Join(dir, "openssl.cnf"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl req -x509 with the card's key: %v\n%s", err, out)
	}
	b, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("openssl req wrote no certificate: %q", b)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestInteropYubicoPIVTool(t *testing.T) {
	tool := testenv.NeedCommand(t, "yubico-piv-tool", "yubico-piv-tool")
	in, log := insertTraced(t)
	dir := t.TempDir()
	r := []string{"-r", in.Reader}
	ykpiv := func(args ...string) string { return mustRun(t, tool, append(r, args...)...) }

	out := ykpiv("-a", "status")
	for _, want := range []string{"Version:\t5.7.1", "Serial Number:\t" + strconv.FormatUint(uint64(in.Card.Serial()), 10), "PIN tries left:\t3"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}

	pubPath := filepath.Join(dir, "pub.pem")
	ykpiv("-a", "generate", "-s", "9a", "-A", "ECCP256", "-o", pubPath)
	pemBytes, _ := os.ReadFile(pubPath)
	blk, _ := pem.Decode(pemBytes)
	if blk == nil {
		t.Fatalf("generate wrote no PEM: %q", pemBytes)
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pub.(*ecdsa.PublicKey); !ok {
		t.Fatalf("generated key is %T", pub)
	}

	certPath := filepath.Join(dir, "cert.pem")
	out, err = run(t, tool, append(r, "-P", "123456", "-a", "verify-pin", "-a", "selfsign-certificate", "-s", "9a", "-A", "ECCP256",
		"-S", "/CN=egate interop/", "-i", pubPath, "-o", certPath)...)
	var cert *x509.Certificate
	switch {
	case err == nil:
		b, _ := os.ReadFile(certPath)
		blk, _ := pem.Decode(b)
		if blk == nil {
			t.Fatalf("selfsign wrote no certificate")
		}
		if cert, err = x509.ParseCertificate(blk.Bytes); err != nil {
			t.Fatal(err)
		}
	case strings.Contains(out, "Failed signing certificate") && !log.saw(0x87, 0x9a):
		// yubico-piv-tool 2.2.0 linked with OpenSSL 3 (Debian 12) fails in
		// its own OpenSSL glue before it sends the card anything
		// (Yubico/yubico-piv-tool#388); the card had no say. Make the
		// self-signed certificate with the card's key through OpenSSL and
		// OpenSC instead, and check that the card signed it.
		t.Logf("yubico-piv-tool selfsign failed before reaching the card (known upstream bug #388); self-signing through openssl req + OpenSC")
		cert = selfSignWithOpenSSL(t, in.Reader, pub, certPath)
		if !log.saw(0x87, 0x9a) {
			t.Fatal("openssl req did not make the card sign")
		}
	default:
		t.Fatalf("selfsign-certificate: %v\n%s", err, out)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Fatalf("self-signed certificate does not verify: %v", err)
	}
	if !publicEqual(cert.PublicKey, pub) {
		t.Fatal("certificate is not for the generated key")
	}

	ykpiv("-a", "import-certificate", "-s", "9a", "-i", certPath)
	out = ykpiv("-a", "read-certificate", "-s", "9a")
	if blk, _ := pem.Decode([]byte(out)); blk == nil || !bytes.Equal(blk.Bytes, cert.Raw) {
		t.Errorf("read-certificate returned another certificate:\n%s", out)
	}
	out = ykpiv("-a", "status")
	if !strings.Contains(out, "Slot 9a:") || !strings.Contains(out, "egate interop") {
		t.Errorf("status does not show the certificate in 9a:\n%s", out)
	}
	before := log.count()
	out = ykpiv("-P", "123456", "-a", "verify-pin", "-a", "test-signature", "-s", "9a", "-i", certPath)
	if !strings.Contains(strings.ToLower(out), "successful") {
		t.Errorf("test-signature:\n%s", out)
	}
	if !log.sawSince(before, 0x87, 0x9a) {
		t.Error("test-signature did not make the card sign")
	}

	// A wrong PIN is counted by the card.
	out, err = run(t, tool, append(r, "-P", "000000", "-a", "verify-pin")...)
	if err == nil || !strings.Contains(out, "2 tries left") {
		t.Errorf("wrong PIN: %v\n%s", err, out)
	}
}

func TestInteropOpenSC(t *testing.T) {
	tool := testenv.NeedCommand(t, "pkcs11-tool", "opensc")
	openssl := testenv.NeedCommand(t, "openssl", "openssl")
	module := "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
	if _, err := os.Stat(module); err != nil {
		testenv.Missing(t, "OpenSC PKCS#11 module", "apt-get install opensc-pkcs11")
	}
	in, log := insertTraced(t)
	dir := t.TempDir()

	yk := openReaderNoCleanup(t, in.Reader)
	pub, err := yk.GenerateKey(piv.DefaultManagementKey, piv.SlotAuthentication, piv.Key{Algorithm: piv.AlgorithmEC256, PINPolicy: piv.PINPolicyOnce, TouchPolicy: piv.TouchPolicyNever})
	yk.Close()
	if err != nil {
		t.Fatal(err)
	}
	cert := selfSignWithOpenSSL(t, in.Reader, pub, filepath.Join(dir, "cert.pem"))
	if !log.saw(0x87, 0x9a) {
		t.Fatal("openssl req did not make the card sign")
	}
	yk = openReaderNoCleanup(t, in.Reader)
	err = yk.SetCertificate(piv.DefaultManagementKey, piv.SlotAuthentication, cert)
	yk.Close()
	if err != nil {
		t.Fatal(err)
	}

	// OpenSC sees only this test's reader: a card a parallel test inserts
	// into the other one cannot shift the slot index between these runs.
	env := []string{onlyReader(t, in.Reader)}
	p11 := func(args ...string) string {
		t.Helper()
		out, err := runEnv(t, env, tool, append([]string{"--module", module}, args...)...)
		if err != nil {
			t.Fatalf("pkcs11-tool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	out := p11("--list-slots")
	if !strings.Contains(out, in.Reader) || !strings.Contains(out, "piv_II") {
		t.Errorf("--list-slots does not show the card:\n%s", out)
	}
	slotIndex := readerSlot(out, in.Reader)
	out = p11("--slot-index", slotIndex, "--list-objects")
	for _, want := range []string{"Certificate Object", "egate interop", "Public Key Object; EC"} {
		if !strings.Contains(out, want) {
			t.Errorf("--list-objects lacks %q:\n%s", want, out)
		}
	}

	data := filepath.Join(dir, "data")
	sig := filepath.Join(dir, "sig")
	os.WriteFile(data, []byte("pay 5000 fen to the mall"), 0o600)
	before := log.count()
	p11("--slot-index", slotIndex, "--login", "--pin", "123456", "--sign", "--id", "01",
		"--mechanism", "ECDSA-SHA256", "--signature-format", "openssl", "--input-file", data, "--output-file", sig)
	if !log.sawSince(before, 0x87, 0x9a) {
		t.Error("pkcs11-tool --sign did not reach the card")
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(pub)
	pubPath := filepath.Join(dir, "pub.pem")
	os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600)
	out = mustRun(t, openssl, "dgst", "-sha256", "-verify", pubPath, "-signature", sig, data)
	if !strings.Contains(out, "Verified OK") {
		t.Errorf("openssl: %s", out)
	}
}

// readerSlot finds the PKCS#11 slot index of a reader in --list-slots output.
func readerSlot(out, reader string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "Slot ") && strings.HasSuffix(strings.TrimSpace(line), reader) {
			f := strings.Fields(line)
			return f[1]
		}
	}
	return "0"
}
