package mall

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/money"
	"github.com/egate-bank/egate/platform/ebank/ledger"
	"github.com/egate-bank/egate/platform/signorder"
)

// payForm is the checkout as posted: every step carries it in hidden
// fields and checks it again; the intent's hash covers the payer, the
// payee, the amount and the key, and the cart's revision is checked
// against the cart at every step and once more, guarded, when the order
// is placed.
type payForm struct {
	Key, Payer, Factor, ChallengeID string
	Order                           string // a signing order's ref (the tools the customer holds)
	Rev                             int64
	// TxLang is the language of the text the customer confirms and signs
	// (intent.Lang): the page's when the checkout was first shown, carried
	// from there to the end.
	TxLang string
}

func readPayForm(r *http.Request) payForm {
	g := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	rev, _ := strconv.ParseInt(g("rev"), 10, 64)
	return payForm{Key: g("key"), Payer: g("payer"), Factor: g("factor"), ChallengeID: g("challenge_id"), Order: g("order"), Rev: rev, TxLang: g("txlang")}
}

type checkoutData struct {
	F        payForm
	Cart     Cart
	Merchant string
	Accounts []ledger.Account
	Decision txclient.Decision
	Tools    []txclient.Tool
	Chal     txclient.Challenge
	Summary  string
	O        signorder.Page // the signing order of a tool the customer holds
}

func (p *Pages) checkoutForm(w http.ResponseWriter, r *http.Request, v *view) {
	c, err := p.Mall.Cart(r.Context(), v.C.ID)
	if err != nil {
		p.fail(w, r, v, err)
		return
	}
	if len(c.Lines) == 0 {
		v.Error, v.Code = v.P.T("mall.err.cart_empty"), "cart_empty"
		p.showCart(w, r, v, http.StatusUnprocessableEntity)
		return
	}
	accts, err := p.Mall.Accounts(r.Context(), v.C.ID)
	if err != nil {
		p.fail(w, r, v, err)
		return
	}
	f := payForm{Key: newKey(), Rev: c.Rev, TxLang: v.P.IntentLang()}
	if len(accts) > 0 {
		f.Payer = accts[0].Number
	}
	mc, _ := p.Mall.Merchant(r.Context(), c.Merchant)
	v.Title, v.Data = v.P.T("mall.checkout"), checkoutData{F: f, Cart: c, Merchant: mc.Name, Accounts: accts}
	p.render(w, http.StatusOK, "checkout", v)
}

// refuseCheckout shows the cart again with the refusal.
func (p *Pages) refuseCheckout(w http.ResponseWriter, r *http.Request, v *view, err error) {
	status := refusal(v, err)
	if status == 0 {
		p.fail(w, r, v, err)
		return
	}
	p.showCart(w, r, v, status)
}

