package audit

import (
	"context"
	"fmt"
	"testing"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// growthRows are the sizes of audit_log the growth benchmark appends to.
var growthRows = []int{10_000, 100_000, 1_000_000}

// fillAuditLog puts rows records (seq 1…rows) into an empty audit_log in one
// statement: the benchmark measures the next append, not a chain that
// verifies, so the records' hashes are placeholders.
func fillAuditLog(b *testing.B, db *store.DB, rows int) {
	b.Helper()
	q := `WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ?)
		INSERT INTO audit_log (seq, at_ms, kind, record, prev_hash, hash)
		SELECT n, 1700000000000 + n, 'bulk', '{}', 'bulk', printf('%064d', n) FROM s`
	if db.Driver() == store.Postgres {
		q = `INSERT INTO audit_log (seq, at_ms, kind, record, prev_hash, hash)
		SELECT n, 1700000000000 + n, 'bulk', '{}', 'bulk', lpad(n::text, 64, '0') FROM generate_series(1, ?::bigint) AS n`
	}
	if _, err := db.Exec(context.Background(), q, rows); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAppendGrowth: one append (lock, read the head, hash, insert,
// commit) as audit_log already holds 10k, 100k and 1M records, on each
// engine; the cost should not grow with the table (the head is read by the
// primary key). The rows are inserted in the setup, outside the timer;
// -short skips 1M on PostgreSQL (its setup takes the longest).
func BenchmarkAppendGrowth(b *testing.B) {
	for _, eng := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		for _, rows := range growthRows {
			b.Run(fmt.Sprintf("%s/rows-%d", eng.name, rows), func(b *testing.B) {
				if testing.Short() && rows >= 1_000_000 && eng.name == "postgres" {
					b.Skip("1M rows on PostgreSQL: without -short")
				}
				db := eng.open(b)
				fillAuditLog(b, db, rows)
				l := New(db, nil)
				ctx := context.Background()
				fields := map[string]string{"subject": "pid:1", "ip": "192.0.2.1"}
				for b.Loop() {
					seq, err := l.Append(ctx, "login.password", fields)
					if err != nil {
						b.Fatal(err)
					}
					if seq <= int64(rows) {
						b.Fatalf("appended at %d, inside the %d rows", seq, rows)
					}
				}
			})
		}
	}
}
