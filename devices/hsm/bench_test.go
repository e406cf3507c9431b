package hsm

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/pkcs11"
)

// runGoroutines runs b.N operations spread over exactly g goroutines, each
// with its own op (made by newOp before the timer starts).
func runGoroutines(b *testing.B, g int, newOp func(b *testing.B) func() error) {
	ops := make([]func() error, g)
	for i := range ops {
		ops[i] = newOp(b)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	b.ResetTimer()
	for i := range g {
		wg.Add(1)
		go func(op func() error) {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := op(); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}(ops[i])
	}
	wg.Wait()
	b.StopTimer()
	if err, ok := firstErr.Load().(error); ok {
		b.Fatal(err)
	}
}

// rawSigner is the baseline: one session per goroutine and a plain
// C_SignInit/C_Sign loop over a pre-hashed digest.
func rawSigner(b *testing.B, s *Service, label string, mech uint, input []byte) func() error {
	c := s.mod.Ctx()
	sh, err := c.OpenSession(s.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.CloseSession(sh) })
	if err := c.FindObjectsInit(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)}); err != nil {
		b.Fatal(err)
	}
	hs, _, err := c.FindObjects(sh, 1)
	c.FindObjectsFinal(sh)
	if err != nil || len(hs) != 1 {
		b.Fatalf("raw: key %q: %v", label, err)
	}
	m := []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}
	return func() error {
		if err := c.SignInit(sh, m, hs[0]); err != nil {
			return err
		}
		_, err := c.Sign(sh, input)
		return err
	}
}

// BenchmarkSign compares the raw loop with egate's Signer, which signs
// through crypto11's crypto.Signer (its session pool, DER encoding) behind
// egate's checks and recovery.
func BenchmarkSign(b *testing.B) {
	need(b)
	s := openTest(b, Config{Module: env.dir.Module, Token: testToken, PINSource: "file:" + env.pinFile})
	ctx := context.Background()
	digest := sha256.Sum256([]byte("benchmark"))
	algs := []struct {
		name, label string
		typ         KeyType
		mech        uint
		rawInput    []byte
	}{
		{"ECDSA-P256", "egate-bench-ec", KeyECDSAP256, pkcs11.CKM_ECDSA, digest[:]},
		{"RSA-2048", "egate-bench-rsa", KeyRSA2048, pkcs11.CKM_RSA_PKCS, append(append([]byte{}, digestInfoPrefix[crypto.SHA256]...), digest[:]...)},
	}
	for _, a := range algs {
		if _, _, err := s.EnsureKey(ctx, KeySpec{a.label, a.typ}); err != nil {
			b.Fatal(err)
		}
		sg, err := s.Signer(ctx, a.label)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(a.name, func(b *testing.B) {
			for _, g := range []int{1, 2} {
				b.Run(fmt.Sprintf("goroutines-%d", g), func(b *testing.B) {
					b.Run("raw", func(b *testing.B) {
						runGoroutines(b, g, func(b *testing.B) func() error { return rawSigner(b, s, a.label, a.mech, a.rawInput) })
					})
					b.Run("egate", func(b *testing.B) {
						runGoroutines(b, g, func(*testing.B) func() error {
							return func() error { _, err := sg.Sign(nil, digest[:], crypto.SHA256); return err }
						})
					})
				})
			}
		})
	}
}

// BenchmarkHMACWrapped compares one HOTP-style HMAC-SHA-1 with a key that
// stays in the HSM (raw) against egate's HMACWrapped of a stored wrapped
// seed: egate keeps the unwrapped seed live in its pooled session
// (Config.LiveSeeds), egate-unwrap-each is the old unwrap-HMAC-destroy
// (LiveSeeds -1).
//
// On this 2-core machine, loaded by other engineers' builds and tests
// (-count=6, benchstat medians, 2026-12-03): raw 29.5 µs ± 224%, egate
// 22.7 µs ± 48%, egate-unwrap-each 199 µs ± 47%. egate is at the raw
// HMAC (ratio raw/egate ≥ 1 in the medians; the spread is the load), where
// unwrapping for each call was 0.15 of it (0.14 on a quiet machine, issue
// 16).
func BenchmarkHMACWrapped(b *testing.B) {
	need(b)
	s := openTest(b, testConfig(testToken))
	eachCfg := testConfig(testToken)
	eachCfg.LiveSeeds = -1
	each := openTest(b, eachCfg)
	ctx := context.Background()
	if _, _, err := s.EnsureKey(ctx, KeySpec{LabelSeedWrap, KeySeedWrap}); err != nil {
		b.Fatal(err)
	}
	wrapped, err := s.WrapSeed(ctx, rfc4226Seed)
	if err != nil {
		b.Fatal(err)
	}
	msg := binary.BigEndian.AppendUint64(nil, 42)
	b.Run("raw", func(b *testing.B) {
		c := s.mod.Ctx()
		sh, err := c.OpenSession(s.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			b.Fatal(err)
		}
		defer c.CloseSession(sh)
		seed := make([]byte, 64)
		copy(seed, rfc4226Seed)
		key, err := c.CreateObject(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, seed),
		})
		if err != nil {
			b.Fatal(err)
		}
		m := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_SHA_1_HMAC, nil)}
		b.ResetTimer()
		for b.Loop() {
			if err := c.SignInit(sh, m, key); err != nil {
				b.Fatal(err)
			}
			if _, err := c.Sign(sh, msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, sub := range []struct {
		name string
		s    *Service
	}{{"egate", s}, {"egate-unwrap-each", each}} {
		b.Run(sub.name, func(b *testing.B) {
			msgs := [][]byte{msg}
			for b.Loop() {
				if _, err := sub.s.HMACWrapped(ctx, LabelSeedWrap, wrapped, crypto.SHA1, msgs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
