package hsm

import (
	"context"
	"errors"
	"testing"

	"github.com/egate-bank/egate/devices/p11"
	"github.com/egate-bank/egate/devices/p11/p11test"
	"github.com/miekg/pkcs11"
)

// TestOpenWrapped: the seam OpenWrapped offers carries the Service's
// PKCS#11 calls. A session the module forgot at C_Sign is recovered on a
// fresh session (C_Sign runs twice, the MAC is the same); a token pulled
// out at every C_Sign makes HMAC fail with the module's return value.
func TestOpenWrapped(t *testing.T) {
	need(t)
	ctx := context.Background()
	var f *p11test.Faulty
	s, err := OpenWrapped(ctx, testConfig(testToken), func(c p11.Ctx) p11.Ctx {
		f = p11test.New(c)
		return f
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, _, err := s.EnsureKey(ctx, KeySpec{LabelHMAC, KeyHMAC}); err != nil {
		t.Fatal(err)
	}
	want, err := s.HMAC(ctx, LabelHMAC, []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		rv    uint
		times int
		signs int   // C_Sign calls the HMAC makes
		want  error // nil: the same MAC
	}{
		{"session lost once", pkcs11.CKR_SESSION_HANDLE_INVALID, 1, 2, nil},
		{"operation failed", pkcs11.CKR_FUNCTION_FAILED, 1, 1, pkcs11.Error(pkcs11.CKR_FUNCTION_FAILED)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.Inject("Sign", tc.rv, tc.times)
			t.Cleanup(f.Clear)
			before := f.Calls("Sign")
			got, err := s.HMAC(ctx, LabelHMAC, []byte("m"))
			if tc.want == nil && (err != nil || string(got) != string(want)) {
				t.Fatalf("HMAC = %x, %v; want %x", got, err, want)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("HMAC = %v, want %v", err, tc.want)
			}
			if n := f.Calls("Sign") - before; n != tc.signs {
				t.Fatalf("C_Sign called %d times, want %d", n, tc.signs)
			}
		})
	}
}
