package sms

import (
	"context"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// TestAttemptsAndUnlock: an operator sees the wrong codes and the lockout's
// end, and Unlock lets the customer in at once; stale counts read as zero
// and there is nothing to unlock then.
func TestAttemptsAndUnlock(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := newRig(t, db, Config{PerCustomer: 100, PerPhone: 100, MaxAttempts: 2, LockFor: 30 * time.Minute})
		st, err := r.s.Attempts(ctx, "alice")
		if err != nil || st.Failures != 0 || st.Max != 2 || !st.Until.IsZero() {
			t.Fatalf("fresh: %+v, %v", st, err)
		}
		if ok, err := r.s.Unlock(ctx, "alice"); ok || err != nil {
			t.Fatalf("unlock with nothing to unlock = %v, %v", ok, err)
		}
		wrongOnce := func() {
			t.Helper()
			ch, err := r.f.Begin(ctx, authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeLogin})
			if err != nil {
				t.Fatal(err)
			}
			code, _ := r.lastCode(t, "13800005678")
			r.f.Verify(ctx, authn.VerifyRequest{PassportID: "alice", ChallengeID: ch.ID, Response: []byte(otherCode(code))})
		}
		wrongOnce()
		if st, _ := r.s.Attempts(ctx, "alice"); st.Failures != 1 || !st.Until.IsZero() {
			t.Fatalf("one wrong code: %+v", st)
		}
		// The clock runs: the lock ends 30 minutes after the wrong code,
		// which was counted between t0 and t1.
		t0 := r.clk.Now().Truncate(time.Millisecond)
		wrongOnce()
		t1 := r.clk.Now()
		st, _ = r.s.Attempts(ctx, "alice")
		if st.Failures != 2 || st.Until.Before(t0.Add(30*time.Minute)) || st.Until.After(t1.Add(30*time.Minute)) {
			t.Fatalf("locked: %+v, want 2 failures until 30 minutes after a time in [%v, %v]", st, t0, t1)
		}
		if _, err := r.f.Begin(ctx, authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeLogin}); err == nil {
			t.Fatal("Begin while locked")
		}
		if ok, err := r.s.Unlock(ctx, "alice"); !ok || err != nil {
			t.Fatalf("Unlock = %v, %v", ok, err)
		}
		if st, _ := r.s.Attempts(ctx, "alice"); st.Failures != 0 || !st.Until.IsZero() {
			t.Fatalf("after unlock: %+v", st)
		}
		ch, err := r.f.Begin(ctx, authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeLogin})
		if err != nil {
			t.Fatalf("Begin after unlock: %v", err)
		}
		code, _ := r.lastCode(t, "13800005678")
		if _, err := r.f.Verify(ctx, authn.VerifyRequest{PassportID: "alice", ChallengeID: ch.ID, Response: []byte(code)}); err != nil {
			t.Fatalf("right code after unlock: %v", err)
		}
		wrongOnce()
		r.clk.Advance(31 * time.Minute)
		if st, _ := r.s.Attempts(ctx, "alice"); st.Failures != 0 {
			t.Fatalf("stale count: %+v", st)
		}
		if ok, _ := r.s.Unlock(ctx, "alice"); ok {
			t.Fatal("a stale count unlocked")
		}
	})
}
