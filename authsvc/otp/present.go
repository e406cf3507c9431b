package otp

import (
	"context"
	"fmt"

	"github.com/egate-bank/egate/authsvc/authn"
)

// Label is the tool's name for customers (the passport's login pages).
func (Factor) Label() string { return "Dynamic-password token" }

// ChallengeUsedByFailure tells the login pages that a wrong answer uses up
// the challenge (Verify consumes it before comparing, so a replayed or
// guessed code is never checked twice): after a failure they begin a new
// one at once.
func (Factor) ChallengeUsedByFailure() bool { return true }

// ChallengeBinding returns what a challenge of this customer was begun for:
// its purpose and, for a transaction, the intent hash. It reads only; the
// challenge stays as it is. authn.ErrUnknown when there is no such
// challenge of this customer.
func (f Factor) ChallengeBinding(ctx context.Context, passportID, challengeID string) (authn.Purpose, []byte, error) {
	var purpose string
	var txHash []byte
	err := f.S.db.QueryRow(ctx, `SELECT purpose, tx_hash FROM otp_challenges WHERE id = ? AND passport_id = ?`, challengeID, passportID).Scan(&purpose, &txHash)
	if isNoRows(err) {
		return "", nil, fmt.Errorf("otp challenge: %w", authn.ErrUnknown)
	}
	if err != nil {
		return "", nil, fmt.Errorf("reading the otp challenge: %w", err)
	}
	return authn.Purpose(purpose), txHash, nil
}
