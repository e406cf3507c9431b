// Package signorder is the proof step of a payment page when the customer
// confirms with a tool they hold — a U-shield (1st or 2nd generation) or a
// PIV token through the desktop security helper, or the bank's phone app:
// a signing order (authsvc/orders through the transaction API) that the
// page follows. The page shows the text the device will show and sign,
// "Use your U-shield on this computer" (the autostart link that starts
// egate helper) or "Scan with the app" (the animated QR, a new image every
// second), polls the order every second and posts the confirmation by
// itself when the order is final (a Continue button does it without
// JavaScript). No signature is ever typed or pasted. Only the browser that
// made the order follows it: the transaction API knows it by the SHA-256
// of a cookie only that browser has.
//
// ebank's transfer page (platform/ebank/web) and the mall's checkout
// (platform/mall) use it; each keeps its own form around Widget.
package signorder

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
	"net/url"
	"strings"

	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/i18n"
)

// Orderer is what the order step needs of the transaction API;
// *txclient.Client is one.
type Orderer interface {
	Order(ctx context.Context, hash string, r txclient.OrderRequest) (txclient.Order, error)
	CollectOrder(ctx context.Context, hash string, r txclient.OrderCollect) (txclient.OrderStatus, error)
}

var _ Orderer = (*txclient.Client)(nil)

// ByOrder reports whether factor answers through a signing order.
func ByOrder(factor string) bool {
	switch factor {
	case "ushield", "ushield2", "piv", "phone":
		return true
	}
	return false
}

// Binding is one page's cookie that binds its orders to the browser.
type Binding struct {
	Cookie string // e.g. ebank_order
	Path   string // the cookie's path: the pages that post the proof and poll
}

// Browser is the binding of this browser's orders: the SHA-256 (hex) of
// its cookie, made when missing.
func (b Binding) Browser(w http.ResponseWriter, r *http.Request) string {
	secret := ""
	if c, err := r.Cookie(b.Cookie); err == nil && len(c.Value) >= 32 {
		secret = c.Value
	} else {
		var n [32]byte
		rand.Read(n[:])
		secret = base64.RawURLEncoding.EncodeToString(n[:])
		http.SetCookie(w, &http.Cookie{Name: b.Cookie, Value: secret, Path: b.Path, HttpOnly: true, Secure: r.TLS != nil,
			SameSite: http.SameSiteStrictMode})
	}
	return hash(secret)
}

// BrowserOf is the binding of the request's cookie; "" without one.
func (b Binding) BrowserOf(r *http.Request) string {
	c, err := r.Cookie(b.Cookie)
	if err != nil || c.Value == "" {
		return ""
	}
	return hash(c.Value)
}

func hash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Page is what Widget shows of an order.
type Page struct {
	Intent    string
	Factor    string
	Order     txclient.Order
	Autostart template.URL // egate://order?… (html/template refuses the scheme as a string)
	QR        template.URL // data:image/png;base64,…
	Status    string
	Nonce     string
	PollURL   string
}

// Begin makes a signing order for the intent with factor, bound to this
// browser, and returns what the page shows; poll is the page's poll path
// (Poll's route). It sets the response's Content-Security-Policy: the
// widget's one script runs under the page's nonce.
func (b Binding) Begin(ctx context.Context, ord Orderer, w http.ResponseWriter, r *http.Request, p i18n.Printer, intentHash, factor, clientIP, poll string) (Page, error) {
	browser := b.Browser(w, r)
	o, err := ord.Order(ctx, intentHash, txclient.OrderRequest{Factor: factor, Browser: browser, ClientIP: clientIP})
	if err != nil {
		return Page{}, err
	}
	pg := Page{Intent: intentHash, Factor: factor, Order: o, Nonce: nonce(),
		Status:  p.T("order.pending." + map[bool]string{true: "qr", false: "link"}[o.ByQR]),
		PollURL: poll + "?" + url.Values{"intent": {intentHash}, "ref": {o.Ref}}.Encode()}
	if o.Autostart != "" && strings.HasPrefix(o.Autostart, "egate://order?") {
		pg.Autostart = template.URL(o.Autostart)
	}
	if o.ByQR {
		if st, err := ord.CollectOrder(ctx, intentHash, txclient.OrderCollect{Ref: o.Ref, Browser: browser}); err == nil && strings.HasPrefix(st.QR, "data:image/png;base64,") {
			pg.QR = template.URL(st.QR)
		}
	}
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'nonce-"+pg.Nonce+"'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	return pg, nil
}

