package hsm

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/miekg/pkcs11"
)

// These tests pin down why sealing and token-key HMAC stay on the
// miekg/pkcs11 path (see doc.go): crypto11's AES-GCM and HMAC compute the
// same values on SoftHSM2 — so the choice is not about the format — but they
// report failures by panicking, flatten the PKCS#11 return value (GCM), or
// keep a pooled session when a call fails (HMAC), which the recovery cannot
// work with.

func TestCrypto11GCMMatchesSealFormat(t *testing.T) {
	s := openTest(t, testConfig(testToken))
	ctx := context.Background()
	k, _, err := s.EnsureKey(ctx, KeySpec{"egate-test-seal", KeyAES256})
	if err != nil {
		t.Fatal(err)
	}
	pt := []byte("grid card 0417: A1=37 B2=91 ...")
	aad := []byte("customer:42")
	iv := bytes.Repeat([]byte{7}, gcmIVLen)
	var blob []byte
	err = s.c11do(ctx, func(g *c11gen) error {
		sk, err := g.ctx.FindKey(k.ID, []byte(k.Label))
		if err != nil || sk == nil {
			return errors.Join(err, errors.New("crypto11 does not find the AES key"))
		}
		aead, err := sk.NewGCM()
		if err != nil {
			return err
		}
		if aead.NonceSize() != gcmIVLen || aead.Overhead() != gcmTagBits/8 {
			t.Errorf("crypto11 GCM nonce %d overhead %d, want %d and %d", aead.NonceSize(), aead.Overhead(), gcmIVLen, gcmTagBits/8)
		}
		ct := aead.Seal(nil, iv, pt, append([]byte{sealV1GCM}, aad...))
		blob = append(append([]byte{sealV1GCM}, iv...), ct...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Unseal(ctx, k.Label, blob, aad)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Unseal of crypto11's GCM output = %q, %v", got, err)
	}
}

func TestCrypto11HMACMatchesTokenHMAC(t *testing.T) {
	s := openTest(t, testConfig(testToken))
	ctx := context.Background()
	k, _, err := s.EnsureKey(ctx, KeySpec{LabelHMAC, KeyHMAC})
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("counter 42")
	want, err := s.HMAC(ctx, k.Label, msg)
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	err = s.c11do(ctx, func(g *c11gen) error {
		sk, err := g.ctx.FindKey(k.ID, []byte(k.Label))
		if err != nil || sk == nil {
			return errors.Join(err, errors.New("crypto11 does not find the HMAC key"))
		}
		h, err := sk.NewHMAC(pkcs11.CKM_SHA256_HMAC, 0)
		if err != nil {
			return err
		}
		if _, err := h.Write(msg); err != nil {
			return err
		}
		got = h.Sum(nil)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("crypto11 HMAC %x, egate HMAC %x", got, want)
	}
}