// decide checks the posted checkout against the cart and authorizes its
// intent; the same form again is the same intent, which the service
// answers with its stored decision.
func (p *Pages) decide(w http.ResponseWriter, r *http.Request, v *view) (payForm, Quote, intent.Intent, txclient.Decision, bool) {
	f := readPayForm(r)
	if !slices.Contains(intent.Langs, f.TxLang) {
		f.TxLang = v.P.IntentLang()
	}
	co := Checkout{Customer: v.C.ID, Key: f.Key, Payer: f.Payer, Rev: f.Rev}
	var in intent.Intent
	if o, ok, err := p.Mall.orderByKey(r.Context(), v.C.ID, f.Key); err == nil && ok {
		if o.Status == Placing { // authorized and executed before: only the hold is missing
			p.placed(w, r, v, co, o.Intent)
			return f, Quote{}, in, txclient.Decision{}, false
		}
		v.Notice = v.P.T("mall.replayed")
		p.showOrder(w, r, v, o, http.StatusOK)
		return f, Quote{}, in, txclient.Decision{}, false
	}
	q, err := p.Mall.Prepare(r.Context(), co)
	if err != nil {
		p.refuseCheckout(w, r, v, err)
		return f, q, in, txclient.Decision{}, false
	}
	if q.Cart.Total > q.Payer.Available() {
		p.refuseCheckout(w, r, v, ledger.ErrInsufficientFunds)
		return f, q, in, txclient.Decision{}, false
	}
	in = intent.Intent{Customer: v.C.ID, Channel: intent.Web, Kind: intent.Payment, Payer: q.Payer.Number, Payee: q.Payee,
		Amount: q.Cart.Total, Currency: ledger.Currency, Device: device(r), ClientIP: clientIP(r), IdempotencyKey: f.Key, Lang: f.TxLang}
	d, err := p.Auth.Authorize(r.Context(), in)
	if err != nil {
		p.refuseCheckout(w, r, v, err)
		return f, q, in, d, false
	}
	switch d.Decision {
	case txclient.Allow:
		return f, q, in, d, true
	case txclient.Review:
		v.Error, v.Code = v.P.T("mall.err.review"), "review"
	default:
		v.Error, v.Code = v.P.T("mall.err.denied"), "denied"
		if v.P.Lang == "en" && d.Message != "" {
			v.Error += " " + d.Message
		}
	}
	p.showCart(w, r, v, http.StatusUnprocessableEntity)
	return f, q, in, d, false
}

func (p *Pages) summary(v *view, q Quote) string {
	return v.P.T("mall.summary", money.Yuan(q.Cart.Total), q.Merchant.Name, q.Payer.Number)
}

func (p *Pages) checkoutAuthorize(w http.ResponseWriter, r *http.Request, v *view) {
	f, q, _, d, ok := p.decide(w, r, v)
	if !ok {
		return
	}
	tools := make([]txclient.Tool, 0, len(d.Tools))
	for _, t := range d.Tools {
		if t.Level >= d.Level {
			tools = append(tools, t)
		}
	}
	if len(tools) == 0 {
		v.Error, v.Code = v.P.T("mall.err.no_tool", d.Level), "no_tool"
		p.showCart(w, r, v, http.StatusUnprocessableEntity)
		return
	}
	f.Factor = tools[0].Name
	v.Title = v.P.T("mall.checkout")
	v.Data = checkoutData{F: f, Cart: q.Cart, Decision: d, Tools: tools, Summary: p.summary(v, q)}
	p.render(w, http.StatusOK, "decision", v)
}

func (p *Pages) checkoutChallenge(w http.ResponseWriter, r *http.Request, v *view) {
	f, q, _, d, ok := p.decide(w, r, v)
	if !ok {
		return
	}
	if signorder.ByOrder(f.Factor) {
		p.checkoutOrder(w, r, v, f, q, d, "")
		return
	}
	c, err := p.Auth.Challenge(r.Context(), d.Intent, txclient.ChallengeRequest{Factor: f.Factor, ClientIP: clientIP(r)})
	if err != nil {
		p.refuseCheckout(w, r, v, err)
		return
	}
	f.ChallengeID = c.ID
	v.Title = v.P.T("mall.checkout")
	v.Data = checkoutData{F: f, Cart: q.Cart, Decision: d, Chal: c, Summary: p.summary(v, q)}
	p.render(w, http.StatusOK, "challenge", v)
}