func nonce() string {
	var b [18]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// poll is the JSON the widget's script reads.
type poll struct {
	State   string `json:"state"`
	Final   bool   `json:"final"`
	Message string `json:"message"`
	QR      string `json:"qr,omitempty"`
}

// Poll answers the widget's poll: GET <poll>?intent=&ref=, JSON
// {"state","final","message","qr"} in p's language. Only the browser
// holding the order's cookie gets it (the API answers any other
// unknown_order: 404 here); a fault of the bank's is a 503 the page keeps
// polling through, and goes to onError.
func (b Binding) Poll(w http.ResponseWriter, r *http.Request, ord Orderer, p i18n.Printer, onError func(error)) {
	q := r.URL.Query()
	browser := b.BrowserOf(r)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if ord == nil || browser == "" || len(q.Get("intent")) != 64 || q.Get("ref") == "" {
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(poll{State: "unknown", Final: true, Message: p.T("order.unknown")})
		return
	}
	st, err := ord.CollectOrder(r.Context(), q.Get("intent"), txclient.OrderCollect{Ref: q.Get("ref"), Browser: browser})
	var ae *txclient.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(poll{State: "unknown", Final: true, Message: p.T("order.unknown")})
		return
	}
	if err != nil {
		if onError != nil {
			onError(err)
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(poll{State: "unavailable", Message: p.T("err.generic")})
		return
	}
	out := poll{State: st.State, Final: st.State != "pending" && st.State != "user_sign", Message: Message(p, st)}
	if strings.HasPrefix(st.QR, "data:image/png;base64,") {
		out.QR = st.QR
	}
	json.NewEncoder(w).Encode(out)
}

// Message says where an order is in p's language: the state's sentence,
// and for a refusal the reason (the service's own sentence on an English
// page, the reason's key on a Chinese one).
func Message(p i18n.Printer, st txclient.OrderStatus) string {
	msg := p.T("order." + st.State)
	if st.State == "failed" || st.State == "cancelled" {
		switch {
		case st.Code != "" && i18n.Has("order.code."+st.Code):
			msg += " " + p.T("order.code."+st.Code)
		case p.Lang == "en" && st.Message != "":
			msg += " " + st.Message
		}
	}
	return msg
}

// Again is what a page says when an order named by its form did not go
// through (refused, cancelled on the device, expired, not yet signed, or
// unknown to this browser), before it starts a new one: the old order's
// state and "This is a new confirmation request". ok is false for any
// other error of the proof, which the page refuses as its own.
func (b Binding) Again(ctx context.Context, ord Orderer, r *http.Request, p i18n.Printer, intentHash, ref string, proofErr error) (msg string, ok bool) {
	code := txclient.Code(proofErr)
	switch code {
	case "order_pending", "order_failed", "order_cancelled", "order_expired", "unknown_order":
	default:
		return "", false
	}
	msg = p.T("order.again")
	if ord != nil && code != "unknown_order" {
		if st, err := ord.CollectOrder(ctx, intentHash, txclient.OrderCollect{Ref: ref, Browser: b.BrowserOf(r)}); err == nil {
			msg = Message(p, st) + " " + msg
		}
	}
	return msg, true
}

// View is the data of Widget: the page's printer and the order.
type View struct {
	P i18n.Printer
	O Page
}

// For is the order's View in p's language: {{template "signorder"
// (.Data.O.For .P)}}.
func (pg Page) For(p i18n.Printer) View { return View{P: p, O: pg} }

// Widget is the order's part of a page, the template "signorder" (parse
// it into the page's templates) executed with a View: the text the device
// signs, the autostart link or the QR, the state, and the script that
// polls the order and submits the page's form with id "order-form" (which
// posts the confirmation with the order's ref) when the order is final.
const Widget = `{{define "signorder"}}<p>{{.P.T "order.text"}}</p>
<pre class="text" id="tx-text">{{.O.Order.Text}}</pre>
<div id="order" data-ref="{{.O.Order.Ref}}" data-poll="{{.O.PollURL}}" data-factor="{{.O.Factor}}">
{{if .O.Order.ByQR}}<figure style="margin:1rem 0"><img id="qr" src="{{.O.QR}}" alt="{{.P.T "order.qr_alt"}}" style="image-rendering:pixelated;border:1px solid #ccc">
<figcaption>{{.P.T "order.scan"}}</figcaption></figure>
{{else}}<p><a id="autostart" href="{{.O.Autostart}}" style="display:inline-block;padding:.6rem 1.2rem;background:#0b4f6c;color:#fff;border-radius:.3rem;text-decoration:none;font-weight:600">{{.P.T "order.link" (.P.T (print "tool." .O.Factor))}}</a></p>
<p>{{.P.T "order.link_help"}}</p>{{end}}
<p class="note" id="order-status" role="status" aria-live="polite" data-state="pending">{{.O.Status}}</p>
</div>
<script nonce="{{.O.Nonce}}">
(function () {
  var box = document.getElementById("order"), st = document.getElementById("order-status"), qr = document.getElementById("qr");
  var done = false;
  function poll() {
    if (done) return;
    fetch(box.dataset.poll, {credentials: "same-origin", cache: "no-store"}).then(function (r) { return r.json(); }).then(function (o) {
      if (o.message) st.textContent = o.message;
      st.dataset.state = o.state;
      if (o.qr && qr) qr.src = o.qr;
      if (o.final) { done = true; document.getElementById("order-form").submit(); return; }
      setTimeout(poll, 1000);
    }).catch(function () { setTimeout(poll, 1000); });
  }
  setTimeout(poll, 1000);
})();
</script>{{end}}`
