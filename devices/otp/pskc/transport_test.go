package pskc

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"strings"
	"testing"
)

// fakeTransport records what the Reader hands to the HSM.
type fakeTransport struct {
	secrets []EncryptedValue
	decrypt []EncryptedValue
	certs   int
}

func (f *fakeTransport) Secret(ctx context.Context, v EncryptedValue) (Sealed, error) {
	f.secrets = append(f.secrets, v)
	return Sealed{Wrapped: []byte("wrapped"), Len: 24}, nil
}

func (f *fakeTransport) Decrypt(ctx context.Context, v EncryptedValue) ([]byte, error) {
	f.decrypt = append(f.decrypt, v)
	return []byte("1234"), nil
}

func (f *fakeTransport) Certificate(ctx context.Context, der []byte) error { f.certs++; return nil }

// TestTransportReader: with Options.Transport the Reader never decrypts a
// seed itself: each goes to the Transport with its MAC, and the Key
// carries only what came back; password files are refused.
func TestTransportReader(t *testing.T) {
	t.Parallel()
	key := mustHex("000102030405060708090a0b0c0d0e0f")
	enc := writeFile(t, WriterOptions{Key: key, KeyName: "k", MACHash: crypto.SHA1}, sampleKeys(3))
	ft := &fakeTransport{}
	ks, _, err := readAll(bytes.NewReader(enc), Options{Transport: ft})
	if err != nil || len(ks) != 3 {
		t.Fatalf("read %d keys, %v", len(ks), err)
	}
	for i, k := range ks {
		if k.Secret != nil || string(k.Wrapped) != "wrapped" {
			t.Fatalf("key %d: Secret %v, Wrapped %q", i, k.Secret != nil, k.Wrapped)
		}
	}
	if len(ft.secrets) != 3 {
		t.Fatalf("%d seeds went to the transport", len(ft.secrets))
	}
	for _, v := range ft.secrets {
		if v.Alg != EncAESCBC || v.KeyBytes != 16 || v.MACHash != crypto.SHA1 || len(v.MAC) != 20 || len(v.MACKey) != 64 || v.MACKeyAlg != EncAESCBC {
			t.Fatalf("value given to the transport: %+v", v)
		}
	}
	pw := writeFile(t, WriterOptions{Password: []byte("pw"), Iterations: 1000}, sampleKeys(1))
	if _, _, err := readAll(bytes.NewReader(pw), Options{Transport: ft}); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "password") {
		t.Fatalf("password file with a transport: %v", err)
	}
	noMAC := strings.Replace(string(enc), string(enc[bytes.Index(enc, []byte("<MACMethod")):bytes.Index(enc, []byte("</MACMethod>"))+len("</MACMethod>")]), "", 1)
	if _, _, err := readAll(strings.NewReader(noMAC), Options{Transport: ft}); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "MACMethod") {
		t.Fatalf("AES file without MAC: %v", err)
	}
}
