package main

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/devices/otp/pskc"
)

// egate admin token import-pskc with its secrets in files: --key-file and
// --password-source file: both demand an owner-only file (0600) and say so
// naming their own flag and file; a --db path holding # and ? is the file
// used; an expired key is warned about and skipped unless --force-expired.
func TestAdminTokenImportPSKCFiles(t *testing.T) {
	b := newAdminBench(t)
	// A database path that a file: URI would cut at # or ?.
	b.db = filepath.Join(b.dir, "bank#1?x=y.db")
	b.flags[1] = b.db
	key := bytes.Repeat([]byte{0x42}, 16)
	keyed := filepath.Join(b.dir, "keyed.pskc")
	writePSKC(t, keyed, "K", 2, pskc.WriterOptions{Key: key, KeyName: "transport"})
	pw := filepath.Join(b.dir, "password.pskc")
	writePSKC(t, pw, "W", 3, pskc.WriterOptions{Password: []byte("Transport-Pass-9"), Iterations: 1000})
	secret := func(name string, content []byte, mode os.FileMode) string {
		p := filepath.Join(b.dir, name)
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyOpen := secret("key-0640", []byte(strings.Repeat("42", 16)+"\n"), 0o640)
	keyOthers := secret("key-0604", key, 0o604)
	keyOK := secret("key-0600", []byte(strings.Repeat("42", 16)+"\n"), 0o600)
	pwOpen := secret("pw-0660", []byte("Transport-Pass-9\n"), 0o660)
	pwOK := secret("pw-0400", []byte("Transport-Pass-9\n"), 0o400)

	var exp bytes.Buffer
	w, _ := pskc.NewWriter(&exp, pskc.WriterOptions{})
	for i, d := range []time.Time{time.Now().Add(-48 * time.Hour), time.Now().Add(365 * 24 * time.Hour)} {
		w.Add(&pskc.Key{ID: "1", Serial: []string{"XOLD", "XNEW"}[i], Params: otp.Params{Kind: otp.KindHOTP, Hash: crypto.SHA1, Digits: 6}, Secret: bytes.Repeat([]byte{7}, 20), ExpiryDate: d})
	}
	w.Close()
	expired := secret("expiring.pskc", exp.Bytes(), 0o600)

	tests := []struct {
		name    string
		args    []string
		ok      bool
		out     string   // regexp on stdout when ok
		errHas  []string // in the one error line (or stderr when ok)
		secrets []string // must not be on stderr
		rows    int
	}{
		{"key file readable by the group", []string{keyed, "--key-file", keyOpen}, false, "", []string{"--key-file " + keyOpen, "the transport key file", "mode 0640", "0600", "chmod 600"}, nil, 0},
		{"key file readable by others", []string{keyed, "--key-file", keyOthers}, false, "", []string{"--key-file", "mode 0604", "chmod 600"}, nil, 0},
		{"key file 0600", []string{keyed, "--key-file", keyOK}, true, `(?m)^imported 2 tokens`, nil, nil, 2},
		{"password file readable by the group", []string{pw, "--password-source", "file:" + pwOpen}, false, "", []string{"--password-source file:" + pwOpen, "the password file", "mode 0660", "0600", "chmod 600"}, []string{"Transport-Pass-9"}, 2},
		{"password file 0400", []string{pw, "--password-source", "file:" + pwOK}, true, `(?m)^imported 3 tokens`, nil, []string{"Transport-Pass-9"}, 5},
		{"expired key skipped", []string{expired}, true, `(?m)^imported 1 tokens`, []string{`warning: key package 1 (key id "1", serial "XOLD") expired on`, "skipped (--force-expired imports it)"}, nil, 6},
		{"expired key forced", []string{expired, "--force-expired"}, true, `(?m)^imported 1 tokens, skipped 1 already present`, []string{`serial "XOLD") expired on`, "imported all the same"}, nil, 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := b.admin(t, append([]string{"token", "import-pskc"}, tc.args...)...)
			if tc.ok {
				if r.code != 0 || !regexp.MustCompile(tc.out).MatchString(r.stdout) {
					t.Fatalf("import: %+v", r)
				}
				for _, m := range tc.errHas {
					if !strings.Contains(r.stderr, m) {
						t.Fatalf("stderr does not say %q:\n%s", m, r.stderr)
					}
				}
			} else {
				oneLine(t, r, tc.errHas...)
			}
			for _, s := range tc.secrets {
				if strings.Contains(r.stderr+r.stdout, s) {
					t.Fatal("a secret reached the output")
				}
			}
			if n := b.count(t, "otp_tokens"); n != tc.rows {
				t.Fatalf("otp_tokens has %d rows, want %d", n, tc.rows)
			}
		})
	}
	if _, err := os.Stat(b.db); err != nil {
		t.Fatalf("the database is not at --db %s: %v", b.db, err)
	}
	if _, err := os.Stat(filepath.Join(b.dir, "bank")); err == nil {
		t.Fatal("a database file named by the path before # was created")
	}
}

