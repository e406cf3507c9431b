package mall

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"html/template"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/i18n"
	"github.com/egate-bank/egate/internal/money"
	"github.com/egate-bank/egate/platform/ebank/ledger"
	"github.com/egate-bank/egate/platform/signorder"
)

// Authorizer is what the checkout needs of the transaction authorization
// service; *txclient.Client is one. The tools the customer holds (U-shield,
// PIV, phone app) need it to be a signorder.Orderer too.
type Authorizer interface {
	Authorize(ctx context.Context, in intent.Intent) (txclient.Decision, error)
	Challenge(ctx context.Context, hash string, r txclient.ChallengeRequest) (txclient.Challenge, error)
	Proof(ctx context.Context, hash string, r txclient.ProofRequest) (txclient.Grant, error)
	Execute(ctx context.Context, grant string, in intent.Intent) (txclient.Executed, error)
	Cancel(ctx context.Context, hash, reason string) (txclient.Cancelled, error)
}

var _ Authorizer = (*txclient.Client)(nil)

// Customer is the logged-in customer as the platform's session knows them.
type Customer struct {
	ID    string // passport id
	Name  string
	Level int // the session's authentication level
}

// MerchantLevel is the session level the merchant's actions (products,
// shipping, cancelling, refunds) ask for: a session below it is offered
// the step-up through the passport.
const MerchantLevel = 2

// Pages serves the mall's pages. Mount Handler under the platform site at
// Routes.
type Pages struct {
	Mall *Mall
	Auth Authorizer
	// Customer returns the request's logged-in customer; false sends the
	// browser to /login (single sign-on makes that silent for a customer
	// logged in at ebank).
	Customer func(r *http.Request) (Customer, bool)
	// Zone is the customers' time zone (nil: Asia/Shanghai).
	Zone *time.Location
	// OnError receives unexpected errors (the page shows a plain sentence).
	OnError func(r *http.Request, err error)
}

//go:embed templates/*.html
var files embed.FS

var pages = template.Must(template.Must(template.New("").Funcs(template.FuncMap{
	"yuan": money.Yuan,
	"mul":  func(a, b int64) int64 { return a * b },
}).Parse(signorder.Widget)).ParseFS(files, "templates/*.html"))

// Routes are the paths Handler serves, for the platform's mux.
var Routes = []string{"/shop", "/cart", "/cart/", "/checkout", "/checkout/", "/orders", "/orders/", "/merchant", "/merchant/"}

// Handler serves the customer's pages (shop, cart, checkout, orders) and
// the merchant's (apply; products, orders, ship, cancel, refund).
func (p *Pages) Handler() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /shop", p.logged(p.shop))
	m.HandleFunc("POST /cart/add", p.logged(p.cartAdd))
	m.HandleFunc("GET /cart", p.logged(p.cart))
	m.HandleFunc("POST /cart/set", p.logged(p.cartSet))
	m.HandleFunc("GET /checkout", p.logged(p.checkoutForm))
	m.HandleFunc("POST /checkout", p.logged(p.checkoutAuthorize))
	m.HandleFunc("POST /checkout/challenge", p.logged(p.checkoutChallenge))
	m.HandleFunc("POST /checkout/confirm", p.logged(p.checkoutConfirm))
	m.HandleFunc("GET /checkout/order", p.logged(p.checkoutOrderPoll))
	m.HandleFunc("GET /orders", p.logged(p.orders))
	m.HandleFunc("GET /orders/{id}", p.logged(p.order))
	m.HandleFunc("POST /orders/{id}/cancel", p.logged(p.orderCancel))
	m.HandleFunc("GET /merchant", p.logged(p.merchant))
	m.HandleFunc("POST /merchant/apply", p.logged(p.merchantApply))
	m.HandleFunc("POST /merchant/products", p.logged(p.merchantProduct))
	m.HandleFunc("POST /merchant/orders/{id}/{action}", p.logged(p.merchantOrder))
	return m
}

// view is what every template gets.
type view struct {
	i18n.Page
	C      Customer
	Title  string
	Error  string
	Code   string // the refusal's stable code (data-code on the error)
	Notice string
	Data   any
}

type handler func(w http.ResponseWriter, r *http.Request, v *view)

func (p *Pages) logged(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, ok := p.Customer(r)
		if !ok {
			http.Redirect(w, r, "/login", http.StatusFound)
			return
		}
		v := &view{Page: i18n.PageFor(w, r, p.Zone, "/shop"), C: c}
		w.Header().Set("Cache-Control", "no-store")
		h(w, r, v)
	}
}

func (p *Pages) render(w http.ResponseWriter, status int, name string, v *view) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	pages.ExecuteTemplate(w, name, v)
}

