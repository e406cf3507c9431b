package web

import (
	"net/http"

	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/money"
	"github.com/egate-bank/egate/platform/signorder"
)

// The proof step of a tool the customer holds — a U-shield (1st or 2nd
// generation) or a PIV token through the desktop security helper, the
// bank's phone app — is a signing order the page follows
// (platform/signorder): the text the device will show and sign, the
// autostart link or the animated QR, a poll of /transfer/order every
// second, and /transfer/confirm posted by itself when the order is final
// (a Continue button does it without JavaScript). No signature is ever
// typed or pasted. Only this browser follows the order: the transaction
// API knows it by the SHA-256 of its ebank_order cookie.

// Orderer is what the order step needs of the transaction API;
// *txclient.Client is one.
type Orderer = signorder.Orderer

// signsByOrder names the tools that answer through a signing order.
func signsByOrder(factor string) bool { return signorder.ByOrder(factor) }

// orders binds this browser's orders to it by the ebank_order cookie.
var orders = signorder.Binding{Cookie: "ebank_order", Path: "/transfer"}

// orderData is what the order page shows.
type orderData struct {
	transferData
	O signorder.Page
}

// transferOrder makes a signing order for the checked form's intent with
// the chosen tool and shows the page that follows it; msg (a message key's
// text) says why an earlier order did not go through.
func (p *Pages) transferOrder(w http.ResponseWriter, r *http.Request, v *view, m movement, d txclient.Decision, msg string) {
	ord, ok := p.Auth.(Orderer)
	if !ok {
		p.refuse(w, r, v, m.f, "xfer.no_order")
		return
	}
	pg, err := orders.Begin(r.Context(), ord, w, r, v.P, d.Intent, m.f.Factor, clientIP(r), "/transfer/order")
	if err != nil {
		p.authErr(w, r, v, m.f, err)
		return
	}
	od := orderData{transferData: transferData{F: m.f, Decision: d, Summary: v.P.T("xfer.summary", money.Yuan(m.amount), m.debit.Number, m.shown)}, O: pg}
	od.F.Order = pg.Order.Ref
	v.Title, v.Data, v.Error = v.P.T("xfer.title"), od, msg
	p.render(w, http.StatusOK, "order", v)
}

// transferOrderPoll is the page's poll: GET /transfer/order?intent=&ref=
// (signorder.Binding.Poll).
func (p *Pages) transferOrderPoll(w http.ResponseWriter, r *http.Request, v *view) {
	ord, _ := p.Auth.(Orderer)
	orders.Poll(w, r, ord, v.P, func(err error) {
		if p.OnError != nil {
			p.OnError(r, err)
		}
	})
}

// confirmByOrder proves the intent with the complete order named by the
// form, for this browser. An order that did not go through (refused,
// cancelled on the device, expired, or not yet signed) starts a new one
// with the reason; other refusals are the form's.
func (p *Pages) confirmByOrder(w http.ResponseWriter, r *http.Request, v *view, m movement, d txclient.Decision) (txclient.Grant, bool) {
	ctx := r.Context()
	g, err := p.Auth.Proof(ctx, d.Intent, txclient.ProofRequest{Order: m.f.Order, Browser: orders.BrowserOf(r), ClientIP: clientIP(r), Intent: &m.in})
	if err == nil {
		return g, true
	}
	ord, _ := p.Auth.(Orderer)
	if msg, again := orders.Again(ctx, ord, r, v.P, d.Intent, m.f.Order, err); again {
		m.f.Order = ""
		p.transferOrder(w, r, v, m, d, msg)
		return g, false
	}
	switch txclient.Code(err) {
	case "locked":
		p.refuse(w, r, v, m.f, "xfer.locked")
	default:
		if p.done(w, r, v, m.f) { // a double submit: the first took the order
			return g, false
		}
		p.authErr(w, r, v, m.f, err)
	}
	return g, false
}
