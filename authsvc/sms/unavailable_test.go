package sms

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// downMAC fails every HMAC while down is set, as the HSM does while it is
// unreachable.
type downMAC struct {
	MAC
	down atomic.Bool
}

func (d *downMAC) HMAC(ctx context.Context, label string, msg []byte) ([]byte, error) {
	if d.down.Load() {
		return nil, errors.New(`HSM unavailable: pkcs11: 0x32: CKR_DEVICE_REMOVED`)
	}
	return d.MAC.HMAC(ctx, label, msg)
}

// TestHSMErrorsCountNothing: an HSM error while checking a code is
// authn.ErrUnavailable, however often; it counts no attempt, the challenge
// stays open, and the right code is accepted once the HSM is back.
func TestHSMErrorsCountNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := newRig(t, db, Config{MaxAttempts: 3})
		mac := &downMAC{MAC: r.s.mac}
		r.s.mac = mac
		ch, err := r.f.Begin(ctx, authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeLogin})
		if err != nil {
			t.Fatal(err)
		}
		code, _ := r.lastCode(t, "13800005678")
		req := authn.VerifyRequest{PassportID: "alice", ChallengeID: ch.ID, Response: []byte(code)}
		mac.down.Store(true)
		for i := range 5 {
			if _, err := r.f.Verify(ctx, req); !errors.Is(err, authn.ErrUnavailable) {
				t.Fatalf("attempt %d with the HSM down: %v, want authn.ErrUnavailable", i, err)
			}
		}
		var n int
		if err := db.QueryRow(ctx, `SELECT COALESCE(MAX(n), 0) FROM sms_attempts WHERE passport_id = 'alice'`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("attempts %d (%v), want 0", n, err)
		}
		mac.down.Store(false)
		if _, err := r.f.Verify(ctx, req); err != nil {
			t.Fatalf("the same challenge and code with the HSM back: %v", err)
		}
	})
}
