package hsm

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"testing"
)

// TestKeysByURI: every method that takes a key takes a plain label or an
// RFC 7512 pkcs11: URI for the same key and computes the same result; a
// URI for another token, of another type, with another id or without
// object= is refused before anything is computed.
func TestKeysByURI(t *testing.T) {
	s := openTest(t, testConfig(testToken))
	ctx := context.Background()
	if _, err := s.InitStandardKeys(ctx); err != nil {
		t.Fatal(err)
	}
	hmacKey, err := s.FindKey(ctx, LabelHMAC)
	if err != nil {
		t.Fatal(err)
	}
	seedKey, err := s.FindKey(ctx, LabelSeedWrap)
	if err != nil {
		t.Fatal(err)
	}
	sealKey, err := s.FindKey(ctx, LabelSecretsWrap)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("challenge 00FF")
	wantMAC, err := s.HMAC(ctx, LabelHMAC, msg)
	if err != nil {
		t.Fatal(err)
	}
	seed := []byte("12345678901234567890")
	wrapped, err := s.WrapSecret(ctx, LabelSeedWrap, seed)
	if err != nil {
		t.Fatal(err)
	}
	wantOTP, err := s.HMACWrapped(ctx, LabelSeedWrap, wrapped, crypto.SHA1, [][]byte{msg})
	if err != nil {
		t.Fatal(err)
	}

	names := func(k Key) []string {
		return []string{
			k.URI, // token, object, type and id
			"pkcs11:object=" + k.Label,
			"pkcs11:token=" + testToken + ";object=" + k.Label + ";type=secret-key",
		}
	}
	for _, ref := range names(hmacKey) {
		t.Run("HMAC "+ref, func(t *testing.T) {
			got, err := s.HMAC(ctx, ref, msg)
			if err != nil || !bytes.Equal(got, wantMAC) {
				t.Fatalf("HMAC(%s) = %x, %v; want %x (the label's)", ref, got, err, wantMAC)
			}
		})
	}
	for _, ref := range names(seedKey) {
		t.Run("seed wrap "+ref, func(t *testing.T) {
			w, err := s.WrapSecret(ctx, ref, seed)
			if err != nil {
				t.Fatal(err)
			}
			for _, blob := range [][]byte{w, wrapped} {
				got, err := s.HMACWrapped(ctx, ref, blob, crypto.SHA1, [][]byte{msg})
				if err != nil || !bytes.Equal(got[0], wantOTP[0]) {
					t.Fatalf("HMACWrapped(%s) = %x, %v; want %x", ref, got, err, wantOTP)
				}
			}
		})
	}
	for _, ref := range names(sealKey) {
		t.Run("seal "+ref, func(t *testing.T) {
			sealed, err := s.Seal(ctx, ref, []byte("grid"), []byte("card 1"))
			if err != nil {
				t.Fatal(err)
			}
			pt, err := s.Unseal(ctx, LabelSecretsWrap, sealed, []byte("card 1"))
			if err != nil || string(pt) != "grid" {
				t.Fatalf("Unseal by label of what %s sealed = %q, %v", ref, pt, err)
			}
			if pt, err = s.Unseal(ctx, ref, sealed, []byte("card 1")); err != nil || string(pt) != "grid" {
				t.Fatalf("Unseal(%s) = %q, %v", ref, pt, err)
			}
		})
	}

	refused := []struct {
		name string
		ref  string
		want error
	}{
		{"another token", "pkcs11:token=other;object=" + LabelHMAC, ErrTokenNotFound},
		{"another type", "pkcs11:object=" + LabelHMAC + ";type=private", ErrKeyType},
		{"another id", "pkcs11:object=" + LabelHMAC + ";id=%01%02", ErrKeyNotFound},
		{"no object", "pkcs11:token=" + testToken, ErrBadURI},
		{"malformed", "pkcs11:object=%zz", ErrBadURI},
		{"a certificate", "pkcs11:object=" + LabelHMAC + ";type=cert", ErrBadURI},
	}
	for _, tc := range refused {
		t.Run("refused "+tc.name, func(t *testing.T) {
			if _, err := s.HMAC(ctx, tc.ref, msg); !errors.Is(err, tc.want) {
				t.Errorf("HMAC(%s) = %v, want %v", tc.ref, err, tc.want)
			}
			if _, err := s.Seal(ctx, tc.ref, []byte("x"), nil); !errors.Is(err, tc.want) {
				t.Errorf("Seal(%s) = %v, want %v", tc.ref, err, tc.want)
			}
			if _, err := s.WrapSecret(ctx, tc.ref, seed); !errors.Is(err, tc.want) {
				t.Errorf("WrapSecret(%s) = %v, want %v", tc.ref, err, tc.want)
			}
			if _, err := s.HMACWrapped(ctx, tc.ref, wrapped, crypto.SHA1, [][]byte{msg}); !errors.Is(err, tc.want) {
				t.Errorf("HMACWrapped(%s) = %v, want %v", tc.ref, err, tc.want)
			}
		})
	}
	if n := s.Reopened(); n != 0 {
		t.Errorf("refused references reopened the HSM %d times: a bad reference is a verdict, not a fault", n)
	}
}
