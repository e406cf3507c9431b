package store_test

import (
	"context"
	"testing"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// The helpers give the same results through the statement cache as
// without it, inside and outside transactions, on both engines; on SQLite
// each distinct query is prepared once (a query first run inside a
// transaction once that transaction ends), a statement survives a schema
// change, and a query that does not prepare still reports its error.
func TestStatementCache(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sqlite := db.Driver() == store.SQLite
		n0 := db.CachedStatements()
		if !sqlite && n0 != 0 {
			t.Fatalf("PostgreSQL cached %d statements; pgx caches its own", n0)
		}
		cached := func(t *testing.T, want int) {
			t.Helper()
			if !sqlite {
				want = 0
			}
			if got := db.CachedStatements() - n0; got != want {
				t.Fatalf("cached statements: %d new, want %d", got, want)
			}
		}
		const (
			ins = `INSERT INTO kv (k, v, updated_ms) VALUES (?, ?, ?)`
			get = `SELECT v FROM kv WHERE k = ?`
			inc = `UPDATE kv SET updated_ms = updated_ms + ? WHERE k = ? RETURNING updated_ms`
		)
		for i, k := range []string{"sc-a", "sc-b", "sc-c"} {
			if _, err := db.Exec(ctx, ins, k, k+"-v", i); err != nil {
				t.Fatal(err)
			}
		}
		cached(t, 1)
		for _, k := range []string{"sc-a", "sc-b"} {
			var v string
			if err := db.QueryRow(ctx, get, k).Scan(&v); err != nil || v != k+"-v" {
				t.Fatalf("%s: %q %v", k, v, err)
			}
		}
		cached(t, 2)
		// inc is first seen inside a transaction: run unprepared there,
		// cached when the transaction commits, then used in the next.
		for round, want := range []int64{12, 22} {
			err := db.InTx(ctx, func(tx *store.Tx) error {
				var v string
				if err := tx.QueryRow(ctx, get, "sc-c").Scan(&v); err != nil || v != "sc-c-v" {
					t.Fatalf("round %d: in tx: %q %v", round, v, err)
				}
				var n int64
				if err := tx.QueryRow(ctx, inc, 10, "sc-c").Scan(&n); err != nil {
					return err
				}
				if n != want {
					t.Fatalf("round %d: updated_ms %d, want %d", round, n, want)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			cached(t, 3)
		}
		// A rolled-back transaction through cached statements leaves nothing.
		tx, err := db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, ins, "sc-rolled", "x", 0); err != nil {
			t.Fatal(err)
		}
		tx.Rollback()
		var n int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM kv WHERE k = ?`, "sc-rolled").Scan(&n); err != nil || n != 0 {
			t.Fatalf("rolled back insert: %d rows, %v", n, err)
		}
		// Rows through a cached statement.
		rows, err := db.Query(ctx, `SELECT k FROM kv WHERE k IN (?, ?, ?) ORDER BY k`, "sc-a", "sc-b", "sc-c")
		if err != nil {
			t.Fatal(err)
		}
		var ks []string
		for rows.Next() {
			var k string
			rows.Scan(&k)
			ks = append(ks, k)
		}
		rows.Close()
		if len(ks) != 3 || ks[0] != "sc-a" || ks[2] != "sc-c" {
			t.Fatalf("rows: %v", ks)
		}
		// A schema change under a cached statement.
		if _, err := db.Exec(ctx, `CREATE TABLE sc_t (a INTEGER)`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `INSERT INTO sc_t (a) VALUES (?)`, 7); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `ALTER TABLE sc_t ADD COLUMN b INTEGER DEFAULT 5`); err != nil {
			t.Fatal(err)
		}
		var a int
		if err := db.QueryRow(ctx, `SELECT a FROM sc_t`).Scan(&a); err != nil || a != 7 {
			t.Fatalf("after ALTER: %d %v", a, err)
		}
		if _, err := db.Exec(ctx, `INSERT INTO sc_t (a) VALUES (?)`, 8); err != nil {
			t.Fatalf("cached insert after ALTER: %v", err)
		}
		// A query that does not prepare reports its error and is not cached.
		before := db.CachedStatements()
		if _, err := db.Exec(ctx, `INSERT INTO no_such_table (a) VALUES (?)`, 1); err == nil {
			t.Fatal("insert into a missing table succeeded")
		}
		if db.CachedStatements() != before {
			t.Fatal("a statement that failed to prepare was cached")
		}
	})
}
