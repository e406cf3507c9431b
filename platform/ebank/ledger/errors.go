package ledger

import "errors"

// Error is a refusal of the ledger: a stable Code for programs (the HTTP
// API's error code) and a message a person can act on. Every refusal leaves
// the ledger as it was. The errors returned wrap one of the Err… values
// below with the details (accounts, amounts); test them with errors.Is and
// read the code with errors.As.
type Error struct {
	Code string
	msg  string
}

func (e *Error) Error() string { return e.msg }

// NewError makes a refusal of the same shape for the layers above the
// ledger (the ebank service's grant checks).
func NewError(code, msg string) *Error { return &Error{Code: code, msg: msg} }

// The ledger's refusals.
var (
	ErrAmount            = &Error{"invalid_amount", "the amount must be a whole number of fen above zero and at most 100 billion yuan"}
	ErrSameAccount       = &Error{"same_account", "the payer and the payee are the same account"}
	ErrUnknownAccount    = &Error{"unknown_account", "no such account"}
	ErrAccountNotOpen    = &Error{"account_not_open", "the account is frozen or closed"}
	ErrCurrency          = &Error{"currency_mismatch", "the accounts hold different currencies"}
	ErrInsufficientFunds = &Error{"insufficient_funds", "not enough money in the account"}
	ErrKeyReused         = &Error{"idempotency_key_reused", "this idempotency key was already used for a different movement: use a new key for a new movement"}
	ErrInvalidRequest    = &Error{"invalid_request", "the request is incomplete"}
	ErrUnknownTransfer   = &Error{"unknown_transfer", "no such transfer"}
	ErrNotPending        = &Error{"not_a_hold", "the transfer is not a hold"}
	ErrCaptured          = &Error{"hold_captured", "the hold was already captured"}
	ErrReleased          = &Error{"hold_released", "the hold was already released"}
	ErrExpired           = &Error{"hold_expired", "the hold has expired and is (or will be) released"}
	ErrOverHold          = &Error{"amount_over_hold", "the capture is larger than the hold"}
	ErrNotReversible     = &Error{"not_reversible", "only a posted transfer or a capture can be reversed"}
	ErrReversed          = &Error{"already_reversed", "the transfer was already reversed"}
)

// Code returns the stable code of a ledger refusal in err's chain, or "".
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
