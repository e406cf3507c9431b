package authsvc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"

	"github.com/egate-bank/egate/authsvc/apierr"
	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/oidcop"
	"github.com/egate-bank/egate/authsvc/orders"
	"github.com/egate-bank/egate/internal/i18n"
)

// The factor step of a signature tool (U-shield, PIV, phone app): the page
// makes a signing order (authsvc/orders) for the tool's challenge and
// follows it. "Use your U-shield" is the autostart link that starts the
// desktop helper (egate helper) on this computer; "scan with the app" is
// the animated QR the phone app scans, a fresh image every second from
// /login/order/collect. The page polls that endpoint and, when the order
// is final, posts /login/order/finish, which logs in with the order's
// result (once) or starts a new order with the reason. Without JavaScript
// the customer presses Continue. Only the browser holding the login's flow
// cookie (egate_login_<hash of the auth request id>) collects or finishes
// its order.

// orderView is what the factor page shows of an order.
type orderView struct {
	Ref        string
	CollectURL string // what the page polls
	FinishURL  string // where it posts when the order is final
	CancelURL  string
	Autostart  template.URL // egate://order?… (html/template would refuse the scheme as a string)
	QRPNG      string       // base64 PNG of the current animated-QR code
	ByQR       bool
	ByLink     bool
}

// qrAnswer: a tool whose device is the bank's phone app, which reaches the
// order by the page's animated QR instead of the autostart link.
type qrAnswer interface{ AnswersByQR() bool }

func answersByQR(f authn.Factor) bool {
	q, ok := f.(qrAnswer)
	return ok && q.AnswersByQR()
}

// Orders returns the signing-order service (the device API, transaction
// confirmations).
func (s *Server) Orders() *orders.Service { return s.orders }

func nonce() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawStdEncoding.EncodeToString(b[:])
}

// beginOrder makes the signing order for fac's new challenge ch and shows
// the factor page following it.
func (s *Server) beginOrder(w http.ResponseWriter, r *http.Request, ar *oidcop.AuthRequest, f *flow, fac authn.Factor, ch authn.Challenge, status int, msg, code string) {
	ctx := r.Context()
	if le := s.factorLock(ctx, f.PassportID, fac.Name()); le != nil {
		// No order for a locked tool: the device's signature would be refused.
		s.renderLockedFactor(w, r, ar, f, fac, le)
		return
	}
	text, challenge, ok := orders.SplitSigned(ch.Data)
	if !ok {
		pr := s.printer(r)
		s.message(w, http.StatusServiceUnavailable, pr.T("pp.try_again_title"), pr.T("pp.tool_not_started_try", s.toolIn(pr, fac)), apierr.Unavailable.Name)
		return
	}
	o, auto, err := s.orders.Create(ctx, orders.CreateRequest{Kind: orders.KindLogin, PassportID: f.PassportID, Factor: fac.Name(), ChallengeID: ch.ID,
		Context: sha(ar.ID), Text: text, Challenge: challenge, Browser: f.Browser, ExpiresAt: ch.ExpiresAt})
	if err != nil || !bytes.Equal(o.Data, ch.Data) {
		s.busy(w)
		return
	}
	// The autostart token stays in the flow (server side, bound to this
	// browser) so the page can be shown again; the order keeps its hash.
	f.Data, f.Order, f.Autostart = string(ch.Data), o.Ref, auto
	if !s.saveFlow(ctx, w, ar.ID, f) {
		return
	}
	s.renderOrder(w, r, status, ar, f, fac, o, msg, code)
}

func (s *Server) renderOrder(w http.ResponseWriter, r *http.Request, status int, ar *oidcop.AuthRequest, f *flow, fac authn.Factor, o *orders.Order, msg, code string) {
	v := &orderView{Ref: o.Ref, ByQR: answersByQR(fac), CollectURL: s.base + "/login/order/collect?" + url.Values{"id": {ar.ID}, "ref": {o.Ref}}.Encode(),
		FinishURL: s.base + "/login/order/finish", CancelURL: s.base + "/login/order/cancel"}
	v.ByLink = !v.ByQR
	if v.ByLink {
		v.Autostart = safeURL(orders.AutostartLink(s.cfg.Issuer, o.Ref, f.Autostart))
	} else if png, err := orders.QRPNG(s.orders.QRContent(o), qrSize); err == nil {
		v.QRPNG = base64.StdEncoding.EncodeToString(png)
	}
	s.render(w, status, "factor", page{ID: ar.ID, Client: ar.GetClientID(), Level: ar.RequiredLevel(), Factor: fac.Name(), FactorLabel: factorLabel(fac),
		Prompt: f.Prompt, Data: f.Data, Proof: true, Error: msg, ErrorCode: code, Factors: s.otherFactors(r, ar, f, fac), Order: v, Nonce: nonce()})
}

