package messenger

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/money"
)

// The payment pages: every kind of payment (friend transfer, AA share,
// receive QR) goes through the same three steps as ebank's transfer page —
// authorize the intent and show the decision with the customer's tools at
// its level (POST /pay), the chosen tool's challenge (POST /pay/challenge),
// the proof, execution of the grant and the movement at ebank
// (POST /pay/confirm). Each step checks the whole form again.

func readPayForm(r *http.Request) PayForm {
	g := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	return PayForm{What: g("what"), Conv: g("conv"), To: g("to"), AA: g("aa"), QR: g("qr"), Payee: g("payee"),
		Amount: g("amount"), Memo: g("memo"), Key: g("key"), TxLang: g("txlang")}
}

type payData struct {
	F        PayForm
	Pay      Pay
	Decision txclient.Decision
	Tools    []txclient.Tool
	Chal     txclient.Challenge
	Factor   string
	Summary  string
	Back     string
	Done     msgView
	Code     ReceiveCode
}

// back is where a payment form's page links back to.
func back(f PayForm) string {
	switch f.What {
	case PayTransfer:
		return "/chats/" + f.Conv
	case PayAA:
		return "/aa/" + f.AA
	}
	return "/chats"
}

// payRefused shows the refusal on the payment page: nothing was paid.
func (p *Pages) payRefused(w http.ResponseWriter, r *http.Request, v *view, f PayForm, err error) {
	v.Title, v.Data = v.P.T("msg.pay"), payData{F: f, Back: back(f)}
	p.refuse(w, r, v, err, "payfail")
}

// authErr maps the service's refusals to the messenger's.
func authErr(err error) error {
	var ae *txclient.APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch {
	case ae.Code == "rate_limited" || ae.Status == http.StatusTooManyRequests:
		return ErrRateLimited
	case ae.Code == "limit_exceeded" || strings.Contains(ae.Code, "limit"):
		return ErrLimit
	case ae.Code == "idempotency_key_reused", strings.Contains(ae.Code, "grant"), strings.Contains(ae.Code, "intent"):
		return ErrExpired
	case ae.Status >= 500:
		return err
	}
	return ErrProof
}

// decide checks the form and authorizes its intent (the same form again
// is the same intent, answered with the stored decision).
func (p *Pages) decide(w http.ResponseWriter, r *http.Request, v *view) (Pay, txclient.Decision, bool) {
	f := readPayForm(r)
	if !slices.Contains(intent.Langs, f.TxLang) { // the first step: the page's language
		f.TxLang = v.P.IntentLang()
	}
	me := Member{ID: v.C.ID, Name: v.C.Name}
	pay, err := p.Svc.Resolve(r.Context(), me, f, device(r), clientIP(r))
	if err != nil {
		if errors.Is(err, ErrAAPaid) || f.What != PayAA {
			if m, ok := p.Svc.Done(r.Context(), Pay{Key: pay.Key}); ok && pay.Key != "" { // a form submitted again
				v.Notice = v.P.T("msg.replayed")
				p.showPaid(w, r, v, f, m)
				return pay, txclient.Decision{}, false
			}
		}
		p.payRefused(w, r, v, f, err)
		return pay, txclient.Decision{}, false
	}
	if m, ok := p.Svc.Done(r.Context(), pay); ok {
		v.Notice = v.P.T("msg.replayed")
		p.showPaid(w, r, v, f, m)
		return pay, txclient.Decision{}, false
	}
	d, err := p.Svc.Auth.Authorize(r.Context(), pay.In)
	if err != nil {
		p.payRefused(w, r, v, f, authErr(err))
		return pay, d, false
	}
	switch d.Decision {
	case txclient.Allow:
		if err := p.Svc.Pending(r.Context(), pay, d.Intent); err != nil { // both members see it from now on
			p.payRefused(w, r, v, f, err)
			return pay, d, false
		}
		return pay, d, true
	case txclient.Review:
		p.payRefused(w, r, v, f, ErrReview)
	default:
		p.payRefused(w, r, v, f, ErrDenied)
	}
	return pay, d, false
}

func (p *Pages) summary(v *view, pay Pay) string {
	return v.P.T("msg.summary."+pay.Form.What, money.Yuan(pay.Amount), pay.Payee.Name, pay.Debit.Number)
}

