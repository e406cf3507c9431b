package authsvc

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	gopiv "github.com/go-piv/piv-go/v2/piv"

	"github.com/egate-bank/egate/authsvc/orders"
	"github.com/egate-bank/egate/authsvc/pivauth"
	"github.com/egate-bank/egate/clients/helper"
	"github.com/egate-bank/egate/devices/piv"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/simulators/pivcard/pivtest"
)

// helperUI answers the helper as a customer at the terminal would; onPIN
// runs when the PIN is asked (the test pulls the card there).
type helperUI struct {
	pin   string
	onPIN func()
	out   bytes.Buffer
	shown string
}

func (u *helperUI) Show(o *orders.Opened, data []byte, tool string) { u.shown = string(data) }
func (u *helperUI) Confirm(context.Context) (bool, error)           { return true, nil }
func (u *helperUI) PIN(_ context.Context, tool string, retries int) ([]byte, error) {
	if u.onPIN != nil {
		u.onPIN()
	}
	return []byte(u.pin), nil
}
func (u *helperUI) Say(msg string) { fmt.Fprintln(&u.out, msg) }

// TestLoginPIVHelper logs in at level 4 with the PIV simulator on pcscd
// through the desktop helper (clients/helper, piv-go over PC/SC): the card
// enrolled with its attestation by the bank CA in SoftHSM2, the page's
// order opened by the autostart link, the PIN asked, the signature made on
// the card. A wrong PIN says the tries left and cancels the order with its
// reason; a card pulled during the signature cancels it as token_removed,
// and the page says so as it offers a new order.
func TestLoginPIVHelper(t *testing.T) {
	in, pool := insertPIVCard(t)
	slot := in.Slot
	fe := newFactorEnv(t, storetest.SQLite(t))
	ctx := context.Background()
	card, err := piv.New(piv.Config{VendorRoots: pool}).Open(ctx, slot.Reader)
	if err != nil {
		t.Fatalf("opening the card: %v", err)
	}
	// PIN policy "always": every signature asks the PIN (a PIN-once key
	// stays verified while the card is powered, whatever the helper does).
	if _, err := fe.set.PIV.Enroll(ctx, card, fe.pid, pivauth.EnrollOptions{PINPolicy: gopiv.PINPolicyAlways}); err != nil {
		t.Fatalf("enrolling the card: %v", err)
	}
	card.Close()

	start := func(t *testing.T) (*browser, *authz, string, pageOrder) {
		b := fe.browser()
		a := newAuthz("ebank", ebankRedirect)
		a.extra.Set("acr_values", "urn:egate:loa:4")
		r := b.passwordLogin(a, "alice", testPassword)
		id := formID(t, r.body)
		if choices(r.body) != nil {
			r = b.post("/login/factor/begin", url.Values{"id": {id}, "factor": {"piv"}})
		}
		return b, a, id, orderOf(t, r.body)
	}
	run := func(po pageOrder, ui *helperUI) (*helper.Result, error) {
		h := &helper.Helper{Client: fe.device(), Tools: []helper.Tool{&helper.PIV{Driver: piv.New(piv.Config{}), Reader: slot.Reader}}, UI: ui}
		return h.Run(ctx, orders.OpenRequest{Ref: po.link.Ref, AutostartToken: po.link.Token})
	}

	t.Run("signed on the card through the helper", func(t *testing.T) {
		b, a, id, po := start(t)
		ui := &helperUI{pin: "123456"}
		res, err := run(po, ui)
		if err != nil || res.State != orders.Complete || ui.shown != po.text {
			t.Fatalf("helper: %+v %v; showed %q for the page's %q\n%s", res, err, ui.shown, po.text, ui.out.String())
		}
		tk := fe.exchange(a, a.codeFrom(t, b.finishOrder(id, po.link.Ref)))
		if c, err := fe.claims(tk.id); err != nil || c["acr"] != "urn:egate:loa:4" {
			t.Fatalf("claims %v %v", c, err)
		}
	})
	t.Run("a wrong PIN shows the tries left and cancels the order", func(t *testing.T) {
		b, _, id, po := start(t)
		ui := &helperUI{pin: "000000"}
		res, err := run(po, ui)
		if err == nil || res.State != orders.Cancelled || !strings.Contains(ui.out.String(), "tries left") {
			t.Fatalf("helper: %+v %v\n%s", res, err, ui.out.String())
		}
		if _, st, raw := b.collect(id, po.link.Ref); st.State != "cancelled" || !strings.Contains(st.Message, "PIN was wrong") {
			t.Fatalf("collect: %s", raw)
		}
	})
	t.Run("the card pulled during the signature", func(t *testing.T) {
		b, _, id, po := start(t)
		ui := &helperUI{pin: "123456", onPIN: in.Remove}
		res, err := run(po, ui)
		if err == nil || res.State != orders.Cancelled || !strings.Contains(ui.out.String(), "removed") {
			t.Fatalf("helper: %+v %v\n%s", res, err, ui.out.String())
		}
		r := b.finishOrder(id, po.link.Ref)
		if r.status != 409 || errorCode(r.body) != "order_cancelled" || !strings.Contains(r.body, "The token was removed during the signature.") {
			t.Fatalf("the page after the card was pulled: %d %s", r.status, r.body)
		}
		if orderOf(t, r.body).link.Ref == po.link.Ref {
			t.Fatal("no new order after the card was pulled")
		}
	})
}

// insertPIVCard puts a fresh simulated PIV card into a free vpcd reader of
// pcscd, waits until piv-go opens it, and returns it with its vendor's
// attestation root.
func insertPIVCard(t testing.TB) (*pivtest.Inserted, *x509.CertPool) {
	t.Helper()
	pivtest.NeedPCSC(t)
	vendor := pivtest.Vendor(t)
	in := pivtest.Insert(t, pivtest.TakeReader(t), pivtest.NewCard(t, vendor))
	if err := pivtest.Until(10*time.Second, func() error {
		c, err := piv.New(piv.Config{}).Open(context.Background(), in.Reader)
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		t.Fatalf("the card in %s never opened: %v", in.Reader, err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(vendor.Cert)
	return in, pool
}
