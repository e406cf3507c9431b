package authsvc

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"html"
	"math/big"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/ca"
	"github.com/egate-bank/egate/authsvc/orders"
	"github.com/egate-bank/egate/devices/pkcs11token"
	"github.com/egate-bank/egate/internal/store/storetest"
)

func caSerial(tok softToken) string { return ca.SerialHex(tok.cert.SerialNumber) }

// foreignToken is a key with a certificate of another CA (self-signed).
func foreignToken(t testing.TB) softToken {
	t.Helper()
	k := p256(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(77), Subject: pkix.Name{CommonName: "not the bank"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return softToken{k, c}
}

var autostartRE = regexp.MustCompile(`id="autostart" href="([^"]+)"`)

// pageOrder is the signing order a factor page follows, reached as the
// desktop helper reaches it: by the autostart link.
type pageOrder struct {
	link orders.Link
	text string // the text the page shows
}

func orderOf(t testing.TB, body string) pageOrder {
	t.Helper()
	m := autostartRE.FindStringSubmatch(body)
	c := challengeRE.FindStringSubmatch(body)
	if m == nil || c == nil {
		t.Fatalf("no autostart link or text on the page: %s", body)
	}
	l, err := orders.ParseLink(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatalf("autostart link %q: %v", m[1], err)
	}
	return pageOrder{link: l, text: html.UnescapeString(c[1])}
}

// device opens the page's order through the device API and returns the
// order as opened.
func (e *env) device() *orders.Client { return &orders.Client{Base: e.ts.URL} }

func (e *env) openOrder(t testing.TB, po pageOrder) *orders.Opened {
	t.Helper()
	op, err := e.device().Open(context.Background(), orders.OpenRequest{Ref: po.link.Ref, AutostartToken: po.link.Token})
	if err != nil {
		t.Fatalf("open the order: %v", err)
	}
	d, err := op.SignedData()
	if err != nil || string(d) != po.text {
		t.Fatalf("the device got %q (%v), the page shows %q", d, err, po.text)
	}
	return op
}

// signOrder signs the page's order with tok as a device would (over the
// data the device got), and returns the device API's error.
func (e *env) signOrder(t testing.TB, op *orders.Opened, tok softToken, data []byte, confirmed bool) error {
	t.Helper()
	p, err := pkcs11token.SignProof(tok.key, tok.cert, data, confirmed)
	if err != nil {
		t.Fatal(err)
	}
	return e.device().Sign(context.Background(), op.Ref, op.DeviceToken, p)
}

// collect polls the order once as the page does.
func (b *browser) collect(id, ref string) (int, orderStatus, string) {
	r := b.get("/login/order/collect?" + url.Values{"id": {id}, "ref": {ref}}.Encode())
	var st orderStatus
	json.Unmarshal([]byte(r.body), &st)
	return r.status, st, r.body
}

// finishOrder posts what the page posts when its order is final.
func (b *browser) finishOrder(id, ref string) resp {
	return b.follow(b.post("/login/order/finish", url.Values{"id": {id}, "ref": {ref}}))
}

// signPage answers the factor page in body with tok through its order and
// the page's own collect and finish; it returns where the finish went.
func (b *browser) signPage(t testing.TB, id, body string, tok softToken, confirmed bool) resp {
	t.Helper()
	po := orderOf(t, body)
	op := b.e.openOrder(t, po)
	d, _ := op.SignedData()
	if err := b.e.signOrder(t, op, tok, d, confirmed); err != nil {
		t.Fatalf("sign: %v", err)
	}
	if status, st, raw := b.collect(id, po.link.Ref); status != 200 || st.State != "complete" {
		t.Fatalf("collect after signing: %d %s", status, raw)
	}
	return b.finishOrder(id, po.link.Ref)
}

// TestLoginOrderBadInput: what the U-shield's order refuses, on the page
// and at the device, with a SoftHSM-certified key in software (the token
// path is in cmd/egate's helper test).
func TestLoginOrderBadInput(t *testing.T) {
	db := storetest.SQLite(t)
	fe := newFactorEnv(t, db)
	us := fe.enrollUShield(t, 1)
	us2 := fe.enrollUShield(t, 2)
	ctx := context.Background()
	start := func(t *testing.T, level int, pick string) (*browser, *authz, string, resp) {
		b := fe.browser()
		a := newAuthz("ebank", ebankRedirect)
		a.extra.Set("acr_values", "urn:egate:loa:"+string(rune('0'+level)))
		r := b.passwordLogin(a, "alice", testPassword)
		id := formID(t, r.body)
		if choices(r.body) != nil && pick != "" {
			r = b.post("/login/factor/begin", url.Values{"id": {id}, "factor": {pick}})
		}
		return b, a, id, r
	}

	t.Run("no text box: a proof posted to the form is refused", func(t *testing.T) {
		b, _, id, r := start(t, 4, "ushield")
		if strings.Contains(r.body, "<textarea") || !strings.Contains(r.body, `id="autostart" href="egate://order?`) {
			t.Fatalf("the page: %s", r.body)
		}
		po := orderOf(t, r.body)
		r = b.post("/login/factor", url.Values{"id": {id}, "response": {us.proof(t, []byte(po.text), false)}})
		if r.status != 400 || errorCode(r.body) != "use_order" {
			t.Fatalf("a proof in the form: %d %s", r.status, r.body)
		}
	})
	t.Run("a signature over other text fails the order; the page starts a new one", func(t *testing.T) {
		b, a, id, r := start(t, 4, "ushield")
		po := orderOf(t, r.body)
		op := fe.openOrder(t, po)
		if err := fe.signOrder(t, op, us, []byte(po.text+" "), false); err == nil || !strings.Contains(err.Error(), "wrong_answer") {
			t.Fatalf("other text: %v", err)
		}
		if _, st, raw := b.collect(id, po.link.Ref); st.State != "failed" || st.Code != "wrong_answer" {
			t.Fatalf("collect: %s", raw)
		}
		r = b.finishOrder(id, po.link.Ref)
		if r.status != 401 || errorCode(r.body) != "wrong_answer" {
			t.Fatalf("finish of a failed order: %d %s", r.status, r.body)
		}
		po2 := orderOf(t, r.body)
		if po2.link.Ref == po.link.Ref {
			t.Fatal("no new order after a refused signature")
		}
		a.codeFrom(t, b.signPage(t, id, r.body, us, false))
	})
	t.Run("an order collected by another browser gets nothing", func(t *testing.T) {
		b, a, id, r := start(t, 4, "ushield")
		po := orderOf(t, r.body)
		op := fe.openOrder(t, po)
		d, _ := op.SignedData()
		if err := fe.signOrder(t, op, us, d, false); err != nil {
			t.Fatal(err)
		}
		thief := fe.browser()
		status, _, raw := thief.collect(id, po.link.Ref)
		if status != 404 || strings.Contains(raw, "complete") || !strings.Contains(raw, "unknown_order") {
			t.Fatalf("another browser's collect: %d %s", status, raw)
		}
		r2 := thief.finishOrder(id, po.link.Ref)
		if r2.status != 403 || errorCode(r2.body) != "login_foreign" {
			t.Fatalf("another browser's finish: %d %s", r2.status, r2.body)
		}
		a.codeFrom(t, b.finishOrder(id, po.link.Ref))
	})
	t.Run("a second completion of one order is refused", func(t *testing.T) {
		b, a, id, r := start(t, 4, "ushield")
		po := orderOf(t, r.body)
		op := fe.openOrder(t, po)
		d, _ := op.SignedData()
		if err := fe.signOrder(t, op, us, d, false); err != nil {
			t.Fatal(err)
		}
		if err := fe.signOrder(t, op, us, d, false); err == nil || !strings.Contains(err.Error(), "order_done") {
			t.Fatalf("second completion: %v", err)
		}
		a.codeFrom(t, b.finishOrder(id, po.link.Ref))
		// The login is done: finishing again gives no second code.
		if r := b.finishOrder(id, po.link.Ref); r.status < 400 || strings.Contains(r.loc, "code=") {
			t.Fatalf("second finish: %d %s %s", r.status, r.loc, r.body)
		}
	})
	t.Run("cancelled on the page", func(t *testing.T) {
		b, _, id, r := start(t, 4, "ushield")
		po := orderOf(t, r.body)
		r = b.post("/login/order/cancel", url.Values{"id": {id}, "ref": {po.link.Ref}})
		if r.status != 200 || errorCode(r.body) != "order_cancelled" {
			t.Fatalf("cancel: %d %s", r.status, r.body)
		}
		if _, err := fe.device().Open(ctx, orders.OpenRequest{Ref: po.link.Ref, AutostartToken: po.link.Token}); err == nil || !strings.Contains(err.Error(), "order_cancelled") {
			t.Fatalf("open after cancel: %v", err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		b, _, id, r := start(t, 4, "ushield")
		po := orderOf(t, r.body)
		op := fe.openOrder(t, po)
		fe.clk.Add(3 * time.Minute)
		d, _ := op.SignedData()
		if err := fe.signOrder(t, op, us, d, false); err == nil || !strings.Contains(err.Error(), "order_expired") {
			t.Fatalf("sign after expiry: %v", err)
		}
		if _, st, raw := b.collect(id, po.link.Ref); st.State != "expired" {
			t.Fatalf("collect: %s", raw)
		}
		r = b.finishOrder(id, po.link.Ref)
		if r.status != 409 || errorCode(r.body) != "order_expired" || orderOf(t, r.body).link.Ref == po.link.Ref {
			t.Fatalf("finish of an expired order: %d %s", r.status, r.body)
		}
	})
	t.Run("a 1st-generation U-shield cannot answer a level-5 order", func(t *testing.T) {
		_, _, _, r := start(t, 5, "")
		po := orderOf(t, r.body)
		op := fe.openOrder(t, po)
		d, _ := op.SignedData()
		if err := fe.signOrder(t, op, us, d, true); err == nil || !strings.Contains(err.Error(), "wrong_answer") {
			t.Fatalf("1st-generation token on a 2nd-generation order: %v", err)
		}
	})
	t.Run("a certificate of another CA", func(t *testing.T) {
		_, _, _, r := start(t, 4, "ushield")
		po := orderOf(t, r.body)
		op := fe.openOrder(t, po)
		d, _ := op.SignedData()
		if err := fe.signOrder(t, op, foreignToken(t), d, false); err == nil || !strings.Contains(err.Error(), "wrong_answer") {
			t.Fatalf("foreign certificate: %v", err)
		}
	})
	t.Run("a reported-lost token's signature", func(t *testing.T) {
		_, _, _, r := start(t, 5, "")
		po := orderOf(t, r.body)
		if err := fe.set.UShield.ReportLost(ctx, fe.pid, caSerial(us2)); err != nil {
			t.Fatal(err)
		}
		op := fe.openOrder(t, po)
		d, _ := op.SignedData()
		if err := fe.signOrder(t, op, us2, d, true); err == nil || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("revoked token: %v", err)
		}
	})
}
