package authsvc

import (
	"context"
	"fmt"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/orders"
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
