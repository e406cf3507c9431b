package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"strings"

	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/i18n"
	"github.com/egate-bank/egate/internal/money"
)

// The proof step of a tool the customer holds — a U-shield (1st or 2nd
// generation) or a PIV token through the desktop security helper, the
// bank's phone app — is a signing order (authsvc/orders through the
// transaction API): the confirmation page shows the text the device will
// show and sign, "Use your U-shield on this computer" (the autostart link
// that starts egate helper) or "Scan with the app" (the animated QR, a new
// image every second), follows the order by polling /transfer/order, and
// posts /transfer/confirm by itself when the order is final (a Continue
// button does it without JavaScript). No signature is ever typed or
// pasted. Only this browser follows the order: the transaction API knows
// it by the SHA-256 of a cookie only this browser has (ebank_order).

// Orderer is what the order step needs of the transaction API;
// *txclient.Client is one.
type Orderer interface {
	Order(ctx context.Context, hash string, r txclient.OrderRequest) (txclient.Order, error)
	CollectOrder(ctx context.Context, hash string, r txclient.OrderCollect) (txclient.OrderStatus, error)
}

var _ Orderer = (*txclient.Client)(nil)

// signsByOrder names the tools that answer through a signing order.
func signsByOrder(factor string) bool {
	switch factor {
	case "ushield", "ushield2", "piv", "phone":
		return true
	}
	return false
}

const orderCookie = "ebank_order"

// orderBrowser is the browser binding of this browser's orders: the
// SHA-256 (hex) of its ebank_order cookie, made when missing.
func orderBrowser(w http.ResponseWriter, r *http.Request) string {
	secret := ""
	if c, err := r.Cookie(orderCookie); err == nil && len(c.Value) >= 32 {
		secret = c.Value
	} else {
		var b [32]byte
		rand.Read(b[:])
		secret = base64.RawURLEncoding.EncodeToString(b[:])
		http.SetCookie(w, &http.Cookie{Name: orderCookie, Value: secret, Path: "/transfer", HttpOnly: true, Secure: r.TLS != nil,
			SameSite: http.SameSiteStrictMode})
	}
	return browserHash(secret)
}

func browserHash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// orderBrowserOf is the binding of the request's cookie; "" without one.
func orderBrowserOf(r *http.Request) string {
	c, err := r.Cookie(orderCookie)
	if err != nil || c.Value == "" {
		return ""
	}
	return browserHash(c.Value)
}

// orderData is what the order page shows.
type orderData struct {
	transferData
	Intent    string
	Order     txclient.Order
	Autostart template.URL // egate://order?… (html/template refuses the scheme as a string)
	QR        template.URL // data:image/png;base64,…
	Status    string
	Nonce     string
	PollURL   string
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
	ctx := r.Context()
	browser := orderBrowser(w, r)
	o, err := ord.Order(ctx, d.Intent, txclient.OrderRequest{Factor: m.f.Factor, Browser: browser, ClientIP: clientIP(r)})
	if err != nil {
		p.authErr(w, r, v, m.f, err)
		return
	}
	od := orderData{transferData: transferData{F: m.f, Decision: d, Summary: v.P.T("xfer.summary", money.Yuan(m.amount), m.debit.Number, m.payee)},
		Intent: d.Intent, Order: o, Nonce: newKey(), Status: v.P.T("order.pending." + map[bool]string{true: "qr", false: "link"}[o.ByQR]),
		PollURL: "/transfer/order?intent=" + d.Intent + "&ref=" + o.Ref}
	if o.Autostart != "" && strings.HasPrefix(o.Autostart, "egate://order?") {
		od.Autostart = template.URL(o.Autostart)
	}
	if o.ByQR {
		if st, err := ord.CollectOrder(ctx, d.Intent, txclient.OrderCollect{Ref: o.Ref, Browser: browser}); err == nil && strings.HasPrefix(st.QR, "data:image/png;base64,") {
			od.QR = template.URL(st.QR)
		}
	}
	od.F.Order = o.Ref
	v.Title, v.Data, v.Error = v.P.T("xfer.title"), od, msg
	// The one script of ebank's pages runs under this response's nonce.
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'nonce-"+od.Nonce+"'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	p.render(w, http.StatusOK, "order", v)
}

