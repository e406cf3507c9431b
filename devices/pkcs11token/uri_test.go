package pkcs11token

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/egate-bank/egate/devices/pkcs11uri"
)

// TestNamesByURI: a token and a key are named by an RFC 7512 pkcs11: URI
// as well as by a plain label; what names nothing, or is malformed, is
// refused with ErrTokenNotFound, ErrKeyNotFound or ErrBadURI.
func TestNamesByURI(t *testing.T) {
	ctx := context.Background()
	m, tok := needToken(t, tokenLabel)
	if err := tok.Login(ctx, []byte(userPIN)); err != nil {
		t.Fatal(err)
	}
	serial := tok.Info().Serial
	for _, tc := range []struct {
		name, ref string
		want      error
	}{
		{"label", tokenLabel, nil},
		{"token=", "pkcs11:token=" + tokenLabel, nil},
		{"serial=", "pkcs11:serial=" + serial, nil},
		{"token= and serial=", "pkcs11:token=" + tokenLabel + ";serial=" + serial, nil},
		{"another serial", "pkcs11:token=" + tokenLabel + ";serial=0000", ErrTokenNotFound},
		{"no such token", "pkcs11:token=no-such", ErrTokenNotFound},
		{"malformed", "pkcs11:token=%zz", ErrBadURI},
	} {
		t.Run("token "+tc.name, func(t *testing.T) {
			got, err := m.OpenToken(ctx, tc.ref)
			if !errors.Is(err, tc.want) {
				t.Fatalf("OpenToken(%q) = %v, want %v", tc.ref, err, tc.want)
			}
			if err == nil {
				defer got.Close()
				if got.Info().Serial != serial {
					t.Fatalf("OpenToken(%q) opened %+v", tc.ref, got.Info())
				}
			}
		})
	}

	key, err := tok.GenerateKey(ctx, ECDSAP256, NewKeyID(), "uri-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { key.Destroy(context.Background()) })
	idURI := (&pkcs11uri.URI{ID: key.ID()}).String()
	for _, tc := range []struct {
		name, ref string
		want      error
	}{
		{"Key.URI", key.URI(), nil},
		{"plain label", "uri-test", nil},
		{"object=", "pkcs11:object=uri-test", nil},
		{"id=", idURI, nil},
		{"another token", "pkcs11:token=other;object=uri-test", ErrKeyNotFound},
		{"no such label", "pkcs11:object=no-such-key", ErrKeyNotFound},
		{"a certificate", "pkcs11:object=uri-test;type=cert", ErrBadURI},
		{"neither object nor id", "pkcs11:token=" + tokenLabel, ErrBadURI},
		{"malformed", "pkcs11:object=%zz", ErrBadURI},
	} {
		t.Run("key "+tc.name, func(t *testing.T) {
			got, err := tok.FindKey(ctx, tc.ref)
			if !errors.Is(err, tc.want) {
				t.Fatalf("FindKey(%q) = %v, want %v", tc.ref, err, tc.want)
			}
			if err == nil && !bytes.Equal(got.ID(), key.ID()) {
				t.Fatalf("FindKey(%q) found id %x, want %x", tc.ref, got.ID(), key.ID())
			}
		})
	}
}
