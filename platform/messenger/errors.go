package messenger

import (
	"errors"
	"net/http"
)

// Error is a refusal of the messenger: a stable code, the HTTP status the
// pages answer with, and an English sentence (the pages show the
// catalogue's sentence "msg.err.<code>" in the customer's language).
// Nothing was changed by a request refused with one.
type Error struct {
	Code   string
	Status int
	msg    string
}

func (e *Error) Error() string { return e.msg }

func newErr(code string, status int, msg string) *Error {
	return &Error{Code: code, Status: status, msg: msg}
}

// The messenger's refusals.
var (
	ErrNoConversation  = newErr("no_conversation", http.StatusNotFound, "there is no such conversation")
	ErrNotMember       = newErr("not_member", http.StatusForbidden, "you are not in this conversation")
	ErrEmptyMessage    = newErr("empty_message", http.StatusBadRequest, "write something to send")
	ErrMessageTooLong  = newErr("message_too_long", http.StatusBadRequest, "a message has at most 2000 characters")
	ErrUnknownCustomer = newErr("unknown_customer", http.StatusNotFound, "nobody of that name uses the messenger")
	ErrSelf            = newErr("self", http.StatusUnprocessableEntity, "you cannot chat with or pay yourself")
	ErrBadAmount       = newErr("bad_amount", http.StatusBadRequest, "give an amount in yuan above zero, at most two decimals")
	ErrNoAccount       = newErr("no_account", http.StatusUnprocessableEntity, "there is no open current account to pay from or into")
	ErrFunds           = newErr("insufficient_funds", http.StatusUnprocessableEntity, "not enough money available in the account")
	ErrNotPayee        = newErr("not_payee", http.StatusUnprocessableEntity, "you can only pay another member of this conversation")
	ErrBadSplit        = newErr("aa_bad_split", http.StatusBadRequest, "the shares do not add up to the total, or the remainder is not assigned to a member")
	ErrAANoMembers     = newErr("aa_no_members", http.StatusBadRequest, "choose at least one member other than yourself")
	ErrAAUnknown       = newErr("aa_unknown", http.StatusNotFound, "there is no such AA collection")
	ErrAANotMember     = newErr("aa_not_member", http.StatusForbidden, "you have no share in this AA collection")
	ErrAAPaid          = newErr("aa_already_paid", http.StatusConflict, "your share is already paid")
	ErrAAClosed        = newErr("aa_closed", http.StatusConflict, "the collector has closed this AA collection")
	ErrAANotCollector  = newErr("aa_not_collector", http.StatusForbidden, "only the collector can close the collection")
	ErrQRUnknown       = newErr("qr_unknown", http.StatusNotFound, "this receive code is not one of ours")
	ErrQRExpired       = newErr("qr_expired", http.StatusGone, "this receive code has expired; ask the payee for a new one")
	ErrQRWrongPayee    = newErr("qr_wrong_payee", http.StatusConflict, "this receive code is for another payee than the one on the form")
	ErrQROwn           = newErr("qr_own", http.StatusUnprocessableEntity, "this is your own receive code")
	ErrPaymentRefused  = newErr("payment_refused", http.StatusUnprocessableEntity, "the bank refused the payment; nothing was paid")
	ErrProof           = newErr("bad_proof", http.StatusUnprocessableEntity, "the code was not accepted; nothing was paid")
	ErrLimit           = newErr("limit", http.StatusUnprocessableEntity, "this payment is over a limit")
	ErrDenied          = newErr("denied", http.StatusUnprocessableEntity, "the bank refused this payment")
	ErrReview          = newErr("review", http.StatusUnprocessableEntity, "this payment is held for the bank's review")
	ErrExpired         = newErr("form_expired", http.StatusUnprocessableEntity, "this form has expired; start again")
	ErrRateLimited     = newErr("rate_limited", http.StatusTooManyRequests, "too many codes were asked for; wait and try again, or choose another tool")
	ErrBadTitle        = newErr("bad_title", http.StatusBadRequest, "give the group a name of at most 60 characters")
)

// Codes lists every code (for the tests and the README).
var Codes = []*Error{ErrNoConversation, ErrNotMember, ErrEmptyMessage, ErrMessageTooLong, ErrUnknownCustomer, ErrSelf, ErrBadAmount,
	ErrNoAccount, ErrFunds, ErrNotPayee, ErrBadSplit, ErrAANoMembers, ErrAAUnknown, ErrAANotMember, ErrAAPaid, ErrAAClosed,
	ErrAANotCollector, ErrQRUnknown, ErrQRExpired, ErrQRWrongPayee, ErrQROwn, ErrPaymentRefused, ErrProof, ErrLimit, ErrDenied,
	ErrReview, ErrExpired, ErrBadTitle, ErrRateLimited}

// CodeOf returns err's code, or "" when it is not a refusal.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
