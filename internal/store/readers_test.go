package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// guard bounds a step that would wait for ever on one connection (the old
// store): it then fails with a deadline instead of hanging the test.
func guard(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestReadersRunBesideTheWriter: on a SQLite file two plain reads hold
// rows at once (the first on the idle writer, the second on a reader); and
// while a transaction holds the writer a read runs beside it and sees the
// database as committed before the transaction (not its write), the
// transaction commits while that read still holds its rows, and a read
// after the commit sees it. With SQLite's one connection the second read
// would wait for the first, and the read beside the transaction for the
// transaction.
func TestReadersRunBesideTheWriter(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	ctx := guard(t)
	if db.Readers() < 1 {
		t.Fatal("a SQLite file has no readers")
	}
	if _, err := db.Exec(ctx, `INSERT INTO kv (k, v, updated_ms) VALUES (?, ?, ?), (?, ?, ?)`, "r-a", "1", 0, "r-b", "2", 0); err != nil {
		t.Fatal(err)
	}
	const q = `SELECT v FROM kv WHERE k LIKE 'r-%' ORDER BY k`
	if db.PoolFor(q) != db.DB {
		t.Fatal("a read while the writer is idle does not run on the writer (its page cache is the warm one)")
	}
	read := func(t *testing.T, what, want string) *sql.Rows {
		t.Helper()
		rows, err := db.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Cleanup(func() { rows.Close() })
		var v string
		if !rows.Next() {
			t.Fatalf("%s: no row (%v)", what, rows.Err())
		}
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != want {
			t.Fatalf("%s saw %q, want %q", what, v, want)
		}
		return rows
	}
	drain := func(t *testing.T, rows *sql.Rows) {
		t.Helper()
		for rows.Next() {
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	first := read(t, "the first read", "1")
	second := read(t, "a second read while the first holds its rows", "1")
	drain(t, first)
	drain(t, second)

	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(ctx, `UPDATE kv SET v = ? WHERE k = ?`, "tx", "r-a"); err != nil {
		t.Fatal(err)
	}
	if db.PoolFor(q) != db.Reader() || db.Reader() == db.DB {
		t.Fatal("a read while a transaction holds the writer is not sent to the readers")
	}
	beside := read(t, "a read beside an open transaction", "1")
	var v string
	if err := tx.QueryRow(ctx, `SELECT v FROM kv WHERE k = ?`, "r-a").Scan(&v); err != nil || v != "tx" {
		t.Fatalf("the transaction reads its own write: %q %v", v, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("commit while a read holds rows: %v", err)
	}
	read(t, "a read after the commit", "tx").Close()
	drain(t, beside) // the read opened before the commit still finishes
}

// TestReadersRefuseWrites: a reader cannot write, and says so; the store
// never sends a statement that is not a plain SELECT to one (INSERT …
// RETURNING and WITH … through DB.Query run on the writer and work).
func TestReadersRefuseWrites(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	ctx := guard(t)
	_, err := db.Reader().ExecContext(ctx, `INSERT INTO kv (k, v, updated_ms) VALUES (?, ?, ?)`, "ro", "x", 0)
	if err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Fatalf("an insert on a reader: %v, want a readonly database error", err)
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM kv WHERE k = ?`, "ro").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the refused insert left %d rows (%v)", n, err)
	}
	var k string
	if err := db.QueryRow(ctx, `INSERT INTO kv (k, v, updated_ms) VALUES (?, ?, ?) RETURNING k`, "ret", "x", 0).Scan(&k); err != nil || k != "ret" {
		t.Fatalf("INSERT … RETURNING through QueryRow: %q %v", k, err)
	}
	rows, err := db.Query(ctx, `WITH u AS (SELECT 1) UPDATE kv SET v = 'y' WHERE k = ? RETURNING v`, "ret")
	if err != nil {
		t.Fatalf("WITH … UPDATE … RETURNING through Query: %v", err)
	}
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	// While the writer is busy only a plain read is sent to the readers.
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, q := range []string{`SELECT 1`, `INSERT INTO kv (k) VALUES (?)`, `WITH x AS (SELECT 1) SELECT * FROM x`, `UPDATE kv SET v = '' RETURNING v`} {
		if got, want := db.PoolFor(q) == db.Reader(), store.IsRead(q); got != want {
			t.Errorf("PoolFor(%q) is the readers: %v, want %v", q, got, want)
		}
	}
}

func TestIsRead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		q    string
		want bool
	}{
		{"select", `SELECT v FROM kv`, true},
		{"lower case", `select 1`, true},
		{"blanks first", "\n\t  SELECT 1", true},
		{"comments first", "-- the balance\n/* of one */ SELECT 1", true},
		{"parenthesised", `(SELECT 1) UNION (SELECT 2)`, true},
		{"bare", `SELECT`, true},
		{"insert returning", `INSERT INTO kv (k) VALUES (?) RETURNING k`, false},
		{"update returning", `UPDATE kv SET v = ? WHERE k = ? RETURNING v`, false},
		{"delete", `DELETE FROM kv`, false},
		{"with", `WITH x AS (SELECT 1) SELECT * FROM x`, false},
		{"pragma", `PRAGMA wal_checkpoint`, false},
		{"a word that starts with select", `SELECTED 1`, false},
		{"select_ identifier", `SELECT_ALL`, false},
		{"unterminated comment", `/* SELECT 1`, false},
		{"comment only", `-- SELECT 1`, false},
		{"empty", ``, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := store.IsRead(tt.q); got != tt.want {
				t.Fatalf("IsRead(%q) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

// TestReadAfterCommitOnEveryReader: a value committed (by Exec, or by a
// transaction) is what every reader reads next, round after round: all
// readers are held at once, so each round reads on each of them; and what
// DB.QueryRow reads beside them.
func TestReadAfterCommitOnEveryReader(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := guard(t)
		n := db.Readers() // the pool's size: all held at once
		if n == 0 {
			n = 4 // PostgreSQL: reads share its pool
		}
		if _, err := db.Exec(ctx, `INSERT INTO kv (k, v, updated_ms) VALUES (?, ?, ?)`, "seen", "0", 0); err != nil {
			t.Fatal(err)
		}
		for round := 1; round <= 20; round++ {
			want := fmt.Sprint(round)
			var err error
			if round%2 == 0 {
				_, err = db.Exec(ctx, `UPDATE kv SET v = ? WHERE k = ?`, want, "seen")
			} else {
				err = db.InTx(ctx, func(tx *store.Tx) error {
					_, err := tx.Exec(ctx, `UPDATE kv SET v = ? WHERE k = ?`, want, "seen")
					return err
				})
			}
			if err != nil {
				t.Fatal(err)
			}
			var opened, wg sync.WaitGroup
			opened.Add(n)
			errs := make(chan error, n+1)
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rows, err := db.Reader().QueryContext(ctx, db.Rebind(`SELECT v FROM kv WHERE k = ?`), "seen")
					opened.Done()
					if err != nil {
						errs <- err
						return
					}
					defer rows.Close()
					opened.Wait() // every reader holds a read at once
					var v string
					if !rows.Next() {
						errs <- fmt.Errorf("no row: %v", rows.Err())
						return
					}
					if err := rows.Scan(&v); err != nil {
						errs <- err
						return
					}
					if v != want {
						errs <- fmt.Errorf("round %d: read %q after the commit of %q", round, v, want)
					}
				}()
			}
			var v string
			if err := db.QueryRow(ctx, `SELECT v FROM kv WHERE k = ?`, "seen").Scan(&v); err != nil || v != want {
				errs <- fmt.Errorf("round %d: QueryRow read %q (%v) after the commit of %q", round, v, err, want)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
		}
	})
}

// TestOneConnectionWithoutWAL: a database in memory keeps its one
// connection (another would be another database) and works, reads beside
// writes and in transactions; so does an operator's file: URI that does
// not ask for WAL. One that does gets readers.
func TestOneConnectionWithoutWAL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name    string
		dsn     string
		readers bool
	}{
		{"memory", ":memory:", false},
		{"file memory", "file::memory:", false},
		{"named memory", "file:egate-mem?mode=memory&cache=shared", false},
		{"memdb", "file:/egate-memdb?vfs=memdb", false},
		{"file URI without WAL", "file:" + filepath.Join(dir, "plain.db"), false},
		{"file URI with WAL", "file:" + filepath.Join(dir, "wal.db") + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_txlock=immediate", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := guard(t)
			db, err := store.Open(ctx, store.Config{Driver: store.SQLite, DSN: tt.dsn})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if got := db.Readers() > 0; got != tt.readers {
				t.Fatalf("readers: %d, want some: %v", db.Readers(), tt.readers)
			}
			if !tt.readers && db.Reader() != db.DB {
				t.Fatal("without readers, Reader is not the writer")
			}
			if _, err := db.Exec(ctx, `INSERT INTO kv (k, v, updated_ms) VALUES (?, ?, ?)`, "m", "1", 0); err != nil {
				t.Fatal(err)
			}
			var v string
			if err := db.QueryRow(ctx, `SELECT v FROM kv WHERE k = ?`, "m").Scan(&v); err != nil || v != "1" {
				t.Fatalf("read after write: %q %v", v, err)
			}
			err = db.InTx(ctx, func(tx *store.Tx) error {
				if _, err := tx.Exec(ctx, `UPDATE kv SET v = '2' WHERE k = ?`, "m"); err != nil {
					return err
				}
				return tx.QueryRow(ctx, `SELECT v FROM kv WHERE k = ?`, "m").Scan(&v)
			})
			if err != nil || v != "2" {
				t.Fatalf("read in a transaction: %q %v", v, err)
			}
			if tt.readers {
				_, err := db.Reader().ExecContext(ctx, `DELETE FROM kv`)
				if err == nil {
					t.Fatal("a reader of an operator's file: URI wrote")
				}
			}
		})
	}
}