// qrSize: 5 pixels per module (a whole number, so a screenshot or a camera
// frame has even modules for the app's decoder), with the quiet zone.
const qrSize = -5

// verifyOrder is the orders.Verifier: the tool's own verification (chain
// to the bank CA, binding, revocation, the signature over the order's
// data, the tool's challenge consumed), counted toward the tool's lockout
// like an answer on the page, and audited (kind order.sign).
func (s *Server) verifyOrder(ctx context.Context, o *orders.Order, resp []byte, ip string) (orders.Verified, error) {
	fac := s.factorNamed(o.Factor)
	if fac == nil {
		return orders.Verified{}, fmt.Errorf("%s: %w", o.Factor, authn.ErrNotEnrolled)
	}
	if o.Kind == orders.KindEnrol {
		return s.verifyEnrol(ctx, o, fac, resp, ip)
	}
	// Counted once, on the tool's one counter, as an answer on the page.
	req := authn.VerifyRequest{PassportID: o.PassportID, ChallengeID: o.ChallengeID, Response: resp, ClientIP: ip, Purpose: authn.PurposeLogin}
	if o.Kind == orders.KindTransaction {
		// The tool checks its challenge was begun for this intent.
		req.Purpose, req.TxHash = authn.PurposeTransaction, o.IntentHash
	}
	res, err := authn.Counted(ctx, fac, s.passport, req)
	outcome := "ok"
	if err != nil {
		outcome = orders.Code(err)
	}
	if _, aerr := s.audit.Append(ctx, "order.sign", s.orderFields(o, ip, outcome)); aerr != nil && err == nil {
		// Fails closed: no signature counts unrecorded.
		return orders.Verified{}, fmt.Errorf("recording the signature: %w", aerr)
	}
	return orders.Verified{Result: res}, err
}

func (s *Server) orderFields(o *orders.Order, ip, outcome string) map[string]string {
	return map[string]string{"subject": "pid:" + o.PassportID, "factor": o.Factor, "kind": string(o.Kind), "order": sha(o.Ref)[:16], "ip": ip, "outcome": outcome}
}

// orderStatus is the collect endpoint's answer.
type orderStatus struct {
	State   string `json:"state"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message"`
	QR      string `json:"qr,omitempty"` // data: URL of the current animated-QR image
}

// orderCollect: GET /login/order/collect?id=…&ref=…, polled by the factor
// page. Another browser, or a ref that is not this login's order, gets 404
// unknown_order and nothing else.
func (s *Server) orderCollect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, err := s.storage.LoginRequest(ctx, r.FormValue("id"))
	if err != nil {
		apierr.WriteCode(w, r, apierr.LoginExpired, "This sign-in has expired or is unknown. Go back to the platform and start again.")
		return
	}
	var f flow
	json.Unmarshal(ar.Flow, &f)
	c, cerr := r.Cookie(flowCookieName(ar.ID))
	ref := r.FormValue("ref")
	if cerr != nil || f.Order == "" || ref != f.Order {
		orders.WriteError(w, r, orders.ErrUnknown)
		return
	}
	o, err := s.orders.Collect(ctx, ref, orders.BrowserHash(c.Value))
	if err != nil {
		orders.WriteError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(s.orderStatusOf(s.printer(r), o))
}

// orderStatusOf is the collect poll's answer for o.
func (s *Server) orderStatusOf(pr i18n.Printer, o *orders.Order) orderStatus {
	st := orderStatus{State: string(o.State), Code: o.FailCode}
	fac := s.factorNamed(o.Factor)
	switch o.State {
	case orders.Pending:
		st.Message = pr.T("order.waiting", s.toolIn(pr, fac))
		if fac != nil && answersByQR(fac) {
			if png, err := orders.QRPNG(s.orders.QRContent(o), qrSize); err == nil {
				st.QR = "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)
			}
		}
	case orders.UserSign:
		st.Message = pr.T("order.opened")
	case orders.Complete:
		st.Message = pr.T("order.signed")
	case orders.Failed:
		st.Message = pr.T("order.refused", codeRefusal(pr, o.FailCode))
	case orders.Expired:
		st.Code, st.Message = "order_expired", orderRefusal(pr, orders.ErrExpired)
	case orders.Cancelled:
		st.Message = orderRefusal(pr, orders.ErrCancelled)
		if m, ok := orders.DeviceReasons[o.FailCode]; ok {
			st.Message = pr.Refusal(o.FailCode, m) + " " + st.Message
		}
		st.Code = "order_cancelled"
	}
	return st
}

func labelOf(f authn.Factor) string {
	if f == nil {
		return "tool"
	}
	return factorLabel(f)
}

