package txauth

import (
	"net/http"

	"github.com/egate-bank/egate/authsvc/apierr"
)

// Error is a refusal of the API: an HTTP status, a stable code clients
// switch on, and a message a person can act on. It never carries a secret.
type Error struct {
	Status int
	Code   string
	Msg    string
	Err    error // the cause, when there is one
}

func (e *Error) Error() string { return e.Code + ": " + e.Msg }
func (e *Error) Unwrap() error { return e.Err }

func apiErr(status int, code, msg string) *Error { return &Error{Status: status, Code: code, Msg: msg} }

// Sentinels for errors.Is; every *Error with the same code matches.
var (
	ErrUnknownIntent = apiErr(http.StatusNotFound, "unknown_intent", "no intent with this hash; authorize it first")
	ErrKeyReused     = apiErr(http.StatusConflict, "idempotency_key_reused", "this idempotency key was used for an intent with other fields; use a new key for a new intent")
	ErrPayer         = apiErr(http.StatusForbidden, "payer_not_customers", "the payer account is not one of the customer's accounts")
	ErrUnknownFactor = apiErr(http.StatusBadRequest, "unknown_factor", "no such authentication tool")
	ErrLevelTooLow   = apiErr(http.StatusForbidden, "level_too_low", "this tool does not reach the level this intent needs")
	ErrChallengeFor  = apiErr(http.StatusConflict, "challenge_other_intent", "this challenge was begun for another intent")
	ErrIntentChanged = apiErr(http.StatusConflict, "intent_changed", "the intent sent is not the one this hash names: its fields changed after it was authorized; authorize the new intent")
	ErrChallengeOpen = apiErr(http.StatusConflict, "challenge_open", "a challenge an earlier authorize of this intent began is still open: answer it, or begin another with POST /v1/tx/{hash}/challenge")
	ErrUnknownChall  = apiErr(http.StatusNotFound, "unknown_challenge", "no such challenge; begin one")
	ErrLimit         = apiErr(http.StatusConflict, "limit_exceeded", "the amount no longer fits the limit")
	ErrUnknownGrant  = apiErr(http.StatusUnauthorized, "unknown_grant", "no such grant")
	ErrGrantUsed     = apiErr(http.StatusConflict, "grant_used", "this grant was already used (or the intent cancelled)")
	ErrGrantExpired  = apiErr(http.StatusGone, "grant_expired", "this grant has expired; authorize and prove the intent again")
	ErrGrantMismatch = apiErr(http.StatusConflict, "grant_mismatch", "this grant was issued for another intent; nothing was consumed")
	ErrBadRequest    = apiErr(apierr.InvalidRequest.Status, apierr.InvalidRequest.Name, "the request body is not valid")
	ErrUnavailable   = apiErr(http.StatusServiceUnavailable, "unavailable", "try again in a moment")
)

// Is matches another *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

func (e *Error) with(msg string) *Error {
	c := *e
	c.Msg = msg
	return &c
}

func unavailable(err error) *Error {
	c := *ErrUnavailable
	c.Err = err
	return &c
}

// stateErr refuses an action on an intent in a state that does not allow
// it.
func stateErr(state string) *Error {
	switch state {
	case "review":
		return apiErr(http.StatusConflict, "under_review", "the bank's staff is checking this intent; wait for their decision")
	case "denied":
		return apiErr(http.StatusConflict, "denied", "this intent was refused")
	case "refused":
		return apiErr(http.StatusConflict, "refused", "the bank's staff refused this intent")
	case "granted":
		return apiErr(http.StatusConflict, "already_granted", "this intent was already proved; execute it with its grant")
	case "executed":
		return apiErr(http.StatusConflict, "executed", "this intent was executed")
	case "cancelled":
		return apiErr(http.StatusConflict, "cancelled", "this intent was cancelled")
	}
	return apiErr(http.StatusConflict, "bad_state", "this intent cannot do that now")
}

// factorErr maps a tool's error to the API's through the one table of
// authsvc/apierr, so a tool's refusal has the same status and code here as
// on the login page and the OTP API. A fault of the bank's is unavailable.
func factorErr(err error) *Error {
	c := apierr.Of(err)
	if c == apierr.Unavailable {
		return unavailable(err)
	}
	return &Error{Status: c.Status, Code: c.Name, Msg: apierr.Message(err), Err: err}
}
