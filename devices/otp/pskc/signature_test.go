package pskc

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readCert(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestVerifySignature: testdata/signed.pskcxml was signed by xmlsec1 with
// the key of signed-vendor-cert.pem (make-signed.sh); it verifies with that
// certificate only, not once altered, not unsigned, not after the
// certificate expired; a signed file read without verifying is refused.
func TestVerifySignature(t *testing.T) {
	t.Parallel()
	signed, err := os.ReadFile(filepath.Join("testdata", "signed.pskcxml"))
	if err != nil {
		t.Fatal(err)
	}
	vendor, other := readCert(t, "signed-vendor-cert.pem"), readCert(t, "signed-other-cert.pem")
	now := time.Now()
	cases := []struct {
		name  string
		doc   []byte
		certs []*x509.Certificate
		at    time.Time
		want  error
		msg   string
	}{
		{name: "the vendor's certificate", doc: signed, certs: []*x509.Certificate{vendor}, at: now},
		{name: "among others", doc: signed, certs: []*x509.Certificate{other, vendor}, at: now},
		{name: "another certificate", doc: signed, certs: []*x509.Certificate{other}, at: now, want: ErrSignature, msg: "trusted"},
		{name: "counter altered", doc: bytes.Replace(signed, []byte("<PlainValue>5</PlainValue>"), []byte("<PlainValue>6</PlainValue>"), 1), certs: []*x509.Certificate{vendor}, at: now, want: ErrSignature},
		{name: "a key package added", doc: bytes.Replace(signed, []byte("<ds:Signature"), append(bytes.ReplaceAll(signed[bytes.Index(signed, []byte("<KeyPackage>")):bytes.Index(signed, []byte("</KeyPackage>"))+len("</KeyPackage>")], []byte("SIG0001"), []byte("SIG0009")), "<ds:Signature"...), 1), certs: []*x509.Certificate{vendor}, at: now, want: ErrSignature},
		{name: "certificate expired", doc: signed, certs: []*x509.Certificate{vendor}, at: vendor.NotAfter.Add(time.Hour), want: ErrSignature, msg: "valid"},
		{name: "a second signature inside a key package", doc: bytes.Replace(signed, []byte("</Data>"), append([]byte("</Data>"), signed[bytes.Index(signed, []byte("<ds:Signature")):bytes.Index(signed, []byte("</ds:Signature>"))+len("</ds:Signature>")]...), 1), certs: []*x509.Certificate{vendor}, at: now, want: ErrMalformed, msg: "more than one"},
		{name: "unsigned", doc: writeFile(t, WriterOptions{}, sampleKeys(2)), certs: []*x509.Certificate{vendor}, at: now, want: ErrSignature, msg: "not signed"},
		{name: "no certificate", doc: signed, at: now, want: ErrSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := VerifySignature(bytes.NewReader(tc.doc), tc.certs, tc.at)
			if tc.want != nil {
				if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("error = %v, want %v saying %q", err, tc.want, tc.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ks, _, err := readAll(bytes.NewReader(out), Options{})
			if err != nil || len(ks) != 2 || ks[0].Serial != "SIG0001" || ks[1].Counter != 5 || string(ks[1].Secret) != "12345678901234567890" {
				t.Fatalf("the signed document read as %d keys, %v", len(ks), err)
			}
		})
	}
	if _, _, err := readAll(bytes.NewReader(signed), Options{}); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "vendor's certificate") {
		t.Fatalf("a signed file read without verifying: %v", err)
	}
}
