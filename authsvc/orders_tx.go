package authsvc

import (
	"bytes"
	"context"
	"fmt"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/orders"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/i18n"
)

// TxOrderRequest asks for a transaction's signing order: the customer's
// tool signs the transaction text and a challenge bound to the intent's
// canonical hash.
type TxOrderRequest struct {
	PassportID string
	Factor     string // a signature tool: ushield, ushield2, piv, phone
	Text       string // what the customer must see (platform, payee, amount)
	IntentHash []byte // the intent's canonical hash, bound to the challenge
	Browser    string // orders.BrowserHash of the confirming page's browser secret
	ClientIP   string
}

// BeginTransactionOrder begins the tool's transaction challenge (bound to
// the intent hash; single use, short lived) and makes the signing order the
// confirmation page follows: the autostart link's token is returned for a
// desktop tool, the animated QR comes from Orders().QRContent for the
// phone. The order's result (Orders().Finish by the same browser, once)
// carries the level the signature reached; the tool consumed its challenge.
func (s *Server) BeginTransactionOrder(ctx context.Context, req TxOrderRequest) (*orders.Order, string, error) {
	fac := s.factorNamed(req.Factor)
	if fac == nil || !answerIsProof(fac) {
		return nil, "", fmt.Errorf("transaction order: %q is not a signature tool here: %w", req.Factor, authn.ErrNotEnrolled)
	}
	if len(req.IntentHash) == 0 {
		return nil, "", fmt.Errorf("transaction order: the intent hash is required")
	}
	ch, err := fac.Begin(ctx, authn.BeginRequest{PassportID: req.PassportID, Purpose: authn.PurposeTransaction, TxText: req.Text, TxHash: req.IntentHash, ClientIP: req.ClientIP})
	if err != nil {
		return nil, "", err
	}
	text, challenge, ok := orders.SplitSigned(ch.Data)
	if !ok || text != req.Text {
		return nil, "", fmt.Errorf("transaction order: the tool's challenge is not the text and a challenge")
	}
	return s.orders.Create(ctx, orders.CreateRequest{Kind: orders.KindTransaction, PassportID: req.PassportID, Factor: fac.Name(), ChallengeID: ch.ID,
		Context: fmt.Sprintf("%x", req.IntentHash), Text: text, Challenge: challenge, IntentHash: req.IntentHash, Browser: req.Browser, ExpiresAt: ch.ExpiresAt})
}

// BeginTxOrder is txauth's seam (txauth.Orders): the transaction API's
// POST /v1/tx/{hash}/order. A tool locked today gets no order (its
// signature would be refused).
func (s *Server) BeginTxOrder(ctx context.Context, customer, factor, text string, intentHash []byte, browser, clientIP string) (txclient.Order, error) {
	fac := s.factorNamed(factor)
	if fac == nil || !answerIsProof(fac) {
		return txclient.Order{}, fmt.Errorf("%q signs no order: %w", factor, authn.ErrNotEnrolled)
	}
	if le := s.factorLock(ctx, customer, fac.Name()); le != nil {
		return txclient.Order{}, le
	}
	o, auto, err := s.BeginTransactionOrder(ctx, TxOrderRequest{PassportID: customer, Factor: factor, Text: text, IntentHash: intentHash, Browser: browser, ClientIP: clientIP})
	if err != nil {
		return txclient.Order{}, err
	}
	out := txclient.Order{Ref: o.Ref, Factor: o.Factor, Text: string(o.Data), ByQR: answersByQR(fac), ExpiresAt: o.ExpiresAt.UTC()}
	if !out.ByQR {
		out.Autostart = orders.AutostartLink(s.cfg.Issuer, o.Ref, auto)
	}
	return out, nil
}

// txOrder is the transaction order ref of browser for the intent; any
// other order (another browser's, a login's, another intent's) is unknown.
func (s *Server) txOrder(ctx context.Context, ref, browser string, intentHash []byte) (*orders.Order, error) {
	o, err := s.orders.Collect(ctx, ref, browser)
	if err != nil {
		return nil, err
	}
	if o.Kind != orders.KindTransaction || !bytes.Equal(o.IntentHash, intentHash) {
		return nil, orders.ErrUnknown
	}
	return o, nil
}

// TxOrderStatus is txauth's seam: POST /v1/tx/{hash}/order/collect, the
// confirming page's poll (with the animated QR's current image for the
// phone app).
func (s *Server) TxOrderStatus(ctx context.Context, ref, browser string, intentHash []byte) (txclient.OrderStatus, error) {
	o, err := s.txOrder(ctx, ref, browser, intentHash)
	if err != nil {
		return txclient.OrderStatus{}, err
	}
	st := s.orderStatusOf(i18n.In(i18n.EN, nil), o) // txauth's page says it again in its language
	return txclient.OrderStatus{Ref: o.Ref, State: st.State, Code: st.Code, Message: st.Message, QR: st.QR}, nil
}

// FinishTxOrder is txauth's seam: a proof by order takes the complete
// order's result once. A failed order's error carries the tool's name in
// the result (for the intent's failure count).
func (s *Server) FinishTxOrder(ctx context.Context, ref, browser string, intentHash []byte) (authn.Result, error) {
	if _, err := s.txOrder(ctx, ref, browser, intentHash); err != nil {
		return authn.Result{}, err
	}
	o, err := s.orders.Finish(ctx, ref, browser)
	if err != nil {
		res := authn.Result{}
		if o != nil {
			res.Factor = o.Factor
			if o.State == orders.Failed {
				err = fmt.Errorf("%w (%s)", err, orders.MessageForCode(o.FailCode))
			}
		}
		return res, err
	}
	return o.Result, nil
}
