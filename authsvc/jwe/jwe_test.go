package jwe

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

var (
	keysOnce sync.Once
	keyA     *rsa.PrivateKey
	keyB     *rsa.PrivateKey
)

// keys are two software RSA keys (the HSM path is tested in
// authsvc/txauth and devices/hsm).
func keys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	keysOnce.Do(func() {
		var err error
		if keyA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if keyB, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return keyA, keyB
}

func encrypt(t testing.TB, enc jose.ContentEncryption, r jose.Recipient, opts *jose.EncrypterOptions, pt []byte) string {
	t.Helper()
	e, err := jose.NewEncrypter(enc, r, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := e.Encrypt(pt)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// flip changes one byte of part i (0 header … 4 tag) of a compact JWE.
func flip(t testing.TB, s string, i int) string {
	parts := strings.Split(s, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil || len(b) == 0 {
		t.Fatalf("part %d: %v", i, err)
	}
	b[len(b)/2] ^= 0x40
	parts[i] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// addHeader adds a parameter to the protected header (the content's
// additional authenticated data).
func addHeader(t testing.TB, s string) string {
	parts := strings.Split(s, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	parts[0] = base64.RawURLEncoding.EncodeToString(append([]byte(`{"x":1,`), b[1:]...))
	return strings.Join(parts, ".")
}

// failingKey fails as an unreachable HSM does.
type failingKey struct{ crypto.Decrypter }

var errHSMDown = errors.New("HSM unavailable")

func (failingKey) Decrypt(io.Reader, []byte, crypto.DecrypterOpts) ([]byte, error) {
	return nil, errHSMDown
}

func TestOpen(t *testing.T) {
	t.Parallel()
	a, b := keys(t)
	pt := []byte(`{"customer":"c1","amount":100}`)
	for _, alg := range []string{AlgRSAOAEP256, AlgRSAOAEP} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			o, err := New(a, alg)
			if err != nil {
				t.Fatal(err)
			}
			jwks := o.JWKS()
			if len(jwks.Keys) != 1 || jwks.Keys[0].Use != "enc" || jwks.Keys[0].Algorithm != alg || jwks.Keys[0].KeyID != o.KID() || !jwks.Keys[0].IsPublic() {
				t.Fatalf("JWKS %+v", jwks)
			}
			pub := jwks.Keys[0]
			good, err := Seal(pub, pt)
			if err != nil {
				t.Fatal(err)
			}
			ours := jose.Recipient{Algorithm: jose.KeyAlgorithm(alg), Key: &a.PublicKey, KeyID: o.KID()}
			otherAlg := jose.RSA_OAEP
			if alg == AlgRSAOAEP {
				otherAlg = jose.RSA_OAEP_256
			}
			cases := []struct {
				name string
				jwe  string
				key  Key
				want error
			}{
				{"sealed to the published key", good, a, nil},
				{"with whitespace around", "\n " + good + "\r\n", a, nil},
				{"another kid", encrypt(t, jose.A256GCM, jose.Recipient{Algorithm: jose.KeyAlgorithm(alg), Key: &b.PublicKey, KeyID: "bank-b-2025"}, nil, pt), a, ErrWrongKey},
				{"no kid", encrypt(t, jose.A256GCM, jose.Recipient{Algorithm: jose.KeyAlgorithm(alg), Key: &a.PublicKey}, nil, pt), a, ErrWrongKey},
				{"another key under our kid", encrypt(t, jose.A256GCM, jose.Recipient{Algorithm: jose.KeyAlgorithm(alg), Key: &b.PublicKey, KeyID: o.KID()}, nil, pt), a, ErrUndecryptable},
				{"RSA1_5", encrypt(t, jose.A256GCM, jose.Recipient{Algorithm: jose.RSA1_5, Key: &a.PublicKey, KeyID: o.KID()}, nil, pt), a, ErrNotAllowed},
				{"the other OAEP", encrypt(t, jose.A256GCM, jose.Recipient{Algorithm: otherAlg, Key: &a.PublicKey, KeyID: o.KID()}, nil, pt), a, ErrNotAllowed},
				{"dir", encrypt(t, jose.A256GCM, jose.Recipient{Algorithm: jose.DIRECT, Key: make([]byte, 32), KeyID: o.KID()}, nil, pt), a, ErrNotAllowed},
				{"A128CBC-HS256", encrypt(t, jose.A128CBC_HS256, ours, nil, pt), a, ErrNotAllowed},
				{"A128GCM", encrypt(t, jose.A128GCM, ours, nil, pt), a, ErrNotAllowed},
				{"compressed", encrypt(t, jose.A256GCM, ours, (&jose.EncrypterOptions{Compression: jose.DEFLATE}), pt), a, ErrNotAllowed},
				{"header added to", addHeader(t, good), a, ErrUndecryptable},
				{"tampered key", flip(t, good, 1), a, ErrUndecryptable},
				{"tampered iv", flip(t, good, 2), a, ErrUndecryptable},
				{"tampered ciphertext", flip(t, good, 3), a, ErrUndecryptable},
				{"tampered tag", flip(t, good, 4), a, ErrUndecryptable},
				{"tag cut", good[:len(good)-4], a, ErrUndecryptable},
				{"a JWS", "eyJhbGciOiJFUzI1NiJ9.e30.c2ln", a, ErrMalformed},
				{"JSON serialization", `{"protected":"x","ciphertext":"y"}`, a, ErrMalformed},
				{"empty", "", a, ErrMalformed},
				{"plain JSON", string(pt), a, ErrMalformed},
				{"the HSM down", good, failingKey{a}, ErrKey},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					op := o
					if tc.key != Key(a) {
						op = &Opener{key: tc.key, pub: o.pub, kid: o.kid, alg: o.alg, hash: o.hash}
					}
					got, err := op.Open(context.Background(), []byte(tc.jwe))
					if tc.want == nil {
						if err != nil || !bytes.Equal(got, pt) {
							t.Fatalf("Open = %q, %v", got, err)
						}
						return
					}
					if !errors.Is(err, tc.want) || got != nil {
						t.Fatalf("Open = %q, %v; want %v", got, err, tc.want)
					}
					if tc.want == ErrKey && !errors.Is(err, errHSMDown) {
						t.Fatalf("the key's error is lost: %v", err)
					}
				})
			}
		})
	}
}

func TestNewAndSealRefuse(t *testing.T) {
	t.Parallel()
	a, _ := keys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(small, AlgRSAOAEP256); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("a 1024-bit key: %v", err)
	}
	if _, err := New(a, "RSA1_5"); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("RSA1_5: %v", err)
	}
	o, err := New(a, AlgRSAOAEP256)
	if err != nil {
		t.Fatal(err)
	}
	pub := o.JWKS().Keys[0]
	for name, k := range map[string]jose.JSONWebKey{
		"sig use": {Key: pub.Key, KeyID: pub.KeyID, Use: "sig", Algorithm: pub.Algorithm},
		"RSA1_5":  {Key: pub.Key, KeyID: pub.KeyID, Use: "enc", Algorithm: "RSA1_5"},
		"no kid":  {Key: pub.Key, Use: "enc", Algorithm: pub.Algorithm},
		"private": {Key: a, KeyID: pub.KeyID, Use: "enc", Algorithm: pub.Algorithm},
	} {
		if _, err := Seal(k, []byte("x")); err == nil {
			t.Errorf("Seal with %s: no error", name)
		}
	}
}