// orderFlow loads the login and its open order for a form post.
func (s *Server) orderFlow(w http.ResponseWriter, r *http.Request) (*oidcop.AuthRequest, *flow, authn.Factor, bool) {
	ar, f, ok := s.loadFlow(w, r)
	if !ok {
		return nil, nil, nil, false
	}
	fac := s.factorNamed(f.Factor)
	if f.Step != stepFactor || fac == nil || f.Order == "" || r.PostFormValue("ref") != f.Order {
		s.message(w, http.StatusBadRequest, "Sign-in out of order", "Start the sign-in again from the platform.", "invalid_request")
		return nil, nil, nil, false
	}
	return ar, f, fac, true
}

// flowSecret is the value of the login's flow cookie (loadFlow checked it).
func flowSecret(r *http.Request, ar *oidcop.AuthRequest) string {
	c, err := r.Cookie(flowCookieName(ar.ID))
	if err != nil {
		return ""
	}
	return c.Value
}

// orderFinish: POST /login/order/finish (id, ref). A complete order logs
// in, once; a pending one shows the page again; a failed, expired or
// cancelled one starts a new order with the reason.
func (s *Server) orderFinish(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, f, fac, ok := s.orderFlow(w, r)
	if !ok {
		return
	}
	o, err := s.orders.Finish(ctx, f.Order, orders.BrowserHash(flowSecret(r, ar)))
	switch {
	case err == nil:
		s.factorPassed(w, r, ar, f, fac, s.clientIP(r), o.Result, "order", sha(o.Ref)[:16])
	case errors.Is(err, orders.ErrNotComplete):
		s.renderOrder(w, r, http.StatusConflict, ar, f, fac, o, "Not signed yet: "+orders.ErrNotComplete.Error()+".", "order_pending")
	case errors.Is(err, orders.ErrFailed) && o.FailCode == "locked":
		le := s.factorLock(ctx, f.PassportID, fac.Name())
		if le == nil {
			le = &authn.LockedError{Factor: fac.Name()}
		}
		s.renderLockedFactor(w, r, ar, f, fac, le)
	case errors.Is(err, orders.ErrFailed):
		s.beginFactorMsg(w, r, ar, f, fac, http.StatusUnauthorized, "The signature was refused: "+orders.MessageForCode(o.FailCode)+" Try again with this new order.", o.FailCode)
	case errors.Is(err, orders.ErrExpired), errors.Is(err, orders.ErrCancelled):
		msg := orders.Message(err)
		if reason, ok := orders.DeviceReasons[o.FailCode]; ok {
			msg = reason + " " + msg
		}
		s.beginFactorMsg(w, r, ar, f, fac, http.StatusConflict, msg+" This is a new one.", orders.Code(err))
	default:
		s.message(w, http.StatusBadRequest, "Sign-in already finished", "This signature was already used. Go back to the platform.", orders.Code(err))
	}
}

// orderCancel: POST /login/order/cancel (id, ref): the customer stops the
// order; the page offers the tools again.
func (s *Server) orderCancel(w http.ResponseWriter, r *http.Request) {
	ar, f, _, ok := s.orderFlow(w, r)
	if !ok {
		return
	}
	if err := s.orders.CancelByBrowser(r.Context(), f.Order, orders.BrowserHash(flowSecret(r, ar))); err != nil && !errors.Is(err, orders.ErrCancelled) {
		s.message(w, orders.Status(err), "Not cancelled", orders.Message(err), orders.Code(err))
		return
	}
	f.Order, f.Autostart = "", ""
	if !s.saveFlow(r.Context(), w, ar.ID, f) {
		return
	}
	fs := s.usableFactors(r.Context(), f.PassportID, ar.RequiredLevel())
	s.render(w, http.StatusOK, "factor_choose", page{ID: ar.ID, Client: ar.GetClientID(), Level: ar.RequiredLevel(), Factors: choicesOf(fs, nil),
		Error: "Cancelled. Choose a tool to try again.", ErrorCode: "order_cancelled"})
}

// factorLock is the tool's lockout today, nil when it is not locked.
func (s *Server) factorLock(ctx context.Context, pid, factor string) *authn.LockedError {
	sts, err := s.passport.FactorStates(ctx, pid, factor)
	if err != nil {
		return nil
	}
	for _, st := range sts {
		if st.Factor == factor && st.Locked {
			return &authn.LockedError{Factor: factor, Until: st.Until}
		}
	}
	return nil
}

// safeURL marks an egate:// autostart link as a URL for the templates
// (html/template refuses schemes it does not know). The link is built here
// from a reference and a token of URL-safe base64 and the escaped issuer.
func safeURL(link string) template.URL { return template.URL(link) }