func (p *Pages) fail(w http.ResponseWriter, r *http.Request, v *view, err error) {
	if p.OnError != nil {
		p.OnError(r, err)
	}
	v.Error, v.Code = v.P.T("err.generic"), "internal"
	v.Title = v.P.T("platform.mall")
	p.render(w, http.StatusInternalServerError, "error", v)
}

// refusal sets the page's error from a refusal of the mall, of ebank's
// ledger or of the transaction service, and returns its HTTP status; an
// unexpected error returns 0.
func refusal(v *view, err error) int {
	var me *Error
	var ae *txclient.APIError
	switch {
	case errors.As(err, &me):
		v.Code, v.Error = me.Code, v.P.T("mall.err."+me.Code)
		return me.Status
	case ledger.Code(err) != "":
		v.Code = ledger.Code(err)
		key := "mall.err." + v.Code
		if !i18n.Has(key) {
			key = "mall.err.bank"
		}
		v.Error = v.P.T(key)
		return http.StatusUnprocessableEntity
	case errors.As(err, &ae) && ae.Status < 500:
		v.Code = ae.Code
		switch {
		case strings.Contains(ae.Code, "limit"):
			v.Error = v.P.T("xfer.limit")
		case ae.Code == "locked":
			v.Error = v.P.T("xfer.locked")
		case strings.Contains(ae.Code, "grant"), strings.Contains(ae.Code, "intent"), ae.Code == "idempotency_key_reused":
			v.Error = v.P.T("mall.err.grant")
		default:
			v.Error = v.P.T("xfer.bad_code")
		}
		return http.StatusUnprocessableEntity
	}
	return 0
}

func newKey() string {
	var b [18]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// device is the browser's fingerprint as the mall sees it: a hash of its
// user agent and languages.
func device(r *http.Request) string {
	h := sha256.Sum256([]byte(r.UserAgent() + "\x00" + r.Header.Get("Accept-Language")))
	return "web:" + hex.EncodeToString(h[:8])
}

func clientIP(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

func formInt(r *http.Request, k string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(r.PostFormValue(k)), 10, 64)
	return n, err == nil
}

type shopData struct {
	Products []Product
	Cart     Cart
}

func (p *Pages) shop(w http.ResponseWriter, r *http.Request, v *view) {
	p.showShop(w, r, v, http.StatusOK)
}

func (p *Pages) showShop(w http.ResponseWriter, r *http.Request, v *view, status int) {
	list, err := p.Mall.Products(r.Context(), "")
	if err != nil {
		p.fail(w, r, v, err)
		return
	}
	c, err := p.Mall.Cart(r.Context(), v.C.ID)
	if err != nil {
		p.fail(w, r, v, err)
		return
	}
	v.Title, v.Data = v.P.T("mall.shop"), shopData{Products: list, Cart: c}
	p.render(w, status, "shop", v)
}

func (p *Pages) cartAdd(w http.ResponseWriter, r *http.Request, v *view) {
	qty, ok := formInt(r, "qty")
	if !ok {
		qty = 0
	}
	_, err := p.Mall.AddToCart(r.Context(), v.C.ID, r.PostFormValue("product"), qty)
	if status := refusal(v, err); status != 0 {
		p.showShop(w, r, v, status)
		return
	}
	if err != nil {
		p.fail(w, r, v, err)
		return
	}
	http.Redirect(w, r, "/cart", http.StatusSeeOther)
}

type cartData struct {
	Cart     Cart
	Accounts []ledger.Account
	Key      string
	Payer    string
}

func (p *Pages) cart(w http.ResponseWriter, r *http.Request, v *view) {
	p.showCart(w, r, v, http.StatusOK)
}

func (p *Pages) showCart(w http.ResponseWriter, r *http.Request, v *view, status int) {
	c, err := p.Mall.Cart(r.Context(), v.C.ID)
	if err != nil {
		p.fail(w, r, v, err)
		return
	}
	v.Title, v.Data = v.P.T("mall.cart"), cartData{Cart: c}
	p.render(w, status, "cart", v)
}

func (p *Pages) cartSet(w http.ResponseWriter, r *http.Request, v *view) {
	qty, ok := formInt(r, "qty")
	if !ok {
		qty = -1
	}
	_, err := p.Mall.SetQty(r.Context(), v.C.ID, r.PostFormValue("product"), qty)
	if status := refusal(v, err); status != 0 {
		p.showCart(w, r, v, status)
		return
	}
	if err != nil {
		p.fail(w, r, v, err)
		return
	}
	http.Redirect(w, r, "/cart", http.StatusSeeOther)
}
