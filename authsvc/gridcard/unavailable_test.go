package gridcard

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// downSealer fails every Unseal while down is set, as the HSM does while
// it is unreachable.
type downSealer struct {
	Sealer
	down atomic.Bool
}

func (d *downSealer) Unseal(ctx context.Context, label string, s, aad []byte) ([]byte, error) {
	if d.down.Load() {
		return nil, errors.New(`HSM unavailable: pkcs11: 0x32: CKR_DEVICE_REMOVED`)
	}
	return d.Sealer.Unseal(ctx, label, s, aad)
}

// TestHSMErrorsCountNothing: an HSM error while checking an answer is
// authn.ErrUnavailable, however often; it counts no attempt, the challenge
// stays open, and the right answer is accepted once the HSM is back.
func TestHSMErrorsCountNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sealer := &downSealer{Sealer: newSealer()}
		s, err := New(db, sealer, Config{MaxAttempts: 3}, nil)
		if err != nil {
			t.Fatal(err)
		}
		f := s.Factor()
		card, err := s.Issue(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		ch, err := f.Begin(ctx, authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeLogin})
		if err != nil {
			t.Fatal(err)
		}
		req := authn.VerifyRequest{PassportID: "alice", ChallengeID: ch.ID, Response: answer(t, card, ch)}
		sealer.down.Store(true)
		for i := range 5 {
			if _, err := f.Verify(ctx, req); !errors.Is(err, authn.ErrUnavailable) {
				t.Fatalf("attempt %d with the HSM down: %v, want authn.ErrUnavailable", i, err)
			}
		}
		var attempts int
		if err := db.QueryRow(ctx, `SELECT attempts FROM gridcards WHERE serial = ?`, card.Serial).Scan(&attempts); err != nil || attempts != 0 {
			t.Fatalf("attempts %d (%v), want 0", attempts, err)
		}
		sealer.down.Store(false)
		if _, err := f.Verify(ctx, req); err != nil {
			t.Fatalf("the same challenge and answer with the HSM back: %v", err)
		}
	})
}