// orderPoll is the page's poll: GET /transfer/order?intent=&ref=, JSON
// {"state","final","message","qr"} in the customer's language. Only the
// browser holding the order's cookie gets it (the API answers any other
// unknown_order: 404 here).
type orderPoll struct {
	State   string `json:"state"`
	Final   bool   `json:"final"`
	Message string `json:"message"`
	QR      string `json:"qr,omitempty"`
}

func (p *Pages) transferOrderPoll(w http.ResponseWriter, r *http.Request, v *view) {
	ord, ok := p.Auth.(Orderer)
	q := r.URL.Query()
	browser := orderBrowserOf(r)
	w.Header().Set("Content-Type", "application/json")
	if !ok || browser == "" || len(q.Get("intent")) != 64 || q.Get("ref") == "" {
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(orderPoll{State: "unknown", Final: true, Message: v.P.T("order.unknown")})
		return
	}
	st, err := ord.CollectOrder(r.Context(), q.Get("intent"), txclient.OrderCollect{Ref: q.Get("ref"), Browser: browser})
	var ae *txclient.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(orderPoll{State: "unknown", Final: true, Message: v.P.T("order.unknown")})
		return
	}
	if err != nil {
		// A fault of the bank's: the page keeps polling.
		if p.OnError != nil {
			p.OnError(r, err)
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(orderPoll{State: "unavailable", Message: v.P.T("err.generic")})
		return
	}
	out := orderPoll{State: st.State, Final: st.State != "pending" && st.State != "user_sign", Message: orderMessage(v, st)}
	if strings.HasPrefix(st.QR, "data:image/png;base64,") {
		out.QR = st.QR
	}
	json.NewEncoder(w).Encode(out)
}

// orderMessage says where an order is in the customer's language: the
// state's sentence, and for a refusal the reason (the service's own
// sentence on an English page, the reason's key on a Chinese one).
func orderMessage(v *view, st txclient.OrderStatus) string {
	msg := v.P.T("order." + st.State)
	if st.State == "failed" || st.State == "cancelled" {
		switch {
		case st.Code != "" && i18n.Has("order.code."+st.Code):
			msg += " " + v.P.T("order.code."+st.Code)
		case v.P.Lang == "en" && st.Message != "":
			msg += " " + st.Message
		}
	}
	return msg
}

// confirmByOrder proves the intent with the complete order named by the
// form, for this browser. An order that did not go through (refused,
// cancelled on the device, expired, or not yet signed) starts a new one
// with the reason; other refusals are the form's.
func (p *Pages) confirmByOrder(w http.ResponseWriter, r *http.Request, v *view, m movement, d txclient.Decision) (txclient.Grant, bool) {
	ctx := r.Context()
	browser := orderBrowserOf(r)
	g, err := p.Auth.Proof(ctx, d.Intent, txclient.ProofRequest{Order: m.f.Order, Browser: browser, ClientIP: clientIP(r), Intent: &m.in})
	if err == nil {
		return g, true
	}
	code := txclient.Code(err)
	switch code {
	case "order_pending", "order_failed", "order_cancelled", "order_expired", "unknown_order":
		msg := v.P.T("order.again")
		if ord, ok := p.Auth.(Orderer); ok && code != "unknown_order" {
			if st, err := ord.CollectOrder(ctx, d.Intent, txclient.OrderCollect{Ref: m.f.Order, Browser: browser}); err == nil {
				msg = orderMessage(v, st) + " " + msg
			}
		}
		m.f.Order = ""
		p.transferOrder(w, r, v, m, d, msg)
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
