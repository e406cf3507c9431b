package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// egate admin ledger check on books written by the ledger package, on
// both engines: the counts and totals with exit 0; after a balance is
// changed in SQL, one line naming that account and the difference, exit 1.
func TestAdminLedgerCheck(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		driver string
		dsn    func(t *testing.T) string
	}{
		{"sqlite", store.SQLite, func(t *testing.T) string { return filepath.Join(t.TempDir(), "egate.db") }},
		{"postgres", store.Postgres, func(t *testing.T) string { return storetest.PostgresDSN(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := tc.dsn(t)
			db, err := store.Open(ctx, store.Config{Driver: tc.driver, DSN: dsn})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			l := ledger.New(db, nil)
			equity, err := l.EnsureBankAccount(ctx, "equity", ledger.KindEquity, "Opening balances")
			if err != nil {
				t.Fatal(err)
			}
			var accts []ledger.Account
			for _, owner := range []string{"p-alice", "p-bob"} {
				a, err := l.OpenAccount(ctx, ledger.NewAccount{Owner: owner, Kind: ledger.KindCurrent})
				if err != nil {
					t.Fatal(err)
				}
				accts = append(accts, a)
			}
			alice, bob := accts[0], accts[1]
			for _, r := range []ledger.Request{
				{Origin: "bank", Key: "open", Debit: equity.Number, Credit: alice.Number, Amount: 123_456_789},
				{Origin: "ebank", Key: "pay", Debit: alice.Number, Credit: bob.Number, Amount: 50_00},
			} {
				if _, err := l.Transfer(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := l.Hold(ctx, ledger.Request{Origin: "atm", Key: "h", Debit: alice.Number, Credit: bob.Number, Amount: 300_00, Timeout: time.Hour}); err != nil {
				t.Fatal(err)
			}

			r := run(t, dir, nil, "admin", "ledger", "check", "--db", dsn)
			if r.code != 0 || !regexp.MustCompile(`^ledger balanced: 3 accounts, 3 transfers, 1 holds open \(checked in [^)]+\)
posted:  debits 1,234,617.89 = credits 1,234,617.89 yuan
pending: debits 300.00 = credits 300.00 yuan
$`).MatchString(r.stdout) {
				t.Fatalf("check: %+v", r)
			}

			if _, err := db.Exec(ctx, `UPDATE ebank_accounts SET credits_posted = credits_posted - 1000 WHERE label = ''
				AND owner = 'p-bob'`); err != nil {
				t.Fatal(err)
			}
			r = run(t, dir, nil, "admin", "ledger", "check", "--db", dsn)
			oneLine(t, r, "ledger does not balance", "current account "+bob.Number, "credits_posted is 40.00 yuan but its transfers sum to 50.00 yuan (10.00 yuan less)")
			if r.code != 1 || r.stdout != "" {
				t.Fatalf("check after tampering: %+v", r)
			}
		})
	}
	t.Run("not a ledger", func(t *testing.T) {
		typo := filepath.Join(dir, "egate-typo.db")
		oneLine(t, run(t, dir, nil, "admin", "ledger", "check", "--db", typo), "does not exist", "nothing was created")
		if _, err := os.Stat(typo); !os.IsNotExist(err) {
			t.Fatalf("check created %s: %v", typo, err)
		}
		other := filepath.Join(dir, "other.db")
		os.WriteFile(other, nil, 0o600)
		oneLine(t, run(t, dir, nil, "admin", "ledger", "check", "--db", other), "has no ebank ledger")
	})
}
