package txauth

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/orders"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/httpx"
)

// Orders is the seam to signing orders (authsvc/orders; *authsvc.Server
// is one): an intent confirmed with a tool the customer holds — a
// U-shield or a PIV token through the desktop helper, the phone app by the
// animated QR. The tool's challenge is bound to the intent's hash and
// shows its text; the device's signature is checked (chain to the bank CA,
// revocation, the text, the challenge consumed, the lockout counter) when
// the device posts it, and the order's result buys the grant once, for the
// browser that made the order only.
type Orders interface {
	// BeginTxOrder begins factor's transaction challenge for the intent
	// and makes the order that browser follows.
	BeginTxOrder(ctx context.Context, customer, factor, text string, intentHash []byte, browser, clientIP string) (txclient.Order, error)
	// TxOrderStatus is where the order is, for its browser only (another
	// gets orders.ErrUnknown).
	TxOrderStatus(ctx context.Context, ref, browser string, intentHash []byte) (txclient.OrderStatus, error)
	// FinishTxOrder takes a complete order's result, once, for its browser.
	FinishTxOrder(ctx context.Context, ref, browser string, intentHash []byte) (authn.Result, error)
}

// ErrNoOrders refuses an order where no signing-order service is wired.
var ErrNoOrders = apiErr(http.StatusBadRequest, "unknown_factor", "this tool signs through a signing order, which this service does not offer")

func validBrowser(b string) bool {
	if len(b) != 64 {
		return false
	}
	_, err := hex.DecodeString(b)
	return err == nil
}

// Order makes a signing order for the intent with one of the customer's
// signing tools at or above the intent's level.
func (s *Service) Order(ctx context.Context, hash string, req txclient.OrderRequest) (txclient.Order, error) {
	r, err := s.mustLoad(ctx, hash)
	if err != nil {
		return txclient.Order{}, err
	}
	if r.State != txclient.StateAllowed {
		return txclient.Order{}, stateErr(r.State)
	}
	if !validBrowser(req.Browser) {
		return txclient.Order{}, ErrBadRequest.with("browser must be the SHA-256 (64 hex digits) of a secret only the confirming browser holds")
	}
	lv, ok := s.tools.Level(req.Factor)
	if !ok {
		return txclient.Order{}, ErrUnknownFactor.with(fmt.Sprintf("factor %q: no such authentication tool here", req.Factor))
	}
	if lv < r.Level {
		return txclient.Order{}, ErrLevelTooLow.with(fmt.Sprintf("%s proves level %d; this payment needs level %d: use %s", req.Factor, lv, r.Level, reachWords(r.Level, s.counter.Table().Top())))
	}
	if s.orders == nil {
		return txclient.Order{}, ErrNoOrders
	}
	sum, _ := hex.DecodeString(hash)
	o, err := s.orders.BeginTxOrder(ctx, r.Customer, req.Factor, Text(r.Intent), sum, req.Browser, req.ClientIP)
	if err != nil {
		return txclient.Order{}, orderErr(err)
	}
	o.Level = lv
	return o, nil
}

// CollectOrder says where the intent's order is, for its browser.
func (s *Service) CollectOrder(ctx context.Context, hash string, req txclient.OrderCollect) (txclient.OrderStatus, error) {
	if !validHash(hash) {
		return txclient.OrderStatus{}, ErrUnknownIntent.with("the intent id is the 64 hex digits of its hash")
	}
	if s.orders == nil {
		return txclient.OrderStatus{}, orderErr(orders.ErrUnknown)
	}
	sum, _ := hex.DecodeString(hash)
	st, err := s.orders.TxOrderStatus(ctx, req.Ref, req.Browser, sum)
	if err != nil {
		return txclient.OrderStatus{}, orderErr(err)
	}
	return st, nil
}

// proofByOrder: the order's result, taken once by its browser, buys the
// grant at the level the signature reached.
func (s *Service) proofByOrder(ctx context.Context, r *row, hash string, req txclient.ProofRequest) (txclient.Grant, error) {
	if s.orders == nil {
		return txclient.Grant{}, orderErr(orders.ErrUnknown)
	}
	sum, _ := hex.DecodeString(hash)
	res, err := s.orders.FinishTxOrder(ctx, req.Order, req.Browser, sum)
	if err != nil {
		e := orderErr(err)
		if errors.Is(err, orders.ErrFailed) {
			// The device's signature was refused (audited as order.sign);
			// the intent's risk features count it as a failed attempt.
			s.db.Exec(ctx, `INSERT INTO tx_failures (customer, at_ms, intent_hash, factor) VALUES (?, ?, ?, ?)`, r.Customer, s.now().UnixMilli(), hash, res.Factor)
		}
		return txclient.Grant{}, e
	}
	if aerr := s.appendAudit(ctx, "tx.proof", map[string]string{"intent": hash, "customer": r.Customer, "factor": res.Factor, "result": "ok", "order": "yes"}); aerr != nil {
		return txclient.Grant{}, aerr
	}
	return s.issue(ctx, r, hash, res.Factor, res)
}

// orderErr maps a signing order's refusal (or a tool's, beginning one) to
// the API's: the orders' own codes and statuses, the tools' through the
// one table.
func orderErr(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	code := orders.Code(err)
	if code == ErrUnavailable.Code {
		return unavailable(err)
	}
	return &Error{Status: orders.Status(err), Code: code, Msg: orders.Message(err), Err: err}
}

func (s *Service) httpOrder(w http.ResponseWriter, r *http.Request) {
	var req txclient.OrderRequest
	b, err := readBody(w, r)
	if err == nil {
		if err = decodeStrict(b, &req); err == nil {
			var o txclient.Order
			if o, err = s.Order(r.Context(), r.PathValue("hash"), req); err == nil {
				httpx.WriteJSON(w, http.StatusCreated, o)
				return
			}
		}
	}
	writeErr(w, r, err)
}

func (s *Service) httpCollectOrder(w http.ResponseWriter, r *http.Request) {
	var req txclient.OrderCollect
	b, err := readBody(w, r)
	if err == nil {
		if err = decodeStrict(b, &req); err == nil {
			var st txclient.OrderStatus
			if st, err = s.CollectOrder(r.Context(), r.PathValue("hash"), req); err == nil {
				w.Header().Set("Cache-Control", "no-store")
				httpx.WriteJSON(w, http.StatusOK, st)
				return
			}
		}
	}
	writeErr(w, r, err)
}
