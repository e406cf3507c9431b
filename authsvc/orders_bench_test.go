package authsvc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"net/url"
	"testing"

	gopiv "github.com/go-piv/piv-go/v2/piv"

	"github.com/egate-bank/egate/authsvc/orders"
	"github.com/egate-bank/egate/authsvc/pivauth"
	"github.com/egate-bank/egate/clients/helper"
	"github.com/egate-bank/egate/devices/piv"
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
		br, id := fe.atFactorStep(b, "4")
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
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
	})
}

// BenchmarkOrdersPIV: the same order round trip with the signature made on
// the PIV simulator through pcscd (piv-go over PC/SC, the card on a vpcd
// reader), reported apart from BenchmarkOrders because the card's APDU
// round trips, not egate, set its pace. raw is the card alone: one
// signature over SHA-256 of the order's data through pcscd (the card
// opened once, the PIN verified once: PIN policy once). egate is the page's
// begin, the desktop helper's open, the card's signature (the helper opens
// the card, reads its certificate and signs), the post verified against
// the bank CA and the card's attested binding, and the collect poll, over
// HTTP with SQLite. egate/raw is what the order costs beyond the card.
func BenchmarkOrdersPIV(b *testing.B) {
	in, pool := insertPIVCard(b)
	slot := in.Slot
	fe := newFactorEnv(b, storetest.SQLite(b))
	ctx := context.Background()
	card, err := piv.New(piv.Config{VendorRoots: pool}).Open(ctx, slot.Reader)
	if err != nil {
		b.Fatalf("opening the card: %v", err)
	}
	if _, err := fe.set.PIV.Enroll(ctx, card, fe.pid, pivauth.EnrollOptions{PINPolicy: gopiv.PINPolicyOnce}); err != nil {
		b.Fatalf("enrolling the card: %v", err)
	}
	data := orders.SignedText("egate login for "+fe.pid, make([]byte, 16))
	b.Run("raw", func(b *testing.B) {
		signer, err := card.Signer(ctx, gopiv.SlotAuthentication, func(context.Context, int) (string, error) { return "123456", nil })
		if err != nil {
			b.Fatal(err)
		}
		h := sha256.Sum256(data)
		for b.Loop() {
			if _, err := signer.Sign(rand.Reader, h[:], crypto.SHA256); err != nil {
				b.Fatal(err)
			}
		}
	})
	card.Close()
	b.Run("egate", func(b *testing.B) {
		br, id := fe.atFactorStep(b, "4")
		h := &helper.Helper{Client: fe.device(), Tools: []helper.Tool{&helper.PIV{Driver: piv.New(piv.Config{}), Reader: slot.Reader}}, UI: &helperUI{pin: "123456"}}
		for b.Loop() {
			r := br.post("/login/factor/begin", url.Values{"id": {id}, "factor": {"piv"}})
			po := orderOf(b, r.body)
			res, err := h.Run(ctx, orders.OpenRequest{Ref: po.link.Ref, AutostartToken: po.link.Token})
			if err != nil || res.State != orders.Complete {
				b.Fatalf("helper: %+v %v", res, err)
			}
			if status, st, raw := br.collect(id, po.link.Ref); status != 200 || st.State != "complete" {
				b.Fatalf("collect: %d %s", status, raw)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
	})
}

// atFactorStep is a browser at the second-factor step of a login of
// alice's at level, with the login's id.
func (fe *factorEnv) atFactorStep(t testing.TB, level string) (*browser, string) {
	t.Helper()
	br := fe.browser()
	a := newAuthz("ebank", ebankRedirect)
	a.extra.Set("acr_values", "urn:egate:loa:"+level)
	r := br.passwordLogin(a, "alice", testPassword)
	return br, formID(t, r.body)
}
