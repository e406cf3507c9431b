package ushield

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"testing"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/devices/pkcs11token"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// BenchmarkUShieldVerify compares a bare P-256 ECDSA verification (raw) with
// egate's verification of a U-shield proof (egate): proof decoding,
// certificate parsing, chain check against the bank CA (cached after the
// first verification of a certificate), validity, the binding and revocation
// lookup in SQLite, and the signature. Challenge lookup and consumption are
// excluded (they are one indexed SELECT and one UPDATE, measured by the
// store).
func BenchmarkUShieldVerify(b *testing.B) {
	ctx := context.Background()
	r := newRig(b, storetest.SQLite(b))
	tok := r.enrollSoft(b, "alice", 1)
	data := SignedText("Transfer 1,234.56 yuan to ****6789", make([]byte, 16))
	proof := tok.sign(b, data, false)
	p, _ := pkcs11token.DecodeProof(proof)
	pub := tok.key.Public().(*ecdsa.PublicKey)
	b.Run("raw", func(b *testing.B) {
		h := sha256.Sum256(data)
		for b.Loop() {
			if !ecdsa.VerifyASN1(pub, h[:], p.Sig) {
				b.Fatal("verify failed")
			}
		}
	})
	b.Run("egate", func(b *testing.B) {
		for b.Loop() {
			p, err := pkcs11token.DecodeProof(proof)
			if err != nil {
				b.Fatal(err)
			}
			if err := r.svc.check(ctx, 1, "alice", p, data); err != nil {
				b.Fatal(err)
			}
		}
	})
	_ = authn.PurposeLogin
}