// egate admin token pskc-transport-key makes an RSA transport key in the
// HSM and prints its public key; import-pskc --transport-key unwraps a file
// encrypted to it (by openssl) in the HSM, refusing a storage key that is
// not CKA_TRUSTED (the bench's egate-secrets-wrap) with one line, and
// refusing a transport key given with a software key.
func TestAdminTokenPSKCTransportKey(t *testing.T) {
	b := newAdminBench(t)
	// It needs the HSM, not the database: the bench's flags without --db.
	r := b.run(t, append([]string{"admin", "token", "pskc-transport-key", "vendor-transport"}, b.flags[2:]...)...)
	blk, _ := pem.Decode([]byte(r.stdout))
	if r.code != 0 || blk == nil || !strings.Contains(r.stderr, "pkcs11:token="+benchHSMToken+";object=vendor-transport;type=private") {
		t.Fatalf("pskc-transport-key: %+v", r)
	}
	pubAny, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pubAny.(*rsa.PublicKey); !ok {
		t.Fatalf("public key %T", pubAny)
	}
	if r := b.run(t, append([]string{"admin", "token", "pskc-transport-key", "vendor-transport"}, b.flags[2:]...)...); r.code == 0 {
		t.Fatal("a second transport key of the same label")
	}
	pubPath := filepath.Join(b.dir, "transport.pem")
	os.WriteFile(pubPath, []byte(r.stdout), 0o600)
	seedPath := filepath.Join(b.dir, "seed")
	os.WriteFile(seedPath, []byte("12345678901234567890"), 0o600)
	out, err := exec.Command("openssl", "pkeyutl", "-encrypt", "-pubin", "-inkey", pubPath, "-pkeyopt", "rsa_padding_mode:oaep", "-in", seedPath).Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	doc := `<?xml version="1.0"?><KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:xenc="http://www.w3.org/2001/04/xmlenc#">
<EncryptionKey><ds:X509Data/></EncryptionKey>
<KeyPackage><DeviceInfo><SerialNo>RSA01</SerialNo></DeviceInfo><Key Id="1" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:hotp"><Data><Secret><EncryptedValue><xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"/><xenc:CipherData><xenc:CipherValue>` +
		base64.StdEncoding.EncodeToString(out) + `</xenc:CipherValue></xenc:CipherData></EncryptedValue></Secret><Counter><PlainValue>0</PlainValue></Counter></Data></Key></KeyPackage></KeyContainer>`
	file := filepath.Join(b.dir, "rsa.pskc")
	os.WriteFile(file, []byte(doc), 0o600)
	keyFile := filepath.Join(b.dir, "k")
	os.WriteFile(keyFile, []byte(strings.Repeat("00", 16)), 0o600)

	r = b.admin(t, "token", "import-pskc", file, "--transport-key", "pkcs11:object=vendor-transport", "--key-file", keyFile)
	oneLine(t, r, "--transport-key", "--key-file")
	r = b.admin(t, "token", "import-pskc", file)
	oneLine(t, r, "nothing was imported", "RSA key", "transport key")
	r = b.admin(t, "token", "import-pskc", file, "--transport-key", "pkcs11:object=vendor-transport")
	var errLines []string
	for _, l := range strings.Split(strings.TrimRight(r.stderr, "\n"), "\n") {
		if !regexp.MustCompile(`^\w+: \d+% \(\d+ of \d+\)$`).MatchString(l) {
			errLines = append(errLines, l)
		}
	}
	if r.code == 0 || len(errLines) != 1 || !strings.Contains(errLines[0], "CKA_TRUSTED") || !strings.Contains(errLines[0], `key id "1"`) {
		t.Fatalf("import to an untrusted wrap key: %+v", r)
	}
	if n := b.count(t, "otp_tokens"); n != 0 {
		t.Fatalf("%d tokens imported", n)
	}
}

// import-pskc --signer-cert: the vendor's signed file (xmlsec1, see
// devices/otp/pskc/testdata) imports with the vendor's certificate; another
// certificate, no certificate, or a bad --signer-cert each give one line
// and import nothing.
func TestAdminTokenImportPSKCSigned(t *testing.T) {
	b := newAdminBench(t)
	td, err := filepath.Abs(filepath.Join("..", "..", "devices", "otp", "pskc", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	signed := filepath.Join(td, "signed.pskcxml")
	notPEM := filepath.Join(b.dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	tests := []struct {
		name   string
		args   []string
		ok     bool
		errHas []string
		rows   int
	}{
		{"signed file without --signer-cert", []string{signed}, false, []string{"nothing was imported", "signed", "--signer-cert"}, 0},
		{"another vendor's certificate", []string{signed, "--signer-cert", filepath.Join(td, "signed-other-cert.pem")}, false, []string{"nothing was imported", "signature does not verify"}, 0},
		{"no PEM in --signer-cert", []string{signed, "--signer-cert", notPEM}, false, []string{"--signer-cert", "no PEM CERTIFICATE"}, 0},
		{"missing --signer-cert", []string{signed, "--signer-cert", filepath.Join(b.dir, "nope.pem")}, false, []string{"--signer-cert", "does not exist"}, 0},
		{"the vendor's certificate", []string{signed, "--signer-cert", filepath.Join(td, "signed-vendor-cert.pem")}, true, nil, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := b.admin(t, append([]string{"token", "import-pskc"}, tc.args...)...)
			if tc.ok {
				if r.code != 0 || !strings.Contains(r.stdout, "imported 2 tokens") {
					t.Fatalf("import: %+v", r)
				}
			} else {
				var errLines []string
				for _, l := range strings.Split(strings.TrimRight(r.stderr, "\n"), "\n") {
					if !regexp.MustCompile(`^\w+: \d+% \(\d+ of \d+\)$`).MatchString(l) {
						errLines = append(errLines, l)
					}
				}
				if r.code == 0 || len(errLines) != 1 {
					t.Fatalf("want one error line: %+v", r)
				}
				for _, m := range tc.errHas {
					if !strings.Contains(errLines[0], m) {
						t.Fatalf("error %q does not say %q", errLines[0], m)
					}
				}
			}
			if n := b.count(t, "otp_tokens"); n != tc.rows {
				t.Fatalf("otp_tokens has %d rows, want %d", n, tc.rows)
			}
		})
	}
}
