package factors

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/challenge"
)

// ErrOtherTransaction refuses an answer to a challenge that was begun for
// another transaction (or for a login). It wraps authn.ErrUnknown, so the
// HTTP layer treats it like an unknown challenge; the challenge is left as
// it was.
var ErrOtherTransaction = fmt.Errorf("%w: the challenge was made for another transaction", authn.ErrUnknown)

// ErrNoTxHash refuses a transaction verification without the intent's hash.
var ErrNoTxHash = errors.New("a transaction verification needs the intent's hash")

// binder is what otp.Factor offers to read a challenge's binding.
type binder interface {
	ChallengeBinding(ctx context.Context, passportID, challengeID string) (authn.Purpose, []byte, error)
}

// Binding returns what a challenge was begun for: its purpose and, for a
// transaction, the intent hash. It changes nothing.
func (s *Set) Binding(ctx context.Context, factor, passportID, challengeID string) (authn.Purpose, []byte, error) {
	f := s.Factor(factor)
	if f == nil {
		return "", nil, fmt.Errorf("factor %q: %w", factor, authn.ErrNotEnrolled)
	}
	if b, ok := f.(binder); ok {
		return b.ChallengeBinding(ctx, passportID, challengeID)
	}
	// SMS, grid card, U-shield and PIV keep their challenges in the shared
	// store; a used or expired one is still reported as what it was.
	rec, err := challenge.New(s.db, s.now).Get(ctx, factor, passportID, challengeID)
	if rec == nil {
		return "", nil, err
	}
	return rec.Purpose, rec.TxHash, nil
}

// VerifyTransaction is the verify call of transaction authorization: it
// checks that the challenge was begun by factor with
// authn.PurposeTransaction for exactly txHash, then hands the answer to the
// factor's Verify (which checks the answer, the customer, expiry, single use
// and lockout). An answer to another intent's challenge, or to a login
// challenge, is refused with ErrOtherTransaction before the factor sees it,
// so it costs no attempt and leaves the challenge usable.
func (s *Set) VerifyTransaction(ctx context.Context, factor string, txHash []byte, req authn.VerifyRequest) (authn.Result, error) {
	if len(txHash) == 0 {
		return authn.Result{}, ErrNoTxHash
	}
	f := s.Factor(factor)
	if f == nil {
		return authn.Result{}, fmt.Errorf("factor %q: %w", factor, authn.ErrNotEnrolled)
	}
	purpose, bound, err := s.Binding(ctx, factor, req.PassportID, req.ChallengeID)
	if err != nil {
		return authn.Result{}, err
	}
	if purpose != authn.PurposeTransaction || !bytes.Equal(bound, txHash) {
		return authn.Result{}, ErrOtherTransaction
	}
	return f.Verify(ctx, req)
}
