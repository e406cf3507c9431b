package oath

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// opensslRSA encrypts pt to pub with openssl pkeyutl: an RSA
// implementation independent of egate's and the HSM's.
func opensslRSA(t *testing.T, pub *rsa.PublicKey, pt []byte, oaep bool) string {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is needed to make the RSA-encrypted test file")
	}
	dir := t.TempDir()
	der, _ := x509.MarshalPKIXPublicKey(pub)
	pubPath, in, out := filepath.Join(dir, "pub.pem"), filepath.Join(dir, "in"), filepath.Join(dir, "out")
	os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)
	os.WriteFile(in, pt, 0o600)
	pad := "pkcs1"
	if oaep {
		pad = "oaep"
	}
	if b, err := exec.Command("openssl", "pkeyutl", "-encrypt", "-pubin", "-inkey", pubPath, "-pkeyopt", "rsa_padding_mode:"+pad, "-in", in, "-out", out).CombinedOutput(); err != nil {
		t.Fatalf("openssl pkeyutl: %v\n%s", err, b)
	}
	ct, _ := os.ReadFile(out)
	return base64.StdEncoding.EncodeToString(ct)
}

// certFor is a certificate of pub (issued by a throwaway CA key): what a
// bank gives its token vendor to encrypt to.
func certFor(t *testing.T, pub *rsa.PublicKey) string {
	t.Helper()
	ca, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "egate bank token transport"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageKeyEncipherment}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, ca)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// rsaPSKC writes an RFC 6030 §6.3 file (Figure 8's shape): values encrypted
// to the certificate's RSA key, no MAC; a PIN-append HOTP key whose PIN is
// encrypted too.
func rsaPSKC(t *testing.T, cert string, enc func([]byte) string, alg string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:xenc="http://www.w3.org/2001/04/xmlenc#">
<EncryptionKey><ds:X509Data><ds:X509Certificate>%s</ds:X509Certificate></ds:X509Data></EncryptionKey>
`, cert)
	value := func(pt []byte) string {
		return fmt.Sprintf(`<EncryptedValue><xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#%s"/><xenc:CipherData><xenc:CipherValue>%s</xenc:CipherValue></xenc:CipherData></EncryptedValue>`, alg, enc(pt))
	}
	fmt.Fprintf(&b, `<KeyPackage><DeviceInfo><SerialNo>R0001</SerialNo></DeviceInfo><Key Id="1" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:hotp"><AlgorithmParameters><ResponseFormat Length="6" Encoding="DECIMAL"/></AlgorithmParameters><Data><Secret>%s</Secret><Counter><PlainValue>0</PlainValue></Counter></Data></Key></KeyPackage>
`, value(seed))
	fmt.Fprintf(&b, `<KeyPackage><DeviceInfo><SerialNo>R0002</SerialNo></DeviceInfo><Key Id="pin2" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:pin"><Data><Secret>%s</Secret></Data></Key></KeyPackage>
`, value([]byte("2468")))
	fmt.Fprintf(&b, `<KeyPackage><DeviceInfo><SerialNo>R0002</SerialNo></DeviceInfo><Key Id="1" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:hotp"><AlgorithmParameters><ResponseFormat Length="6" Encoding="DECIMAL"/></AlgorithmParameters><Data><Secret>%s</Secret><Counter><PlainValue>0</PlainValue></Counter></Data><Policy><PINPolicy PINKeyId="pin2" PINUsageMode="Append" MinLength="4" MaxLength="4"/></Policy></Key></KeyPackage>
</KeyContainer>
`, value(seed))
	path := filepath.Join(t.TempDir(), "rsa.pskc")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestImportRSATransportInHSM: a file encrypted to the bank's RSA transport
