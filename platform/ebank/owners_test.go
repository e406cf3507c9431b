package ebank

import (
	"context"
	"testing"
	"time"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

func TestOwners(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := ledger.New(db, nil)
		accts, err := OpenCustomerAccounts(ctx, l, "p-alice", "Alice", Opening{Current: 100})
		if err != nil {
			t.Fatal(err)
		}
		bank, err := EnsureBankAccounts(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		o := Owners{Ledger: l, Now: func() time.Time { return time.Now().Add(72 * time.Hour) }}
		cases := []struct {
			name, customer, account string
			want                    bool
		}{
			{"hers", "p-alice", accts[0].Number, true},
			{"her savings", "p-alice", accts[1].Number, true},
			{"not bob's", "p-bob", accts[0].Number, false},
			{"the bank's", "bank", bank["clearing"].Number, true},
			{"not a customer's claim on the bank's", "p-alice", bank["clearing"].Number, false},
			{"another bank's", "p-alice", "6222020000000001", false},
			{"garbage", "p-alice", "x", false},
			{"no customer", "", accts[0].Number, false},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				got, err := o.Owns(ctx, c.customer, c.account)
				if err != nil || got != c.want {
					t.Errorf("Owns = %v, %v; want %v", got, err, c.want)
				}
			})
		}
		if d, err := o.AccountAgeDays(ctx, accts[0].Number); err != nil || d != 3 {
			t.Errorf("age %d, %v", d, err)
		}
		if d, err := o.AccountAgeDays(ctx, "6222020000000001"); err != nil || d != -1 {
			t.Errorf("unknown age %d, %v", d, err)
		}
	})
}

// Whose an account is and when it was opened never change, so Owners
// reads the payer's account once for both questions (txauth asks Owns,
// then AccountAgeDays): once read, the answers stand with the database
// gone, while an account never read is still asked of the database.
func TestOwnersReadAnAccountOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		accts, err := OpenCustomerAccounts(ctx, ledger.New(db, nil), "p-alice", "Alice", Opening{Current: 100})
		if err != nil {
			t.Fatal(err)
		}
		o := Owners{Ledger: ledger.New(db, nil), Now: func() time.Time { return time.Now().Add(72 * time.Hour) }}
		if ok, err := o.Owns(ctx, "p-alice", accts[0].Number); err != nil || !ok {
			t.Fatalf("Owns = %v, %v", ok, err)
		}
		db.Close() // closing again at the test's end is harmless
		if d, err := o.AccountAgeDays(ctx, accts[0].Number); err != nil || d != 3 {
			t.Errorf("age after Owns, the database closed: %d, %v; want 3 days from what Owns read", d, err)
		}
		for _, c := range []struct {
			customer string
			want     bool
		}{{"p-alice", true}, {"p-bob", false}} {
			if ok, err := o.Owns(ctx, c.customer, accts[0].Number); err != nil || ok != c.want {
				t.Errorf("Owns(%s) again = %v, %v; want %v", c.customer, ok, err, c.want)
			}
		}
		if ok, err := o.Owns(ctx, "p-alice", accts[1].Number); err == nil {
			t.Errorf("an account never read answered %v with the database closed", ok)
		}
	})
}
