package ebank

import (
	"context"
	"errors"
	"testing"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

func TestNormalizeMobile(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"13800138000", "13800138000"}, {"+86 138-0013-8000", "13800138000"}, {"008613800138000", "13800138000"},
		{"1380013800", ""}, {"23800138000", ""}, {"1380013800a", ""}, {"", ""}, {"+1 415 555 0100", ""},
	} {
		if got, ok := NormalizeMobile(c.in); got != c.want || ok != (c.want != "") {
			t.Errorf("%q: %q %v, want %q", c.in, got, ok, c.want)
		}
	}
}

// A number points at one customer's account: registering moves it between
// the owner's accounts, another customer cannot take it, and only an open
// account of the owner's may be named.
func TestMobiles(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := ledger.New(db, nil)
		alice, err := OpenCustomerAccounts(ctx, l, "p-alice", "Alice", Opening{Current: 100})
		if err != nil {
			t.Fatal(err)
		}
		bob, err := OpenCustomerAccounts(ctx, l, "p-bob", "Bob", Opening{Current: 100})
		if err != nil {
			t.Fatal(err)
		}
		m := Mobiles{DB: db, Ledger: l}
		steps := []struct {
			name, owner, mobile, account string
			err                          error
			lookup                       string // what 13800138000 is then
		}{
			{"register", "p-alice", "138 0013 8000", alice[0].Number, nil, alice[0].Number},
			{"move to savings", "p-alice", "+8613800138000", alice[1].Number, nil, alice[1].Number},
			{"taken by another", "p-bob", "13800138000", bob[0].Number, ErrMobileTaken, alice[1].Number},
			{"someone else's account", "p-alice", "13800138000", bob[0].Number, ErrNotYours, alice[1].Number},
			{"not a mobile", "p-alice", "12345", alice[0].Number, ErrBadMobile, alice[1].Number},
			{"unknown account", "p-alice", "13800138000", "6299880000000000001", ErrNotYours, alice[1].Number},
		}
		for _, s := range steps {
			if err := m.Register(ctx, s.owner, s.mobile, s.account); !errors.Is(err, s.err) {
				t.Errorf("%s: %v, want %v", s.name, err, s.err)
			}
			if got, ok, err := m.Lookup(ctx, "13800138000"); err != nil || !ok || got != s.lookup {
				t.Errorf("%s: lookup %q %v %v, want %q", s.name, got, ok, err, s.lookup)
			}
		}
		if _, ok, err := m.Lookup(ctx, "13900139000"); ok || err != nil {
			t.Errorf("an unregistered number: %v %v", ok, err)
		}
	})
}