// key (RFC 6030 §6.3), whose private key SoftHSM holds, imports with every
// seed unwrapped and re-wrapped in the HSM: codes verify through SoftHSM
// (RFC 4226 vector), the PIN (encrypted too) is checked. A file encrypted
// to another key, one read without the transport key, an untrusted
// storage key and an AES file SoftHSM cannot unwrap are refused whole.
func TestImportRSATransportInHSM(t *testing.T) {
	h := hsmtest.Open(t, hsm.KeySpec{Label: "pskc-test-transport-aes", Type: hsm.KeyAES256})
	hsmtest.NeedTrustedWrapKey(t)
	ctx := context.Background()
	label := fmt.Sprintf("pskc-transport-%d", time.Now().UnixNano())
	pub, err := h.GenerateTransportKey(ctx, label, true) // the file's PIN is encrypted too
	if err != nil {
		t.Fatal(err)
	}
	uri := "pkcs11:token=" + hsmtest.Token + ";object=" + label + ";type=private"
	unwrapOnly, err := h.GenerateTransportKey(ctx, label+"-unwrap-only", false)
	if err != nil {
		t.Fatal(err)
	}
	encPINFile := rsaPSKC(t, certFor(t, unwrapOnly), func(b []byte) string { return opensslRSA(t, unwrapOnly, b, true) }, "rsa-oaep-mgf1p")
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	oaepFile := rsaPSKC(t, certFor(t, pub), func(b []byte) string { return opensslRSA(t, pub, b, true) }, "rsa-oaep-mgf1p")
	pkcs1File := rsaPSKC(t, certFor(t, pub), func(b []byte) string { return opensslRSA(t, pub, b, false) }, "rsa_1_5")
	foreign := rsaPSKC(t, certFor(t, &other.PublicKey), func(b []byte) string { return opensslRSA(t, &other.PublicKey, b, true) }, "rsa-oaep-mgf1p")
	aesFile := filepath.Join(t.TempDir(), "aes.pskc")
	writePSKC(t, aesFile, testKeys(), pskc.WriterOptions{Key: []byte("0123456789abcdef"), KeyName: "transport"})

	storetest.Each(t, func(t *testing.T, db *store.DB) {
		svc := New(db, h, Config{WrapKeyLabel: hsmtest.TrustedWrapKey}, nil)
		count := func() int {
			var n int
			db.QueryRow(ctx, `SELECT COUNT(*) FROM otp_tokens`).Scan(&n)
			return n
		}
		refusals := []struct {
			name string
			svc  *Service
			path string
			o    ImportOptions
			want error
			msg  string
		}{
			{"no transport key", svc, oaepFile, ImportOptions{}, pskc.ErrNeedKey, "RSA key"},
			{"encrypted to another key", svc, foreign, ImportOptions{TransportKey: uri}, pskc.ErrDecrypt, "egate bank token transport"},
			{"untrusted storage key", New(db, h, Config{}, nil), oaepFile, ImportOptions{TransportKey: uri}, hsm.ErrUntrustedWrapKey, "CKA_TRUSTED"},
			{"encrypted PIN, unwrap-only transport key", svc, encPINFile, ImportOptions{TransportKey: label + "-unwrap-only"}, hsm.ErrTransportUnsupported, `key package 2 (key id "pin2"`},
			{"AES-CBC that SoftHSM cannot unwrap", svc, aesFile, ImportOptions{TransportKey: "pskc-test-transport-aes"}, hsm.ErrTransportUnsupported, "key package 1"},
		}
		for _, tc := range refusals {
			_, err := tc.svc.ImportPSKC(ctx, opener(tc.path), tc.o)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("%s: error %v, want %v saying %q", tc.name, err, tc.want, tc.msg)
			}
			if n := count(); n != 0 {
				t.Fatalf("%s: %d tokens imported", tc.name, n)
			}
		}
		for i, path := range []string{oaepFile, pkcs1File} {
			sum, err := svc.ImportPSKC(ctx, opener(path), ImportOptions{TransportKey: uri})
			if i == 0 && (err != nil || sum.Imported != 2) || i == 1 && (err != nil || sum.Duplicates != 2) {
				t.Fatalf("import %s = %+v, %v", filepath.Base(path), sum, err)
			}
		}
		var labels []string
		rows, _ := db.Query(ctx, `SELECT DISTINCT wrap_label FROM otp_tokens`)
		for rows.Next() {
			var l string
			rows.Scan(&l)
			labels = append(labels, l)
		}
		rows.Close()
		if len(labels) != 1 || labels[0] != hsmtest.TrustedWrapKey {
			t.Fatalf("seeds wrapped by %v", labels)
		}
		if _, err := svc.VerifyCode(ctx, Lookup{Serial: "R0001"}, "755224"); err != nil { // RFC 4226, counter 0
			t.Fatalf("RFC 4226 vector with the HSM-imported seed: %v", err)
		}
		if _, err := svc.VerifyCode(ctx, Lookup{Serial: "R0002"}, "755224"); !errors.Is(err, ErrMalformed) {
			t.Fatalf("PIN token without its PIN: %v", err)
		}
		if _, err := svc.VerifyCode(ctx, Lookup{Serial: "R0002"}, "7552242468"); err != nil {
			t.Fatalf("PIN token with code and PIN: %v", err)
		}
	})
}
