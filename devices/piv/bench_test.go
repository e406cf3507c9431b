package piv_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509/pkix"
	"testing"
	"time"

	gopiv "github.com/go-piv/piv-go/v2/piv"

	"github.com/egate-bank/egate/devices/piv"
	"github.com/egate-bank/egate/simulators/pivcard/pivtest"
)

// BenchmarkPIVSign compares P-256 signatures through devices/piv → piv-go →
// pcscd → vpcd → simulator (egate) with the transport's own limit: one-APDU
// round trips (GET SERIAL) on the same reader through piv-go's PC/SC
// transaction (raw).
func BenchmarkPIVSign(b *testing.B) {
	r := newRig(b)
	ctx := context.Background()
	b.Run("raw", func(b *testing.B) {
		var yk *gopiv.YubiKey
		if err := pivtest.Until(10*time.Second, func() (err error) {
			yk, err = gopiv.Open(r.slot.Reader)
			return err
		}); err != nil {
			b.Fatal(err)
		}
		defer yk.Close()
		b.ResetTimer()
		for b.Loop() {
			if _, err := yk.Serial(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("egate", func(b *testing.B) {
		card := r.open(b)
		if _, _, err := card.Enroll(ctx, gopiv.SlotAuthentication, piv.EnrollOptions{Subject: pkix.Name{CommonName: "bench"}, PINPolicy: gopiv.PINPolicyOnce}, newTestCA(b)); err != nil {
			b.Fatal(err)
		}
		signer, err := card.Signer(ctx, gopiv.SlotAuthentication, func(context.Context, int) (string, error) { return "123456", nil })
		if err != nil {
			b.Fatal(err)
		}
		digest := sha256.Sum256([]byte("bench"))
		b.ResetTimer()
		for b.Loop() {
			if _, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		card.Close()
	})
}
