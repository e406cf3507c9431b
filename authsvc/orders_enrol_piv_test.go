package authsvc

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	gopiv "github.com/go-piv/piv-go/v2/piv"

	"github.com/egate-bank/egate/authsvc/ca"
	"github.com/egate-bank/egate/authsvc/orders"
	"github.com/egate-bank/egate/clients/helper"
	"github.com/egate-bank/egate/devices/piv"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/simulators/pivcard/pivtest"
)

// TestEnrolPIV: the customer enrols a PIV card by themselves through the
// desktop helper (clients/helper, piv-go over pcscd, the PIV simulator):
// the key is made on the card, the card's attestation and the new key's
// signature over the order's data go to the bank, which checks the
// attestation against the vendors it accepts before the bank CA certifies
// the key; the helper writes the certificate to the card. The card then
// logs in at level 4, is on the customer's tools, and once reported lost
// its signature is refused. A card of a vendor the bank does not accept,
// an attestation of a key that did not sign this order, and a bank that
// accepts no vendor enrol nothing.
func TestEnrolPIV(t *testing.T) {
	in, accepted := insertPIVCard(t)
	slot := in.Slot
	fe := newFactorEnv(t, storetest.SQLite(t))
	ctx := context.Background()
	other := x509.NewCertPool()
	other.AddCert(pivtest.Vendor(t).Cert)
	b := fe.signedIn(t, "2")
	h := &helper.Helper{Client: fe.device(), Tools: []helper.Tool{&helper.PIV{Driver: piv.New(piv.Config{}), Reader: slot.Reader}}}
	tokens := func() int {
		ts, err := fe.set.PIV.Tokens(ctx, fe.pid)
		if err != nil {
			t.Fatal(err)
		}
		return len(ts)
	}
	enrol := func(t *testing.T, query string) (pageOrder, *helper.Result, *helperUI, error) {
		t.Helper()
		r := b.get("/account/enrol?tool=piv" + query)
		po := orderOf(t, r.body)
		ui := &helperUI{pin: "123456"}
		h.UI = ui
		res, err := h.Run(ctx, orders.OpenRequest{Ref: po.link.Ref, AutostartToken: po.link.Token})
		return po, res, ui, err
	}

	t.Run("a bank that accepts no vendor offers no PIV enrolment", func(t *testing.T) {
		if r := b.get("/account/enrol?tool=piv"); r.status != 400 || errorCode(r.body) != "unknown_tool" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	fe.set.PIV.VendorRoots = other
	t.Run("a card of a vendor the bank does not accept", func(t *testing.T) {
		po, res, ui, err := enrol(t, "")
		if err == nil || res.State != orders.Failed || !strings.Contains(err.Error(), "bad_attestation") || !strings.Contains(ui.out.String(), "refused") {
			t.Fatalf("helper: %+v %v\n%s", res, err, ui.out.String())
		}
		r := b.post("/account/enrol/finish", url.Values{"ref": {po.link.Ref}})
		if r.status != 401 || errorCode(r.body) != "bad_attestation" || !strings.Contains(r.body, "attestation") || tokens() != 0 {
			t.Fatalf("finish: %d %s (tokens %d)", r.status, r.body, tokens())
		}
	})
	fe.set.PIV.VendorRoots = accepted
	t.Run("an attestation of a key that did not sign this order", func(t *testing.T) {
		po := orderOf(t, b.get("/account/enrol?tool=piv").body)
		op := fe.openOrder(t, po)
		card, err := piv.New(piv.Config{}).Open(ctx, slot.Reader)
		if err != nil {
			t.Fatal(err)
		}
		_, dev, att, err := card.GenerateAttested(ctx, gopiv.SlotAuthentication, piv.EnrollOptions{PINPolicy: gopiv.PINPolicyAlways})
		card.Close()
		if err != nil {
			t.Fatal(err)
		}
		d, _ := op.SignedData()
		h := sha256.Sum256(d)
		sig, _ := p256(t).Sign(rand.Reader, h[:], crypto.SHA256)
		body, _ := json.Marshal(orders.EnrolAnswer{DeviceCert: dev.Raw, SlotCert: att.Raw, Sig: sig})
		if _, err := fe.device().SignData(ctx, op.Ref, op.DeviceToken, body); err == nil || !strings.Contains(err.Error(), "wrong_answer") || tokens() != 0 {
			t.Fatalf("another key's signature: %v (tokens %d)", err, tokens())
		}
	})
	var certSerial string
	t.Run("enrolled through the helper", func(t *testing.T) {
		po, res, ui, err := enrol(t, "&client=ebank&return="+url.QueryEscape("/enrol?done=piv"))
		if err != nil || res.State != orders.Complete || !strings.Contains(ui.out.String(), "Enrolled") || ui.shown != po.text {
			t.Fatalf("helper: %+v %v\n%s", res, err, ui.out.String())
		}
		if status, st, raw := collectEnrol(b, po.link.Ref); status != 200 || st.State != string(orders.Complete) {
			t.Fatalf("collect: %s", raw)
		}
		r := b.post("/account/enrol/finish?client=ebank&return="+url.QueryEscape("/enrol?done=piv"), url.Values{"ref": {po.link.Ref}})
		if r.status != 200 || !strings.Contains(r.body, `id="enrolled"`) || !strings.Contains(r.body, `<a id="back" href="https://ebank.example/enrol?done=piv">`) {
			t.Fatalf("finish: %d %s", r.status, r.body)
		}
		ts, _ := fe.set.PIV.Tokens(ctx, fe.pid)
		if len(ts) != 1 || !ts[0].Active() || ts[0].Slot != "9a" || ts[0].PINPolicy != "always" {
			t.Fatalf("the customer's PIV tokens: %+v", ts)
		}
		certSerial = ts[0].CertSerial
		card, err := piv.New(piv.Config{}).Open(ctx, slot.Reader)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := card.Certificate(ctx, gopiv.SlotAuthentication)
		card.Close()
		if err != nil || ca.SerialHex(cert.SerialNumber) != certSerial || fe.set.CA.Verify(ctx, cert) != nil {
			t.Fatalf("the certificate on the card: %v", err)
		}
	})
	login := func(t *testing.T) (*helper.Result, error) {
		t.Helper()
		lb := fe.browser()
		a := newAuthz("ebank", ebankRedirect)
		a.extra.Set("acr_values", "urn:egate:loa:4")
		r := lb.passwordLogin(a, "alice", testPassword)
		if choices(r.body) != nil {
			r = lb.post("/login/factor/begin", url.Values{"id": {formID(t, r.body)}, "factor": {"piv"}})
		}
		po := orderOf(t, r.body)
		h.UI = &helperUI{pin: "123456"}
		res, err := h.Run(ctx, orders.OpenRequest{Ref: po.link.Ref, AutostartToken: po.link.Token})
		if err == nil {
			tk := fe.exchange(a, a.codeFrom(t, lb.finishOrder(formID(t, r.body), po.link.Ref)))
			if c, err := fe.claims(tk.id); err != nil || c["acr"] != "urn:egate:loa:4" {
				t.Fatalf("claims %v %v", c, err)
			}
		}
		return res, err
	}
	t.Run("the enrolled card logs in at level 4", func(t *testing.T) {
		if res, err := login(t); err != nil || res.State != orders.Complete {
			t.Fatalf("login: %+v %v", res, err)
		}
	})
	t.Run("reported lost, its signature is refused", func(t *testing.T) {
		if err := fe.set.PIV.ReportLost(ctx, fe.pid, certSerial); err != nil {
			t.Fatal(err)
		}
		lb := fe.browser()
		a := newAuthz("ebank", ebankRedirect)
		a.extra.Set("acr_values", "urn:egate:loa:4")
		// alice's only level-4 tool was the card: the sign-in ends there.
		if r := lb.passwordLogin(a, "alice", testPassword); strings.Contains(r.body, `data-factor="piv"`) || errorCode(r.body) != "no_factor" {
			t.Fatalf("a lost card is still offered: %s", r.body)
		}
	})
}
