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