func (p *Pages) checkoutConfirm(w http.ResponseWriter, r *http.Request, v *view) {
	f, q, in, d, ok := p.decide(w, r, v)
	if !ok {
		return
	}
	ctx := r.Context()
	var g txclient.Grant
	var err error
	switch {
	case f.Order != "":
		g, err = p.Auth.Proof(ctx, d.Intent, txclient.ProofRequest{Order: f.Order, Browser: orders.BrowserOf(r), ClientIP: clientIP(r), Intent: &in})
		ord, _ := p.Auth.(signorder.Orderer)
		if msg, again := orders.Again(ctx, ord, r, v.P, d.Intent, f.Order, err); err != nil && again {
			f.Order = ""
			p.checkoutOrder(w, r, v, f, q, d, msg)
			return
		}
	case signorder.ByOrder(f.Factor):
		// A signature is never typed: the tool answers its order.
		p.checkoutOrder(w, r, v, f, q, d, v.P.T("order.again"))
		return
	default:
		g, err = p.Auth.Proof(ctx, d.Intent, txclient.ProofRequest{ChallengeID: f.ChallengeID, Response: r.PostFormValue("response"), ClientIP: clientIP(r), Intent: &in})
	}
	if err != nil {
		p.refuseCheckout(w, r, v, err)
		return
	}
	if _, err := p.Auth.Execute(ctx, g.Token, in); err != nil {
		p.refuseCheckout(w, r, v, err)
		return
	}
	p.placed(w, r, v, Checkout{Customer: v.C.ID, Key: f.Key, Payer: f.Payer, Rev: f.Rev}, d.Intent)
}

// placed places the order of an executed intent (or retries its hold) and
// shows the outcome.
func (p *Pages) placed(w http.ResponseWriter, r *http.Request, v *view, co Checkout, intentHash string) {
	ctx := r.Context()
	o, err := p.Mall.Place(ctx, co, intentHash)
	if err != nil && o.ID != "" && o.Status == Placing {
		// ebank did not answer: the order keeps its stock and the hold is
		// retried with its key (the same form again, or ResumePlacing).
		if p.OnError != nil {
			p.OnError(r, err)
		}
		v.Error, v.Code = v.P.T("mall.err.placing"), "placing"
		p.showOrder(w, r, v, o, http.StatusServiceUnavailable)
		return
	}
	if err != nil { // nothing held: give the customer's limit back
		p.Auth.Cancel(ctx, intentHash, "mall refused: "+Code(err)+ledger.Code(err))
		p.refuseCheckout(w, r, v, err)
		return
	}
	v.Notice = v.P.T("mall.paid", money.Yuan(o.Total))
	p.showOrder(w, r, v, o, http.StatusOK)
}

// orders binds this browser's signing orders to it by the mall_order
// cookie.
var orders = signorder.Binding{Cookie: "mall_order", Path: "/checkout"}

// checkoutOrder makes a signing order for the checkout's intent with the
// chosen tool (a U-shield, a PIV token, the phone app) and shows the page
// that follows it (platform/signorder, as ebank's transfer page does); msg
// says why an earlier order did not go through.
func (p *Pages) checkoutOrder(w http.ResponseWriter, r *http.Request, v *view, f payForm, q Quote, d txclient.Decision, msg string) {
	ord, ok := p.Auth.(signorder.Orderer)
	if !ok {
		v.Error, v.Code = v.P.T("mall.err.no_order"), "no_order"
		p.showCart(w, r, v, http.StatusUnprocessableEntity)
		return
	}
	pg, err := orders.Begin(r.Context(), ord, w, r, v.P, d.Intent, f.Factor, clientIP(r), "/checkout/order")
	if err != nil {
		p.refuseCheckout(w, r, v, err)
		return
	}
	f.Order = pg.Order.Ref
	v.Title, v.Error = v.P.T("mall.checkout"), msg
	v.Data = checkoutData{F: f, Cart: q.Cart, Decision: d, Summary: p.summary(v, q), O: pg}
	p.render(w, http.StatusOK, "signpage", v)
}

// checkoutOrderPoll is the order page's poll: GET /checkout/order?intent=&ref=.
func (p *Pages) checkoutOrderPoll(w http.ResponseWriter, r *http.Request, v *view) {
	ord, _ := p.Auth.(signorder.Orderer)
	orders.Poll(w, r, ord, v.P, func(err error) {
		if p.OnError != nil {
			p.OnError(r, err)
		}
	})
}
