package authsvc

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"net/url"
	"testing"

	"github.com/egate-bank/egate/authsvc/orders"
	"github.com/egate-bank/egate/devices/pkcs11token"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// BenchmarkOrders: signing orders created, signed and collected per second
// through HTTP (egate), against a bare P-256 ECDSA verification (raw). One
// egate iteration is the page's POST /login/factor/begin (the U-shield's
// challenge and its order, the page rendered), the device's open, the
// proof made with the customer's key (in software) and posted to
// /v1/orders/sign — verified against the bank CA (chain, binding,
// revocation, signature, the challenge consumed, the lockout counter, the
// audit record) — and the page's collect poll, over a real socket with
// SQLite. The ratio raw/egate is the share of the order's cost that is the
// signature check itself.
func BenchmarkOrders(b *testing.B) {
	fe := newFactorEnv(b, storetest.SQLite(b))
	us := fe.enrollUShield(b, 1)
	ctx := context.Background()
	data := orders.SignedText("egate login for "+fe.pid, make([]byte, 16))
	proof, _ := pkcs11token.SignProof(us.key, us.cert, data, false)
	p, _ := pkcs11token.DecodeProof(proof)
	pub := us.key.Public().(*ecdsa.PublicKey)
	b.Run("raw", func(b *testing.B) {
		h := sha256.Sum256(data)
		for b.Loop() {
			if !ecdsa.VerifyASN1(pub, h[:], p.Sig) {
				b.Fatal("verify failed")
			}
		}
	})
	b.Run("egate", func(b *testing.B) {
		br := fe.browser()
		a := newAuthz("ebank", ebankRedirect)
		a.extra.Set("acr_values", "urn:egate:loa:4")
		r := br.passwordLogin(a, "alice", testPassword)
		id := formID(b, r.body)
		dev := fe.device()
		for b.Loop() {
			r := br.post("/login/factor/begin", url.Values{"id": {id}, "factor": {"ushield"}})
			po := orderOf(b, r.body)
			op, err := dev.Open(ctx, orders.OpenRequest{Ref: po.link.Ref, AutostartToken: po.link.Token})
			if err != nil {
				b.Fatal(err)
			}
			d, _ := op.SignedData()
			pr, err := pkcs11token.SignProof(us.key, us.cert, d, false)
			if err != nil {
				b.Fatal(err)
			}
			if err := dev.Sign(ctx, op.Ref, op.DeviceToken, pr); err != nil {
				b.Fatal(err)
			}
			if status, st, raw := br.collect(id, po.link.Ref); status != 200 || st.State != "complete" {
				b.Fatalf("collect: %d %s", status, raw)
			}
		}
	})
}
