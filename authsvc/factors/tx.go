package factors

import (
	"context"
	"errors"
	"fmt"

	"github.com/egate-bank/egate/authsvc/authn"
)

// ErrOtherTransaction refuses an answer to a challenge that was begun for
// another transaction (or for a login). It is authn.ErrOtherTransaction
// (which wraps authn.ErrUnknown, so the HTTP layer treats it like an
// unknown challenge); the challenge is left as it was.
var ErrOtherTransaction = authn.ErrOtherTransaction

// ErrNoTxHash refuses a transaction verification without the intent's hash.
var ErrNoTxHash = errors.New("a transaction verification needs the intent's hash")

// VerifyTransaction is the verify call of transaction authorization: the
// answer is handed to the factor's Verify as given for
// authn.PurposeTransaction and exactly txHash. Every tool opens its
// challenge in the one store (authsvc/challenge), which refuses a challenge
// begun for another intent, or for a login, with ErrOtherTransaction
// before the answer is looked at, so it costs no attempt and leaves the
// challenge usable; then the tool checks the answer, the customer, expiry
// and single use, and the answer is counted once on the tool's one lockout
// counter, the same as at login (authn.Counted with s.Attempts).
func (s *Set) VerifyTransaction(ctx context.Context, factor string, txHash []byte, req authn.VerifyRequest) (authn.Result, error) {
	if len(txHash) == 0 {
		return authn.Result{}, ErrNoTxHash
	}
	f := s.Factor(factor)
	if f == nil {
		return authn.Result{}, fmt.Errorf("factor %q: %w", factor, authn.ErrNotEnrolled)
	}
	req.Purpose, req.TxHash = authn.PurposeTransaction, txHash
	return authn.Counted(ctx, f, s.Attempts, req)
}

// CountsOwnFailures reports whether the tool named keeps its own lockout
// counter (authn.SelfCounting): the SMS code, the grid card and the OTP
// token do; the U-shields and PIV are counted on the passport's
// per-factor counter. Operators' commands use it to show each tool's one
// counter.
func CountsOwnFailures(name string) bool {
	return name == SMS || name == GridCard || name == OTP
}
