package audit

import (
	"context"
	"sync"
	"testing"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// TestAppendTx: a record appended in the caller's transaction is in the
// chain when it commits and gone (its position free for the next) when it
// rolls back; appends in transactions and plain appends from parallel
// goroutines interleave into one chain that verifies; a transaction of
// another database is refused. On both engines.
func TestAppendTx(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := New(db, nil)
		if _, err := l.Append(ctx, "k.first", nil); err != nil {
			t.Fatal(err)
		}
		tx, err := db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if seq, err := l.AppendTx(ctx, tx, "k.rolled", map[string]string{"a": "1"}); err != nil || seq != 2 {
			t.Fatalf("AppendTx = %d, %v", seq, err)
		}
		tx.Rollback()
		var seq int64
		err = db.InTx(ctx, func(tx *store.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO kv (k, v, updated_ms) VALUES (?, ?, ?)`, "appendtx", "x", 0); err != nil {
				return err
			}
			seq, err = l.AppendTx(ctx, tx, "k.committed", nil)
			return err
		})
		if err != nil || seq != 2 {
			t.Fatalf("AppendTx after a rollback = %d, %v; want position 2", seq, err)
		}
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				if i%2 == 0 {
					_, err = l.Append(ctx, "k.plain", nil)
				} else {
					err = db.InTx(ctx, func(tx *store.Tx) error {
						_, err := l.AppendTx(ctx, tx, "k.tx", nil)
						return err
					})
				}
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		n, err := l.Verify(ctx)
		if err != nil || n != 10 {
			t.Fatalf("Verify = %d, %v; want 10 records", n, err)
		}
		var rolled int
		db.QueryRow(ctx, `SELECT COUNT(*) FROM audit_log WHERE kind = 'k.rolled'`).Scan(&rolled)
		if rolled != 0 {
			t.Fatal("a rolled-back record is in the log")
		}
		other := storetest.SQLite(t)
		otx, err := other.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer otx.Rollback()
		if _, err := l.AppendTx(ctx, otx, "k.other", nil); err == nil {
			t.Fatal("AppendTx took a transaction of another database")
		}
	})
}

// TestAppendAfterTheHeadMoved: a Log tries the head it appended last
// before reading it; whatever moved the head since, the next record is
// chained to the record that is last in the log, as when the head is
// read: another appender (a replica) appended, an append was rolled back,
// the last record was changed. On both engines.
func TestAppendAfterTheHeadMoved(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for _, tc := range []struct {
			name string
			move func(t *testing.T, l, other *Log)
		}{
			{"nothing", func(t *testing.T, l, other *Log) {}},
			{"another appender", func(t *testing.T, l, other *Log) {
				if _, err := other.Append(ctx, "k.other", nil); err != nil {
					t.Fatal(err)
				}
			}},
			{"an append rolled back", func(t *testing.T, l, other *Log) {
				tx, err := db.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := l.AppendTx(ctx, tx, "k.rolled", nil); err != nil {
					t.Fatal(err)
				}
				tx.Rollback()
			}},
			{"the last record changed", func(t *testing.T, l, other *Log) {
				if _, err := db.Exec(ctx, `UPDATE audit_log SET hash = ? WHERE seq = (SELECT MAX(seq) FROM audit_log)`, Genesis); err != nil {
					t.Fatal(err)
				}
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				l, other := New(db, nil), New(db, nil)
				if _, err := l.Append(ctx, "k.before", nil); err != nil {
					t.Fatal(err)
				}
				tc.move(t, l, other)
				var lastSeq int64
				var lastHash string
				if err := db.QueryRow(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&lastSeq, &lastHash); err != nil {
					t.Fatal(err)
				}
				seq, err := l.Append(ctx, "k.after", nil)
				if err != nil || seq != lastSeq+1 {
					t.Fatalf("Append = %d, %v; want position %d", seq, err, lastSeq+1)
				}
				var prev string
				if err := db.QueryRow(ctx, `SELECT prev_hash FROM audit_log WHERE seq = ?`, seq).Scan(&prev); err != nil || prev != lastHash {
					t.Fatalf("chained to %q (%v), want the last record's %q", prev, err, lastHash)
				}
				if _, err := db.Exec(ctx, `DELETE FROM audit_log`); err != nil { // the next case starts a new chain
					t.Fatal(err)
				}
			})
		}
	})
}
