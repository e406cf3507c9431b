package oath

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// TestOperatorTokenActions: assign, unassign, unlock and the lock an
// operator sees, with the refusals that change nothing: an unknown
// serial, a token another customer holds, a revoked one, unassigning a
// free token, unlocking one that is not locked.
func TestOperatorTokenActions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db, Config{MaxFailures: 3, LockFor: -1})
		read := func(serial string) *Token {
			t.Helper()
			tok, err := f.svc.TokenBySerial(ctx, serial, "")
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}

		// H0001 is P-H0001's (setup). Another customer cannot take it.
		err := f.svc.Assign(ctx, "H0001", "", "P-OTHER")
		var ae *AssignedError
		if !errors.As(err, &ae) || ae.PassportID != "P-H0001" || !errors.Is(err, ErrAssigned) {
			t.Fatalf("assigning a held token: %v", err)
		}
		if got := read("H0001").PassportID; got != "P-H0001" {
			t.Fatalf("holder changed to %q", got)
		}
		if err := f.svc.Assign(ctx, "H0001", "", "P-H0001"); err != nil {
			t.Fatalf("assigning to its holder again: %v", err)
		}
		if err := f.svc.Assign(ctx, "NOPE", "", "P-OTHER"); !errors.Is(err, ErrUnknownToken) {
			t.Fatalf("unknown serial: %v", err)
		}
		if _, err := f.svc.Unassign(ctx, "NOPE", ""); !errors.Is(err, ErrUnknownToken) {
			t.Fatalf("unassign unknown serial: %v", err)
		}
		if err := f.svc.Unlock(ctx, "NOPE", ""); !errors.Is(err, ErrUnknownToken) {
			t.Fatalf("unlock unknown serial: %v", err)
		}

		// Three wrong codes lock it until an operator unlocks (LockFor < 0).
		if err := f.svc.Unlock(ctx, "H0001", ""); !errors.Is(err, ErrNotLocked) {
			t.Fatalf("unlocking a token that is not locked: %v", err)
		}
		if l := f.svc.LockOf(read("H0001")); l.Locked {
			t.Fatalf("fresh token locked: %+v", l)
		}
		for range 3 {
			f.svc.Verify(ctx, read("H0001"), "000000")
		}
		tok := read("H0001")
		if l := f.svc.LockOf(tok); tok.Failures != 3 || !l.Locked || !l.Until.IsZero() {
			t.Fatalf("after 3 wrong codes: failures %d, lock %+v", tok.Failures, l)
		}
		if err := f.svc.Unlock(ctx, "H0001", ""); err != nil {
			t.Fatal(err)
		}
		tok = read("H0001")
		if l := f.svc.LockOf(tok); tok.Failures != 0 || tok.LockedUntil != 0 || l.Locked {
			t.Fatalf("after unlock: failures %d, locked until %d", tok.Failures, tok.LockedUntil)
		}
		if _, err := f.svc.Verify(ctx, tok, hotpCode(0)); err != nil {
			t.Fatalf("the right code after unlock: %v", err)
		}

		// Unassign: the holder is returned, failures cleared, the counter
		// (replay ledger) kept; a second unassign is refused.
		f.svc.Verify(ctx, read("H0001"), "000000")
		counter := read("H0001").Counter
		prev, err := f.svc.Unassign(ctx, "H0001", "")
		if err != nil || prev != "P-H0001" {
			t.Fatalf("Unassign = %q, %v", prev, err)
		}
		tok = read("H0001")
		if tok.PassportID != "" || tok.Failures != 0 || tok.Counter != counter {
			t.Fatalf("after unassign: %+v", tok)
		}
		if _, err := f.svc.Unassign(ctx, "H0001", ""); !errors.Is(err, ErrNotAssigned) {
			t.Fatalf("unassigning a free token: %v", err)
		}
		if err := f.svc.Assign(ctx, "H0001", "", "P-OTHER"); err != nil {
			t.Fatalf("assigning the returned token: %v", err)
		}
		if _, err := f.svc.Verify(ctx, read("H0001"), hotpCode(0)); !errors.Is(err, ErrReplay) {
			t.Fatalf("a code of the first holder accepted again: %v", err)
		}
		if ts, err := f.svc.TokensOf(ctx, "P-OTHER"); err != nil || len(ts) != 1 || ts[0].Serial != "H0001" {
			t.Fatalf("TokensOf = %v, %v", ts, err)
		}

		// A revoked free token is not assigned.
		if _, err := f.svc.Unassign(ctx, "T0001", ""); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.Revoke(ctx, "T0001", ""); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.Assign(ctx, "T0001", "", "P-OTHER"); !errors.Is(err, ErrRevoked) {
			t.Fatalf("assigning a revoked token: %v", err)
		}
		if got := read("T0001").PassportID; got != "" {
			t.Fatalf("revoked token assigned to %q", got)
		}
	})
}

// TestLockOf: a lockout with an end is reported until then, not after.
func TestLockOf(t *testing.T) {
	t.Parallel()
	now := time.UnixMilli(1700000000000)
	s := New(nil, nil, Config{MaxFailures: 5, LockFor: time.Minute}, func() time.Time { return now })
	tests := []struct {
		name  string
		tok   Token
		want  bool
		until time.Time
	}{
		{"none", Token{}, false, time.Time{}},
		{"some failures", Token{Failures: 4}, false, time.Time{}},
		{"operator lock", Token{Failures: 5, LockedUntil: -1}, true, time.Time{}},
		{"timed lock", Token{Failures: 5, LockedUntil: now.UnixMilli() + 1000}, true, now.Add(time.Second)},
		{"timed lock run out", Token{Failures: 5, LockedUntil: now.UnixMilli()}, false, time.Time{}},
		{"at the limit, lock not yet written", Token{Failures: 5}, true, now.Add(time.Minute)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := s.LockOf(&tc.tok)
			if l.Locked != tc.want || !l.Until.Equal(tc.until) {
				t.Fatalf("LockOf = %+v, want %v until %v", l, tc.want, tc.until)
			}
		})
	}
}
