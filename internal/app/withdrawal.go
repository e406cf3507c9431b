package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/egate-bank/egate/atm/withdrawal"
	"github.com/egate-bank/egate/authsvc/txauth"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/money"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// WithdrawalOrigin is the ledger origin (the back-end client) of ATM
// withdrawals' holds.
const WithdrawalOrigin = "atm-withdrawal"

// WithdrawalLedger is ebank's holds as the withdrawal's Ledger: a hold from
// the customer's account to the bank's atm-cash account, captured for what
// the ATM paid out, released for the rest. A refusal of the ledger (funds,
// account not open, a grant refused) is withdrawal.ErrHoldRefused, carrying
// a *withdrawal.Refusal the phone shows.
type WithdrawalLedger struct {
	Holds *ebank.Holds
	// Cash is the number of the bank's atm-cash account.
	Cash string
	// Intents, when set, cancels the withdrawal's transaction intent when
	// the ledger refuses its hold: the grant was executed (its limit usage
	// counted) before the hold, and the balance may have been spent in
	// between; the withdrawal ends NOT_DISPENSED with nothing held, so the
	// customer's limit usage must come back.
	Intents *WithdrawalIntents
}

var _ withdrawal.Ledger = WithdrawalLedger{}

// NewWithdrawalLedger finds the atm-cash account (opened by
// ebank.EnsureBankAccounts).
func NewWithdrawalLedger(ctx context.Context, h *ebank.Holds) (WithdrawalLedger, error) {
	a, err := h.Ledger.BankAccount(ctx, ebank.LabelATMCash)
	if err != nil {
		return WithdrawalLedger{}, fmt.Errorf("the bank's %s account: %w", ebank.LabelATMCash, err)
	}
	return WithdrawalLedger{Holds: h, Cash: a.Number}, nil
}

// Hold implements withdrawal.Ledger. A refused hold first cancels the
// withdrawal's intent (Intents; the session is in key
// atm-wd:<session>:hold), then answers the refusal.
func (l WithdrawalLedger) Hold(ctx context.Context, key, account string, amount int64, grant string) (string, error) {
	t, err := l.Holds.Hold(ctx, ebank.HoldRequest{Origin: WithdrawalOrigin, Key: key, Debit: account, Credit: l.Cash,
		Amount: amount, Grant: grant, Code: "atm-withdrawal"})
	if err == nil {
		return t.ID, nil
	}
	code := ledger.Code(err)
	if code == "" {
		return "", err // the ledger cannot say now: Recover holds again
	}
	if l.Intents != nil {
		if session, ok := holdSession(key); ok {
			l.Intents.Cancel(context.WithoutCancel(ctx), session, "the ledger refused the withdrawal's hold: "+code)
		}
	}
	rf := &withdrawal.Refusal{Status: http.StatusForbidden, Code: "hold_refused", Err: err,
		Message: fmt.Sprintf("the bank could not set %s yuan aside on account %s (%s): nothing was paid out and your limit is as it was", money.Yuan(amount), account, err.Error())}
	if code == ledger.ErrInsufficientFunds.Code {
		rf.Status, rf.Code = http.StatusUnprocessableEntity, code
		rf.Message = fmt.Sprintf("account %s no longer holds %s yuan (it was spent while the withdrawal was being approved): nothing was paid out and your limit is as it was; choose a smaller amount", account, money.Yuan(amount))
	}
	return "", fmt.Errorf("%w: %w", withdrawal.ErrHoldRefused, rf)
}

// alreadyCancelled says whether txauth refused a cancel because the intent
// is cancelled already (in process or over HTTP).
func alreadyCancelled(err error) bool {
	var te *txauth.Error
	var ae *txclient.APIError
	return errors.As(err, &te) && te.Code == "cancelled" || errors.As(err, &ae) && ae.Code == "cancelled"
}

// holdSession is the session of a withdrawal's hold key
// (atm-wd:<session>:hold, atm/withdrawal).
func holdSession(key string) (string, bool) {
	s, ok := strings.CutPrefix(key, "atm-wd:")
	if !ok {
		return "", false
	}
	s, ok = strings.CutSuffix(s, ":hold")
	return s, ok && s != ""
}

// WithdrawalIntents cancels the transaction intent a withdrawal's grant
// was executed for (recorded by WithdrawalAuthorizer in
// atm_withdrawal_intents): its limit usage comes back. An intent found
// cancelled already is no error (a refused hold cancels it, and
// WithdrawalSettled may follow for the same withdrawal).
type WithdrawalIntents struct {
	Tx TxAPI
	DB *store.DB
	// OnError hears a cancel that failed (the customer's limit usage stays
	// counted until an operator cancels it).
	OnError func(error)
}

// Cancel cancels the intent of session, if one was recorded.
func (w *WithdrawalIntents) Cancel(ctx context.Context, session, reason string) error {
	var hash string
	err := w.DB.QueryRow(ctx, `SELECT intent_hash FROM atm_withdrawal_intents WHERE session = ?`, session).Scan(&hash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil // authorized before intents were recorded, or by another authorizer
	case err == nil:
		if _, err = w.Tx.Cancel(ctx, hash, reason); alreadyCancelled(err) {
			err = nil // by the other path (a refused hold, then OnSettled)
		}
	}
	if err != nil {
		err = fmt.Errorf("cancelling the intent of withdrawal %s: %w", session, err)
		if w.OnError != nil {
			w.OnError(err)
		}
	}
	return err
}

// Capture implements withdrawal.Ledger.
func (l WithdrawalLedger) Capture(ctx context.Context, key, hold string, amount int64, grant string) error {
	_, err := l.Holds.Capture(ctx, WithdrawalOrigin, key, hold, amount, grant)
	return err
}

// Release implements withdrawal.Ledger.
func (l WithdrawalLedger) Release(ctx context.Context, key, hold, grant string) error {
	_, err := l.Holds.Release(ctx, WithdrawalOrigin, key, hold, grant)
	return err
}
