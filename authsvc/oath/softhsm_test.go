package oath

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"sync/atomic"
)

// fakeHSM is a software double of the HSM for unit tests: seeds are wrapped
// with AES-GCM under a random in-memory key, HMACs computed after unwrapping.
type fakeHSM struct {
	aead  cipher.AEAD
	calls atomic.Int64
}

func newFakeHSM() *fakeHSM {
	k := make([]byte, 32)
	rand.Read(k)
	b, _ := aes.NewCipher(k)
	g, _ := cipher.NewGCM(b)
	return &fakeHSM{aead: g}
}

func (f *fakeHSM) WrapSecret(ctx context.Context, label string, secret []byte) ([]byte, error) {
	n := make([]byte, f.aead.NonceSize())
	rand.Read(n)
	return f.aead.Seal(n, n, secret, []byte(label)), nil
}

func (f *fakeHSM) HMACWrapped(ctx context.Context, label string, wrapped []byte, h crypto.Hash, msgs [][]byte) ([][]byte, error) {
	f.calls.Add(1)
	ns := f.aead.NonceSize()
	if len(wrapped) < ns {
		return nil, errors.New("bad blob")
	}
	k, err := f.aead.Open(nil, wrapped[:ns], wrapped[ns:], []byte(label))
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		mac := hmac.New(h.New, k)
		mac.Write(m)
		out[i] = mac.Sum(nil)
	}
	return out, nil
}

func (f *fakeHSM) RewrapSecret(ctx context.Context, from, to string, wrapped []byte) ([]byte, error) {
	ns := f.aead.NonceSize()
	if len(wrapped) < ns {
		return nil, errors.New("bad blob")
	}
	k, err := f.aead.Open(nil, wrapped[:ns], wrapped[ns:], []byte(from))
	if err != nil {
		return nil, err
	}
	return f.WrapSecret(ctx, to, k)
}
