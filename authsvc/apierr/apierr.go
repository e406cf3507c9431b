// Package apierr is the one table of egate's stable error codes: for each
// code the HTTP status it is answered with and the message a person can act
// on, and which typed error (authn's factor errors, the passport's) maps to
// which code. Every JSON API of authsvc and its tools answers a refusal with
// Write or WriteCode, in the one shape of internal/httpx
// ({"error":{"code","message","request_id"}}); the login pages show the
// same code in data-code and the same message.
//
// The table lives here, below every authsvc package that serves HTTP, so
// that the tools' own APIs (authsvc/oath, authsvc/ca) use it without an
// import cycle: apierr imports authn and nothing else of authsvc. A
// package's own refusal that authn does not name (otp.ErrUnknownToken,
// ca.ErrNotInitialized, passport.ErrBadCredentials) is answered with its
// row (UnknownToken, NotInitialized, BadCredentials) where that package's
// handler meets it, or wrapped with Wrap so Of finds the row.
//
// The codes and their statuses are listed in authsvc/README.md ("Error
// codes"); TestCodesAreDocumented checks that list against Codes.
package apierr

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/internal/httpx"
)

// Code is one row of the table.
type Code struct {
	Status int    // the HTTP status of a JSON answer
	Name   string // the stable code clients switch on
	// Message is what a person is told when the error itself says
	// nothing safer or more precise.
	Message string
	// Detail: the error's own text is shown instead of Message. Only for
	// client faults whose wrapping sites promise text that is safe and
	// helps (which digit count a code needs, when a lock ends); never for
	// a fault of the bank's own (its text may name devices or tables).
	Detail bool
}

// The rows. Every code an authsvc JSON handler writes is one of these
// (TestCodesAreDocumented; the handlers use the rows, not strings).
var (
	// Shared by every tool (authn's errors).
	Unavailable      = Code{http.StatusServiceUnavailable, "unavailable", "the service is temporarily unavailable; try again in a moment", false}
	Locked           = Code{http.StatusLocked, "locked", authn.ErrLocked.Error(), true}
	WrongAnswer      = Code{http.StatusUnauthorized, "wrong_answer", authn.ErrWrongAnswer.Error(), false}
	Replay           = Code{http.StatusConflict, "replay", authn.ErrReplay.Error() + "; wait for the next one", false}
	Expired          = Code{http.StatusGone, "expired", authn.ErrExpired.Error(), false}
	Used             = Code{http.StatusConflict, "used", authn.ErrUsed.Error(), false}
	UnknownChallenge = Code{http.StatusNotFound, "unknown_challenge", authn.ErrUnknown.Error(), false}
	NotEnrolled      = Code{http.StatusBadRequest, "not_enrolled", authn.ErrNotEnrolled.Error(), false}
	Revoked          = Code{http.StatusForbidden, "revoked", authn.ErrRevoked.Error(), true}
	RateLimited      = Code{http.StatusTooManyRequests, "rate_limited", authn.ErrRateLimited.Error(), false}
	BadResponse      = Code{http.StatusBadRequest, "bad_response", authn.ErrBadResponse.Error(), true}

	// The OTP verify API's own (authsvc/oath).
	UnknownToken = Code{http.StatusNotFound, "unknown_token", "no such token", false}
	Ambiguous    = Code{http.StatusBadRequest, "ambiguous", "the customer has several tokens; give the token serial", true}

	// The bank CA (authsvc/ca).
	NotInitialized = Code{http.StatusServiceUnavailable, "not_initialized", "the CA is not initialised; run egate admin ca init", false}
	// A PIV card's attestation of the key it made, at enrolment
	// (authsvc/pivauth): missing, not chaining to a vendor root the bank
	// accepts, for another key or slot, or a key without a PIN.
	BadAttestation = Code{http.StatusBadRequest, "bad_attestation", "the token's attestation of its new key is missing or not valid: enrol a genuine token of a vendor the bank accepts", false}

	// The passport's (authsvc/passport).
	BadCredentials = Code{http.StatusUnauthorized, "bad_credentials", "the login name or the password is not correct", false}
	WeakPassword   = Code{http.StatusUnprocessableEntity, "weak_password", "the new password is too weak", true}
	IPLimited      = Code{http.StatusTooManyRequests, "ip_limited", "too many failed logins from this network today; try again tomorrow", true}
	// The login flow's, where a JSON call (the order page's poll, the
	// phone app's binding) meets them.
	CaptchaRequired = Code{http.StatusForbidden, "captcha_required", "after a failed sign-in, sign in once on the bank's web page first", false}
	LoginExpired    = Code{http.StatusNotFound, "login_expired", "this sign-in has expired or is unknown; start again at the platform", false}
	UnknownBinding  = Code{http.StatusNotFound, "unknown_binding", "this binding has expired or was used; start again", false}

	// The request itself and its credentials.
	InvalidRequest    = Code{http.StatusBadRequest, "invalid_request", "the request is malformed", false}
	NotFound          = Code{http.StatusNotFound, "not_found", "no such API", false}
	Unauthorized      = Code{http.StatusUnauthorized, "unauthorized", "send an access token: Authorization: Bearer <token>", false}
	InvalidToken      = Code{http.StatusUnauthorized, "invalid_token", "the access token is invalid, expired or revoked", false}
	WrongClient       = Code{http.StatusForbidden, "wrong_client", "this API is not for the platform the access token was issued to", false}
	InvalidClient     = Code{http.StatusUnauthorized, "invalid_client", "unknown back-end client or wrong secret", false}
	InsufficientScope = Code{http.StatusForbidden, "insufficient_scope", "the credentials do not allow this API", false}
	Internal          = Code{http.StatusInternalServerError, "internal", "an internal error occurred; quote the request id when you report it", false}

	// The customer's self-service (/api/v1/self…).
	StepUpRequired = Code{http.StatusForbidden, "step_up_required", "this needs a higher authentication level: log in again with a stronger tool", false}
	LimitAboveBank = Code{http.StatusUnprocessableEntity, "limit_above_bank", "a customer can lower a limit, not raise it past the bank's", true}
	TokenTaken     = Code{http.StatusConflict, "token_taken", "this token cannot be bound: it is another customer's or revoked; ask the bank", false}
	UnknownTool    = Code{http.StatusNotFound, "no_such_tool", "you have no such tool in use (already revoked, or not yours)", false}
	WeakPIN        = Code{http.StatusUnprocessableEntity, "weak_pin", "the withdrawal PIN is too easy to guess (one digit repeated, or digits in a run): choose another", true}
)

