package ledger

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/internal/testenv"
)

// engines opens a fresh database of each engine for a benchmark.
var engines = []struct {
	name string
	open func(testing.TB) *store.DB
}{
	{"sqlite", storetest.SQLite},
	{"postgres", storetest.Postgres},
}

// BenchmarkCheck times egate admin ledger check's proof over a million
// transfers (two million postings: a debit and a credit each) between a
// thousand accounts; every hundredth transfer is a hold, half of them
// captured. The setup inserts the rows in bulk with one INSERT … SELECT
// over a recursive counter and sets the balance columns from the sums; only
// Check is timed. Goal: under 5 s per check.
func BenchmarkCheck(b *testing.B) {
	const transfers, accounts = 1_000_000, 1000
	for _, e := range engines {
		b.Run(fmt.Sprintf("%s/transfers-%d", e.name, transfers), func(b *testing.B) {
			db := e.open(b)
			ctx := context.Background()
			l := New(db, nil)
			equity, err := l.EnsureBankAccount(ctx, "equity", KindEquity, "Opening balances")
			if err != nil {
				b.Fatal(err)
			}
			mustExecB(b, db, `CREATE TABLE bench_accounts (i BIGINT PRIMARY KEY, id BIGINT NOT NULL)`)
			for i := range accounts {
				a, err := l.OpenAccount(ctx, NewAccount{Owner: fmt.Sprint("p-", i), Kind: KindCurrent})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := l.Transfer(ctx, Request{Origin: "bank", Key: fmt.Sprint("opening-", i), Debit: equity.Number, Credit: a.Number, Amount: 1_000_000_000, Code: "opening"}); err != nil {
					b.Fatal(err)
				}
				mustExecB(b, db, `INSERT INTO bench_accounts (i, id) VALUES (?, ?)`, i, id(a))
			}
			// Row n: a transfer from account k % 1000 to (k + 1) % 1000 of
			// 1 to 50 yuan, where k is n, or for a capture (n % 100 = 0) the
			// hold it captures (n - 50), whose accounts and amount it shares.
			const base = 1_000_000_000_000
			start := time.Now()
			mustExecB(b, db, `WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ?),
				r(n, k) AS (SELECT n, CASE WHEN n % 100 = 0 THEN n - 50 ELSE n END FROM s)
				INSERT INTO ebank_transfers (id, origin, client_key, kind, debit_account, credit_account, amount,
					pending_id, reverses_id, timeout_ms, grant_id, code, memo, created_ms)
				SELECT `+fmt.Sprint(base)+` + r.n, 'bench', 'k' || r.n,
					CASE WHEN r.n % 100 = 50 THEN 'pending' WHEN r.n % 100 = 0 THEN 'post' ELSE 'posted' END,
					d.id, c.id, 100 * (1 + r.k % 50),
					CASE WHEN r.n % 100 = 0 THEN `+fmt.Sprint(base)+` + r.k ELSE NULL END, NULL,
					CASE WHEN r.n % 100 = 50 THEN 4102444800000 ELSE 0 END, 'g', 'transfer', '', 1700000000000 + r.n
				FROM r JOIN bench_accounts d ON d.i = r.k % 1000 JOIN bench_accounts c ON c.i = (r.k + 1) % 1000`, transfers)
			// Every other hold stays pending: remove the captures of holds
			// whose number is 150 mod 200.
			mustExecB(b, db, `DELETE FROM ebank_transfers WHERE origin = 'bench' AND kind = 'post' AND (id - `+fmt.Sprint(base)+`) % 200 = 0`)
			for _, side := range []string{"debit", "credit"} {
				mustExecB(b, db, `UPDATE ebank_accounts SET
					`+side+`s_posted = (SELECT COALESCE(SUM(amount), 0) FROM ebank_transfers t WHERE t.`+side+`_account = ebank_accounts.id AND t.kind IN ('posted', 'post')),
					`+side+`s_pending = (SELECT COALESCE(SUM(amount), 0) FROM ebank_transfers t WHERE t.`+side+`_account = ebank_accounts.id AND t.kind = 'pending'
						AND NOT EXISTS (SELECT 1 FROM ebank_transfers x WHERE x.pending_id = t.id))`)
			}
			if db.Driver() == store.Postgres {
				mustExecB(b, db, `VACUUM ANALYZE ebank_transfers`)
				mustExecB(b, db, `VACUUM ANALYZE ebank_accounts`)
			} else {
				mustExecB(b, db, `ANALYZE`)
			}
			b.Logf("setup: %d transfers in %v", transfers, time.Since(start).Round(time.Millisecond))
			b.ResetTimer()
			for b.Loop() {
				rep, err := Check(ctx, db)
				if err != nil {
					b.Fatal(err)
				}
				if rep.Transfers != transfers+accounts-transfers/200 {
					b.Fatalf("checked %d transfers", rep.Transfers)
				}
			}
			b.ReportMetric(2*transfers, "postings")
		})
	}
}

// BenchmarkTransfer is the ledger alone: posted transfers per second
// between 100 customers' accounts (each a fresh idempotency key), one
// after another ("serial") and from 4 goroutines per CPU ("concurrent").
func BenchmarkTransfer(b *testing.B) {
	for _, e := range engines {
		for _, mode := range []string{"serial", "concurrent"} {
			b.Run(e.name+"/"+mode, func(b *testing.B) {
				db := e.open(b)
				ctx := context.Background()
				l := New(db, nil)
				equity, err := l.EnsureBankAccount(ctx, "equity", KindEquity, "Opening balances")
				if err != nil {
					b.Fatal(err)
				}
				var accts []string
				for i := range 100 {
					a, err := l.OpenAccount(ctx, NewAccount{Owner: fmt.Sprint("p-", i), Kind: KindCurrent})
					if err != nil {
						b.Fatal(err)
					}
					if _, err := l.Transfer(ctx, Request{Origin: "bank", Key: fmt.Sprint("opening-", i), Debit: equity.Number, Credit: a.Number, Amount: 1_000_000_000_00, Code: "opening"}); err != nil {
						b.Fatal(err)
					}
					accts = append(accts, a.Number)
				}
				var n atomic.Int64
				one := func() error {
					i := n.Add(1)
					from, to := accts[i%100], accts[(i*7+1)%100]
					if from == to {
						to = accts[(i+1)%100]
					}
					_, err := l.Transfer(ctx, Request{Origin: "ebank", Key: fmt.Sprint("b", i), Debit: from, Credit: to, Amount: 1 + i%1000, Grant: "g"})
					return err
				}
				b.ResetTimer()
				cpu0 := testenv.CPUTime()
				if mode == "serial" {
					for b.Loop() {
						if err := one(); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					b.SetParallelism(4)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := one(); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transfers/s")
				b.ReportMetric(float64(testenv.CPUTime()-cpu0)/float64(b.N)/1e3, "cpu-µs/op")
				if _, err := Check(ctx, db); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

func mustExecB(b *testing.B, db *store.DB, q string, args ...any) {
	b.Helper()
	if _, err := db.Exec(context.Background(), q, args...); err != nil {
		b.Fatal(err)
	}
}
