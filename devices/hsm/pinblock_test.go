package hsm

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/egate-bank/egate/devices/p11"
)

// iso4 enciphers a format 4 PIN block with crypto/aes, as the PIN pad
// does, independently of the HSM: AES_K(AES_K(pin field) XOR pan field).
func iso4(t *testing.T, key []byte, pinField, panField [16]byte) [16]byte {
	t.Helper()
	c, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	var b [16]byte
	c.Encrypt(b[:], pinField[:])
	for i := range b {
		b[i] ^= panField[i]
	}
	c.Encrypt(b[:], b[:])
	return b
}

func TestDecipherPINBlock4(t *testing.T) {
	s := openTest(t, testConfig(testToken))
	ctx := context.Background()
	key, other := make([]byte, 32), make([]byte, 32)
	rand.Read(key)
	rand.Read(other)
	k, err := s.ImportPINKey(ctx, PINKeyLabel("ATM-T-1"), key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImportPINKey(ctx, PINKeyLabel("ATM-T-2"), other); err != nil {
		t.Fatal(err)
	}
	// Importing again keeps the key (same id).
	again, err := s.ImportPINKey(ctx, PINKeyLabel("ATM-T-1"), other)
	if err != nil || !bytes.Equal(again.ID, k.ID) {
		t.Fatalf("second import = %+v, %v; want the first key %x", again, err, k.ID)
	}
	// PIN 1234 (nibbles 4 4 1 2 3 4 A…A, then 8 random bytes); PAN
	// 6222020000000001 (nibble 4 = 16-12, then the digits, zeros).
	pinField := [16]byte{0x44, 0x12, 0x34, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA}
	rand.Read(pinField[8:])
	panField := [16]byte{0x46, 0x22, 0x20, 0x20, 0x00, 0x00, 0x00, 0x00, 0x10}
	block := iso4(t, key, pinField, panField)

	cases := []struct {
		name    string
		key     string
		pan     [16]byte
		want    bool
		wantErr error
	}{
		{"right key and PAN", PINKeyLabel("ATM-T-1"), panField, true, nil},
		{"by URI", k.URI, panField, true, nil},
		{"another ATM's key", PINKeyLabel("ATM-T-2"), panField, false, nil},
		{"another account", PINKeyLabel("ATM-T-1"), [16]byte{0x46, 0x22, 0x20, 0x20, 0x00, 0x00, 0x00, 0x00, 0x20}, false, nil},
		{"no such key", PINKeyLabel("ATM-T-9"), panField, false, ErrKeyNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.DecipherPINBlock4(ctx, tc.key, block, tc.pan)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got == pinField) != tc.want {
				t.Fatalf("plain field matches = %v, want %v", got == pinField, tc.want)
			}
		})
	}
	// The key is sensitive, never extractable, decrypt only.
	err = s.do(ctx, func(sh pkcs11.SessionHandle) error {
		h, err := s.handle(sh, pkcs11.CKO_SECRET_KEY, PINKeyLabel("ATM-T-1"))
		if err != nil {
			return err
		}
		if _, err := s.p.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)}); !p11.IsRV(err, pkcs11.CKR_ATTRIBUTE_SENSITIVE) {
			t.Errorf("reading CKA_VALUE: %v, want CKR_ATTRIBUTE_SENSITIVE", err)
		}
		for typ, want := range map[uint]bool{pkcs11.CKA_EXTRACTABLE: false, pkcs11.CKA_DECRYPT: true, pkcs11.CKA_ENCRYPT: false, pkcs11.CKA_WRAP: false, pkcs11.CKA_UNWRAP: false} {
			a, err := s.p.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(typ, nil)})
			if err != nil {
				return err
			}
			if got := len(a[0].Value) == 1 && a[0].Value[0] == 1; got != want {
				t.Errorf("attribute %#x = %v, want %v", typ, got, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImportPINKey(ctx, PINKeyLabel("ATM-T-3"), key[:10]); !errors.Is(err, ErrKeyType) {
		t.Fatalf("a 10-byte key: %v, want ErrKeyType", err)
	}
}
