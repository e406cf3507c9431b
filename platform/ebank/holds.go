package ebank

import (
	"context"
	"fmt"
	"time"

	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// Movement is what a grant must authorize: the money a back-end caller
// asks the ledger to move (a hold, or a transfer posted at once).
type Movement struct {
	Kind   string // "hold" or "transfer"
	Origin string // the calling back-end client: mall, messenger, atm-agent, …
	Key    string // its idempotency key
	Debit  string // the payer's account number
	Credit string // the payee's account number
	Amount int64  // fen
	Code   string // what for: checkout, refund, friend-transfer, aa, receive-qr, atm-withdrawal
}

// GrantChecker decides whether grant authorizes m. The ledger never checks
// grants; the ebank service does, here, before it asks the ledger to move
// money. The implementation for production verifies the grant with the
// transaction-authorization service (authsvc/txauth): issued for exactly
// this movement (bound to the hash of its intent), not expired, and not
// used before, and consumes it. RequireGrant, the checker of this change,
// only refuses an empty grant.
//
// Capture and release are not new movements: they complete a hold, which
// a grant authorized when it was made, and a grant is good once. Holds
// checks instead that they name the hold's own grant and come from the
// client that made the hold.
type GrantChecker interface {
	CheckGrant(ctx context.Context, grant string, m Movement) error
}

// Refusals of the service above the ledger.
var (
	ErrNoGrant       = ledger.NewError("grant_required", "every movement needs the id of the grant that authorized it")
	ErrGrantMismatch = ledger.NewError("grant_mismatch", "this grant did not authorize this hold")
	ErrGrantRefused  = ledger.NewError("grant_refused", "the grant does not authorize this movement: it is for another movement, used or expired")
)

// RequireGrant is a GrantChecker that refuses an empty grant and accepts
// any other: what this change enforces until the transaction-authorization
// client is wired in.
type RequireGrant struct{}

// CheckGrant implements GrantChecker.
func (RequireGrant) CheckGrant(_ context.Context, grant string, _ Movement) error {
	if grant == "" {
		return ErrNoGrant
	}
	return nil
}

// Holds is the money-movement API for the bank's other platforms: the mall
// (checkout as a hold captured on shipping, refunds as transfers), the
// messenger (friend transfer, AA shares, receive by QR) and the ATM
// withdrawal (hold, capture what was dispensed, release). Every call
// names its origin (the authenticated back-end client) and an idempotency
// key; a hold or transfer carries the grant that authorized it.
type Holds struct {
	Ledger *ledger.Ledger
	Grants GrantChecker
	// DefaultTimeout is a hold's timeout when the caller gives none.
	DefaultTimeout time.Duration
}

// HoldRequest asks for a hold (Hold) or a transfer posted at once
// (Transfer, Timeout unused).
type HoldRequest struct {
	Origin, Key   string
	Debit, Credit string
	Amount        int64
	Grant         string
	Code, Memo    string
	Timeout       time.Duration
}

// Hold reserves the amount on the payer's account, after the grant check.
// The same request again (origin and key) returns the same hold without
// checking the grant again: no money moves twice, and a single-use grant
// was already spent on the first.
func (h *Holds) Hold(ctx context.Context, r HoldRequest) (ledger.Transfer, error) {
	if err := callerOrigin(r.Origin); err != nil {
		return ledger.Transfer{}, err
	}
	if r.Timeout == 0 {
		r.Timeout = h.DefaultTimeout
	}
	lr := ledger.Request{Origin: r.Origin, Key: r.Key, Debit: r.Debit, Credit: r.Credit, Amount: r.Amount, Grant: r.Grant, Code: r.Code, Memo: r.Memo, Timeout: r.Timeout}
	if err := h.checkGrant(ctx, "hold", lr); err != nil {
		return ledger.Transfer{}, err
	}
	return h.Ledger.Hold(ctx, lr)
}

// Transfer moves the amount at once (a friend transfer, a refund), after
// the grant check; replays as Hold does.
func (h *Holds) Transfer(ctx context.Context, r HoldRequest) (ledger.Transfer, error) {
	if err := callerOrigin(r.Origin); err != nil {
		return ledger.Transfer{}, err
	}
	lr := ledger.Request{Origin: r.Origin, Key: r.Key, Debit: r.Debit, Credit: r.Credit, Amount: r.Amount, Grant: r.Grant, Code: r.Code, Memo: r.Memo}
	if err := h.checkGrant(ctx, "transfer", lr); err != nil {
		return ledger.Transfer{}, err
	}
	return h.Ledger.Transfer(ctx, lr)
}

// checkGrant asks the GrantChecker about a new movement; a request whose
// key was used before goes straight to the ledger, which replays it or
// refuses it as a reused key.
func (h *Holds) checkGrant(ctx context.Context, kind string, r ledger.Request) error {
	if r.Origin == "" || r.Key == "" {
		return nil // the ledger refuses it with its own message
	}
	if _, seen, err := h.Ledger.Lookup(ctx, r.Origin, r.Key); err != nil || seen {
		return err
	}
	if r.Grant == "" {
		return ErrNoGrant
	}
	code := r.Code
	if code == "" {
		code = "transfer"
	}
	return h.Grants.CheckGrant(ctx, r.Grant, Movement{Kind: kind, Origin: r.Origin, Key: r.Key, Debit: r.Debit, Credit: r.Credit, Amount: r.Amount, Code: code})
}

// Capture posts amount (≤ held) of the origin's hold; the rest is released.
// grant must be the hold's grant.
func (h *Holds) Capture(ctx context.Context, origin, key, hold string, amount int64, grant string) (ledger.Transfer, error) {
	if err := h.owned(ctx, origin, hold, grant); err != nil {
		return ledger.Transfer{}, err
	}
	return h.Ledger.Post(ctx, ledger.Resolve{Origin: origin, Key: key, Pending: hold, Amount: amount, Grant: grant})
}

// Release voids the origin's hold. grant must be the hold's grant.
func (h *Holds) Release(ctx context.Context, origin, key, hold, grant string) (ledger.Transfer, error) {
	if err := h.owned(ctx, origin, hold, grant); err != nil {
		return ledger.Transfer{}, err
	}
	return h.Ledger.Void(ctx, ledger.Resolve{Origin: origin, Key: key, Pending: hold, Grant: grant})
}

// Get returns a transfer the origin made (a hold with its state). Another
// client's transfers are unknown to it.
func (h *Holds) Get(ctx context.Context, origin, id string) (ledger.Transfer, error) {
	t, err := h.Ledger.Get(ctx, id)
	if err != nil {
		return ledger.Transfer{}, err
	}
	if t.Origin != origin {
		return ledger.Transfer{}, fmt.Errorf("%w: %s", ledger.ErrUnknownTransfer, id)
	}
	return t, nil
}

func (h *Holds) owned(ctx context.Context, origin, hold, grant string) error {
	if err := callerOrigin(origin); err != nil {
		return err
	}
	t, err := h.Get(ctx, origin, hold)
	if err != nil {
		return err
	}
	if grant == "" {
		return ErrNoGrant
	}
	if t.Kind == ledger.KindPending && t.Grant != grant {
		return fmt.Errorf("%w: hold %s was made with another grant", ErrGrantMismatch, hold)
	}
	return nil
}

// callerOrigin refuses the origins the bank keeps for itself: "bank"
// (opening balances) and "ledger" (the expiry sweep), so that no back-end
// client shares their idempotency keys.
func callerOrigin(origin string) error {
	if origin == ledger.BankOwner || origin == ledger.OriginLedger {
		return fmt.Errorf("%w: the origin %q is the bank's own; register the back-end client under another id", ledger.ErrInvalidRequest, origin)
	}
	return nil
}

// ExpireEvery runs the expiry sweep every interval until ctx ends; report
// receives each sweep's error (nil included, with the count released).
// Every replica may run it: a hold is released once.
func (h *Holds) ExpireEvery(ctx context.Context, interval time.Duration, report func(n int, err error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := h.Ledger.ExpireHolds(ctx, 1000)
			if report != nil {
				report(n, err)
			}
		}
	}
}
