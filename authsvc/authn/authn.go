// Package authn is the seam between the passport's login steps (and
// transaction authorization) and the tools a customer proves with: SMS codes,
// grid cards, dynamic-password tokens, U-shields and PIV tokens. Each tool is a
// Factor; the passport asks the registry for the factors a customer has at or
// above the level it needs, begins a challenge, and verifies the answer.
//
// Every challenge is single use and short lived, bound to a purpose (a login
// or one transaction's canonical hash) and to the customer; every tool
// keeps them in one store (authsvc/challenge) and an answer says what it is
// for (VerifyRequest.Purpose, TxHash), so a challenge answers nothing else.
// A wrong answer counts once, on the tool's one lockout counter (Counted:
// the tool's own, or the passport's per-factor counter). An answer that
// could not be checked (the HSM or the database failed: ErrUnavailable) is
// no failure: it counts nothing and leaves the challenge open.
package authn

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Level is an authentication level of DESIGN.md §2: 1 password, 2 SMS or grid
// card, 3 dynamic-password token, 4 U-shield 1st gen or PIV, 5 U-shield 2nd gen.
type Level int

// Purpose says what a challenge authorizes.
type Purpose string

const (
	PurposeLogin       Purpose = "login"
	PurposeTransaction Purpose = "transaction"
)

// BeginRequest starts a proof.
type BeginRequest struct {
	PassportID string
	Purpose    Purpose
	// For transactions: the human-readable text the customer confirms (what a
	// 2nd-generation U-shield displays), and the intent's canonical hash the
	// challenge is bound to.
	TxText string
	TxHash []byte
	// TxLang is the language TxText is in (intent.LangZH, or empty or
	// intent.LangEN for English): a tool that wraps the text in words of
	// its own (the SMS) says them in that language.
	TxLang   string
	ClientIP string
}

// Challenge is what the customer is asked.
type Challenge struct {
	ID        string // opaque, single use
	Factor    string // the factor's Name
	Prompt    string // what to show: "Enter cells B3, F7, A1 of card 1234", "Code sent to 138****5678"
	Data      []byte // what a device must sign or compute over (server nonce, OCRA question); may be nil
	ExpiresAt time.Time
}

// VerifyRequest carries the customer's answer, and what the caller takes
// it for: Purpose (empty means PurposeLogin) and, for a transaction, the
// intent's canonical hash. A challenge answers only the purpose and hash it
// was begun for: anything else is refused with ErrOtherTransaction before
// the answer is looked at, so it costs no attempt and leaves the challenge
// as it was (authsvc/challenge checks it for every tool).
type VerifyRequest struct {
	PassportID  string
	ChallengeID string
	Response    []byte // the code, the grid answer, or an encoded signature proof
	ClientIP    string
	Purpose     Purpose
	TxHash      []byte
}

// Answer is the VerifyRequest that answers challenge id, begun with b,
// with resp: the same customer, client, purpose and transaction hash.
func (b BeginRequest) Answer(id string, resp []byte) VerifyRequest {
	return VerifyRequest{PassportID: b.PassportID, ChallengeID: id, Response: resp, ClientIP: b.ClientIP, Purpose: b.Purpose, TxHash: b.TxHash}
}

// Want is the purpose the request is for: PurposeLogin when unset.
func (r VerifyRequest) Want() Purpose {
	if r.Purpose == "" {
		return PurposeLogin
	}
	return r.Purpose
}

// Result is a successful proof.
type Result struct {
	Factor string
	Level  Level
	AMR    string // RFC 8176 method: "sms", "otp", "hwk", "swk", "pin", …
	// ConfirmedOnDevice is true when the customer confirmed the transaction on
	// the device's own display (2nd-generation U-shield).
	ConfirmedOnDevice bool
}

// Factor is one authentication tool.
type Factor interface {
	Name() string
	Level() Level
	// Enrolled reports whether the customer has a usable tool of this kind.
	Enrolled(ctx context.Context, passportID string) (bool, error)
	Begin(ctx context.Context, req BeginRequest) (Challenge, error)
	Verify(ctx context.Context, req VerifyRequest) (Result, error)
}

// Errors every factor returns (wrapped with %w, with detail that is safe to
// show). authsvc/apierr maps them to HTTP statuses and stable codes.
var (
	ErrWrongAnswer = errors.New("the answer is not correct")
	ErrLocked      = errors.New("this authentication tool is locked after too many failures")
	ErrExpired     = errors.New("the challenge has expired; start again")
	ErrUsed        = errors.New("the challenge was already used; start again")
	ErrUnknown     = errors.New("no such challenge")
	ErrNotEnrolled = errors.New("the customer has no such authentication tool")
	ErrRevoked     = errors.New("the authentication tool was revoked or reported lost")
	ErrRateLimited = errors.New("too many requests; wait before trying again")
	ErrReplay      = errors.New("this code was already used")
	ErrBadResponse = errors.New("the response is malformed")
	// ErrUnavailable: the answer could not be checked because a device the
	// check needs (the HSM) or the database failed. Not the customer's
	// fault: the factor counts no failure, gives back the challenge, and
	// the HTTP layer answers 503 "try again".
	ErrUnavailable = errors.New("the authentication tool is temporarily unavailable; try again in a moment")
	// ErrOtherTransaction: the challenge was begun for another purpose or
	// another transaction than the answer is given for. It wraps
	// ErrUnknown (the HTTP layer treats it as an unknown challenge).
	ErrOtherTransaction = fmt.Errorf("%w: the challenge was made for another transaction", ErrUnknown)
)

// LockedError tells the customer when a locked tool unlocks by itself.
type LockedError struct {
	Factor string
	Until  time.Time // zero when only an operator can unlock
}

func (e *LockedError) Error() string {
	if e.Until.IsZero() {
		return e.Factor + " is locked after too many failures; ask the bank to unlock it"
	}
	return e.Factor + " is locked after too many failures until " + e.Until.UTC().Format(time.RFC3339)
}

func (e *LockedError) Unwrap() error { return ErrLocked }