// Codes returns every row, for the documentation test and for tools that
// list the codes.
func Codes() []Code {
	return []Code{
		Unavailable, Locked, WrongAnswer, Replay, Expired, Used, UnknownChallenge, NotEnrolled, Revoked, RateLimited, BadResponse,
		UnknownToken, Ambiguous, NotInitialized, BadAttestation,
		BadCredentials, WeakPassword, IPLimited, CaptchaRequired, LoginExpired, UnknownBinding,
		InvalidRequest, NotFound, Unauthorized, InvalidToken, WrongClient, InvalidClient, InsufficientScope, Internal,
		StepUpRequired, LimitAboveBank, TokenTaken, UnknownTool, WeakPIN,
	}
}

// byError maps the typed errors every tool returns to their rows, first
// match first: an error that wraps two sentinels (a tool unavailable
// while locked) is answered by the one nearer the top.
var byError = []struct {
	err  error
	code Code
}{
	{authn.ErrUnavailable, Unavailable},
	{authn.ErrLocked, Locked}, // *authn.LockedError unwraps to it
	{authn.ErrWrongAnswer, WrongAnswer},
	{authn.ErrReplay, Replay},
	{authn.ErrExpired, Expired},
	{authn.ErrUsed, Used},
	{authn.ErrUnknown, UnknownChallenge},
	{authn.ErrNotEnrolled, NotEnrolled},
	{authn.ErrRevoked, Revoked},
	{authn.ErrRateLimited, RateLimited},
	{authn.ErrBadResponse, BadResponse},
}

// Error is an error that names its row: what a handler returns (or a
// package declares) when authn has no sentinel for it.
type Error struct {
	Code Code
	Err  error // the cause; may be nil
}

// Wrap returns err carrying code c, so that Of(err) is c.
func Wrap(c Code, err error) error { return &Error{Code: c, Err: err} }

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Code.Message
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Of returns err's row: an *Error's own, else the first of authn's errors
// that err matches, else Unavailable (a fault of the bank's, never the
// caller's: its text is not shown).
func Of(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	for _, b := range byError {
		if errors.Is(err, b.err) {
			return b.code
		}
	}
	return Unavailable
}

// Message is what a person is told about err: for a lock the
// *authn.LockedError's own sentence (which tool, until when), else err's
// text for a row with Detail, else the row's message.
func Message(err error) string {
	c := Of(err)
	var le *authn.LockedError
	switch {
	case c == Locked && errors.As(err, &le):
		return le.Error()
	case c.Detail && err != nil:
		return err.Error()
	}
	return c.Message
}

// RetryAfter is the Retry-After a refusal with err carries, in seconds at
// now, or 0 for none: a lock that ends by itself until its end (rounded
// up), a fault of the bank's 1.
func RetryAfter(err error, now time.Time) int {
	var le *authn.LockedError
	switch c := Of(err); {
	case errors.As(err, &le) && c == Locked:
		if le.Until.IsZero() || !le.Until.After(now) {
			return 0
		}
		return int((le.Until.Sub(now) + time.Second - 1) / time.Second)
	case c == Unavailable:
		return 1
	}
	return 0
}

// Write answers err in the one JSON error shape: its row's status and
// code, Message(err), and Retry-After where RetryAfter gives one.
func Write(w http.ResponseWriter, r *http.Request, now time.Time, err error) {
	if s := RetryAfter(err, now); s > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(s))
	}
	c := Of(err)
	httpx.WriteError(w, r, c.Status, c.Name, Message(err))
}

// WriteCode answers with row c; msg replaces the row's message when it is
// not empty (a more precise, equally safe sentence). Unavailable carries
// Retry-After: 1, as from Write.
func WriteCode(w http.ResponseWriter, r *http.Request, c Code, msg string) {
	if c == Unavailable {
		w.Header().Set("Retry-After", "1")
	}
	if msg == "" {
		msg = c.Message
	}
	httpx.WriteError(w, r, c.Status, c.Name, msg)
}
