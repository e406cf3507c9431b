package jwe

import (
	"context"
	"errors"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// FuzzJWE: whatever arrives as a JWE body, Open returns a plaintext or one
// of its errors, never panics, and a plaintext comes only from a JWE
// sealed to the key. A software RSA key stands for the HSM here.
func FuzzJWE(f *testing.F) {
	a, b := keys(f)
	o, err := New(a, AlgRSAOAEP256)
	if err != nil {
		f.Fatal(err)
	}
	good, err := Seal(o.JWKS().Keys[0], []byte(`{"customer":"c1"}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(good))
	f.Add([]byte(flip(f, good, 3)))
	f.Add([]byte(encrypt(f, jose.A128CBC_HS256, jose.Recipient{Algorithm: jose.RSA_OAEP_256, Key: &a.PublicKey, KeyID: o.KID()}, nil, []byte("x"))))
	f.Add([]byte(encrypt(f, jose.A256GCM, jose.Recipient{Algorithm: jose.RSA_OAEP_256, Key: &b.PublicKey, KeyID: o.KID()}, nil, []byte("x"))))
	f.Add([]byte("...."))
	f.Add([]byte("eyJhbGciOiJSU0EtT0FFUC0yNTYiLCJlbmMiOiJBMjU2R0NNIn0...."))
	f.Add([]byte(`{"protected":"e30"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		pt, err := o.Open(context.Background(), in)
		if err != nil {
			if pt != nil {
				t.Fatal("a plaintext with an error")
			}
			for _, e := range []error{ErrMalformed, ErrNotAllowed, ErrWrongKey, ErrUndecryptable} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("an error of no kind: %v", err)
		}
	})
}
