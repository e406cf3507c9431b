package gridcard

import (
	"context"
	"testing"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// TestCards: an operator sees every card of the customer, the replaced one
// revoked, the wrong answers counted and the lock at the limit; never
// another customer's card.
func TestCards(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, err := New(db, newSealer(), Config{MaxUses: 1000, MaxAttempts: 2}, (&clock{}).Now)
		if err != nil {
			t.Fatal(err)
		}
		if cs, err := s.Cards(ctx, "alice"); err != nil || len(cs) != 0 {
			t.Fatalf("no cards yet: %v, %v", cs, err)
		}
		first, err := s.Issue(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		second, err := s.Issue(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Issue(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
		f := s.Factor()
		for range 2 {
			ch, err := f.Begin(ctx, authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeLogin})
			if err != nil {
				t.Fatal(err)
			}
			f.Verify(ctx, authn.VerifyRequest{PassportID: "alice", ChallengeID: ch.ID, Response: wrong(answer(t, second, ch))})
		}
		cs, err := s.Cards(ctx, "alice")
		if err != nil || len(cs) != 2 {
			t.Fatalf("Cards = %+v, %v", cs, err)
		}
		// Both may be issued within one millisecond: find them by serial.
		by := map[string]CardInfo{cs[0].Serial: cs[0], cs[1].Serial: cs[1]}
		if c, ok := by[first.Serial]; !ok || c.Status != "revoked" || c.Locked() {
			t.Fatalf("first card: %+v (cards %+v)", c, cs)
		}
		if c, ok := by[second.Serial]; !ok || c.Status != "active" || c.Attempts != 2 || c.MaxAttempts != 2 || !c.Locked() ||
			c.Cols != second.Cols || c.Rows != second.Rows || c.MaxUses != 1000 {
			t.Fatalf("second card: %+v (cards %+v)", c, cs)
		}
	})
}
