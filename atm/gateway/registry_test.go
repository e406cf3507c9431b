package gateway_test

import (
	"context"
	"errors"
	"testing"

	"github.com/egate-bank/egate/atm/gateway"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// TestRegistry: an ATM is pinned to one branch at a time, on both engines;
// pinning it to a second branch is refused and changes nothing.
func TestRegistry(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := gateway.NewRegistry(db, nil)
		steps := []struct {
			name    string
			do      func() error
			wantErr error
		}{
			{"pin", func() error { return r.Assign(ctx, "BR-01", "ATM-0101") }, nil},
			{"pin again to the same branch", func() error { return r.Assign(ctx, "BR-01", "ATM-0101") }, nil},
			{"pin to another branch", func() error { return r.Assign(ctx, "BR-02", "ATM-0101") }, gateway.ErrOtherBranch},
			{"bad ATM id", func() error { return r.Assign(ctx, "BR-01", "ATM 0102") }, gateway.ErrBadID},
			{"bad branch id", func() error { return r.Assign(ctx, "", "ATM-0102") }, gateway.ErrBadID},
			{"unpin an unknown ATM", func() error { return r.Unassign(ctx, "ATM-0999") }, gateway.ErrNotPinned},
			{"second ATM", func() error { return r.Assign(ctx, "BR-02", "ATM-0201") }, nil},
		}
		for _, s := range steps {
			if err := s.do(); !errors.Is(err, s.wantErr) || (s.wantErr == nil && err != nil) {
				t.Fatalf("%s: %v, want %v", s.name, err, s.wantErr)
			}
		}
		if b, err := r.Branch(ctx, "ATM-0101"); err != nil || b != "BR-01" {
			t.Fatalf("ATM-0101 pinned to %q (%v) after a refused re-pin", b, err)
		}
		all, err := r.List(ctx, "")
		if err != nil || len(all) != 2 || all[0].ATM != "ATM-0101" || all[1].Branch != "BR-02" {
			t.Fatalf("List: %+v %v", all, err)
		}
		if one, _ := r.List(ctx, "BR-02"); len(one) != 1 || one[0].ATM != "ATM-0201" {
			t.Fatalf("List(BR-02): %+v", one)
		}
		if err := r.Unassign(ctx, "ATM-0101"); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Branch(ctx, "ATM-0101"); !errors.Is(err, gateway.ErrNotPinned) {
			t.Fatalf("after unassign: %v", err)
		}
		if err := r.Assign(ctx, "BR-02", "ATM-0101"); err != nil {
			t.Fatalf("re-pin after unassign: %v", err)
		}
	})
}
