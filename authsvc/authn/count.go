package authn

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Every tool has exactly one lockout counter, and every answer — at login
// or for a transaction — is counted on it once, through Counted:
//
//   - a tool that keeps its own counter (SelfCounting: the SMS code's
//     wrong-code lockout, the grid card's attempts, the OTP token's
//     failures, which the bank's back-end verify API counts too) is
//     verified as it is; the passport only hears of a failure it counted
//     (Attempts.FactorFailed: the customer's alerts, the client IP's
//     count), and keeps no counter of its own for it;
//   - any other tool (U-shield, PIV) is counted on the passport's
//     per-customer, per-factor, per-day counter (Attempts.BeginFactor): an
//     attempt is reserved before the answer is checked and given back
//     when it checked nothing.

// Attempts is the passport's side of the counting (passport.Service).
type Attempts interface {
	// BeginFactor reserves an attempt of factor for the customer (a
	// *LockedError when none is left today); done must be called with
	// whether the attempt is to be given back.
	BeginFactor(ctx context.Context, passportID, factor string) (done func(ctx context.Context, ok bool, ip string) error, err error)
	// FactorFailed hears of a failure a self-counting tool counted on its
	// own counter: left attempts remain (0: this one locked the tool,
	// until until, or until the bank lifts it when until is zero; -1: the
	// tool did not say).
	FactorFailed(ctx context.Context, passportID, factor, ip string, left int, until time.Time) error
}

// SelfCounting is a Factor that keeps its own lockout counter.
type SelfCounting interface {
	CountsOwnFailures() bool
}

// CountsOwnFailures reports whether f keeps its own lockout counter.
func CountsOwnFailures(f Factor) bool {
	c, ok := f.(SelfCounting)
	return ok && c.CountsOwnFailures()
}

// WrongAnswerError is a wrong answer a self-counting tool counted: Left
// attempts remain before it locks; when Left is 0, this answer locked it
// until Until (zero: until the bank lifts it). It matches ErrWrongAnswer.
type WrongAnswerError struct {
	Tool  string // "SMS code", "grid card", "token 1234"
	Left  int
	Until time.Time
}

func (e *WrongAnswerError) Error() string {
	return fmt.Sprintf("%s: %s (%d tries left)", e.Tool, ErrWrongAnswer.Error(), e.Left)
}

func (e *WrongAnswerError) Unwrap() error { return ErrWrongAnswer }

// Failed reports whether err is a failure a counter takes: an answer that
// was checked and found wrong (ErrWrongAnswer), or a code already used
// (ErrReplay). Anything else checked no secret and counts nothing: bad
// input, an unknown, used or expired challenge, one begun for something
// else (ErrOtherTransaction), a revoked tool, a fault (ErrUnavailable).
func Failed(err error) bool {
	return errors.Is(err, ErrWrongAnswer) || errors.Is(err, ErrReplay)
}

// ErrNoAttempts: a tool counted on the passport's counter was verified
// without one (a wiring mistake; nothing was checked).
var ErrNoAttempts = errors.New("no attempts counter: the passport's counter guards this tool")

// Counted verifies req with f, counting a failure once, on f's one
// counter (see above). a may be nil only when f counts its own failures.
func Counted(ctx context.Context, f Factor, a Attempts, req VerifyRequest) (Result, error) {
	if CountsOwnFailures(f) {
		res, err := f.Verify(ctx, req)
		if a != nil && Failed(err) {
			left, until := -1, time.Time{}
			var we *WrongAnswerError
			var le *LockedError
			switch {
			case errors.As(err, &le):
				left, until = 0, le.Until
			case errors.As(err, &we):
				left, until = we.Left, we.Until
			}
			if ferr := a.FactorFailed(context.WithoutCancel(ctx), req.PassportID, f.Name(), req.ClientIP, left, until); ferr != nil {
				return res, fmt.Errorf("%w (and recording the failure: %w)", err, ferr)
			}
		}
		return res, err
	}
	if a == nil {
		return Result{}, fmt.Errorf("%s: %w", f.Name(), ErrNoAttempts)
	}
	done, err := a.BeginFactor(ctx, req.PassportID, f.Name())
	var le *LockedError
	if errors.As(err, &le) {
		return Result{}, err
	}
	if err != nil {
		return Result{}, fmt.Errorf("%w: counting the attempt: %w", ErrUnavailable, err)
	}
	res, err := f.Verify(ctx, req)
	// A slot that cannot be given back stays counted: the safe side.
	done(context.WithoutCancel(ctx), !Failed(err), req.ClientIP)
	return res, err
}