func (p *Pages) payAuthorize(w http.ResponseWriter, r *http.Request, v *view) {
	pay, d, ok := p.decide(w, r, v)
	if !ok {
		return
	}
	var tools []txclient.Tool
	for _, t := range d.Tools {
		if t.Level >= d.Level {
			tools = append(tools, t)
		}
	}
	if len(tools) == 0 {
		p.payRefused(w, r, v, pay.Form, ErrDenied)
		return
	}
	v.Title = v.P.T("msg.pay")
	v.Data = payData{F: pay.Form, Pay: pay, Decision: d, Tools: tools, Factor: tools[0].Name, Summary: p.summary(v, pay), Back: back(pay.Form)}
	p.render(w, http.StatusOK, "decision", v)
}

func (p *Pages) payChallenge(w http.ResponseWriter, r *http.Request, v *view) {
	pay, d, ok := p.decide(w, r, v)
	if !ok {
		return
	}
	factor := r.PostFormValue("factor")
	c, err := p.Svc.Auth.Challenge(r.Context(), d.Intent, txclient.ChallengeRequest{Factor: factor, ClientIP: clientIP(r)})
	if err != nil {
		p.payRefused(w, r, v, pay.Form, authErr(err))
		return
	}
	v.Title = v.P.T("msg.pay")
	v.Data = payData{F: pay.Form, Pay: pay, Decision: d, Chal: c, Factor: factor, Summary: p.summary(v, pay), Back: back(pay.Form)}
	p.render(w, http.StatusOK, "challenge", v)
}

func (p *Pages) payConfirm(w http.ResponseWriter, r *http.Request, v *view) {
	pay, d, ok := p.decide(w, r, v)
	if !ok {
		return
	}
	ctx := r.Context()
	g, err := p.Svc.Auth.Proof(ctx, d.Intent, txclient.ProofRequest{ChallengeID: r.PostFormValue("challenge_id"), Response: r.PostFormValue("response"),
		ClientIP: clientIP(r), Intent: &pay.In})
	if err != nil {
		err = authErr(err)
		if errors.Is(err, ErrLimit) || errors.Is(err, ErrDenied) { // final; a wrong code may be typed again
			p.Svc.Settle(ctx, pay, StateRefused, CodeOf(err))
		}
		p.payRefused(w, r, v, pay.Form, err)
		return
	}
	if _, err := p.Svc.Auth.Execute(ctx, g.Token, pay.In); err != nil {
		if m, ok := p.Svc.Done(ctx, pay); ok { // a double submit: the first consumed the grant
			v.Notice = v.P.T("msg.replayed")
			p.showPaid(w, r, v, pay.Form, m)
			return
		}
		err = authErr(err)
		p.Svc.Settle(ctx, pay, StateRefused, CodeOf(err))
		p.payRefused(w, r, v, pay.Form, err)
		return
	}
	m, err := p.Svc.Complete(ctx, pay, d.Intent)
	if err != nil {
		p.Svc.Auth.Cancel(ctx, d.Intent, "messenger refused: "+CodeOf(err))
		p.Svc.Settle(ctx, pay, StateRefused, CodeOf(err))
		p.payRefused(w, r, v, pay.Form, err)
		return
	}
	p.showPaid(w, r, v, pay.Form, m)
}

// payCancel is the payer's "Cancel" on the decision or challenge page: the
// intent is cancelled at txauth and the pending transfer shows as cancelled
// to both members; nothing moved.
func (p *Pages) payCancel(w http.ResponseWriter, r *http.Request, v *view) {
	pay, d, ok := p.decide(w, r, v)
	if !ok {
		return
	}
	ctx := r.Context()
	if _, err := p.Svc.Auth.Cancel(ctx, d.Intent, "cancelled by the payer"); err != nil {
		p.payRefused(w, r, v, pay.Form, authErr(err))
		return
	}
	p.Svc.Settle(ctx, pay, StateCancelled, "")
	http.Redirect(w, r, back(pay.Form), http.StatusSeeOther)
}

func (p *Pages) showPaid(w http.ResponseWriter, r *http.Request, v *view, f PayForm, m Message) {
	v.Title = v.P.T("msg.pay")
	v.Data = payData{F: f, Back: "/chats/" + m.Conversation, Done: p.show(r.Context(), v.P, v.C.ID, m)}
	p.render(w, http.StatusOK, "paid", v)
}
