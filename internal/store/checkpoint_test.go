package store_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// TestCheckpointBoundsTheWAL: a reader holding an old snapshot keeps
// SQLite's automatic checkpoints from ever finishing, and the WAL grows
// past its limit with every commit; the checkpoint the checkpointer runs
// gives up (ErrCheckpointBusy, without holding up the writer for long)
// while the snapshot is held, and truncates the WAL to nothing once it is
// released. Nothing is lost, the writer keeps its busy timeout, and
// writes go on.
func TestCheckpointBoundsTheWAL(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	ctx := guard(t)
	var file string
	if err := db.DB.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
		t.Fatal(err)
	}
	walSize := func() int64 {
		st, err := os.Stat(file + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	if err := db.CheckpointWAL(ctx); err != nil {
		t.Fatalf("a short WAL: %v", err)
	}

	snap, err := db.Reader().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	if _, err := snap.ExecContext(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	var n0 int
	if err := snap.QueryRowContext(ctx, `SELECT COUNT(*) FROM kv`).Scan(&n0); err != nil {
		t.Fatal(err)
	}
	const rows = 48
	big := strings.Repeat("x", 512<<10)
	for i := range rows {
		if _, err := db.Exec(ctx, `INSERT INTO kv (k, v, updated_ms) VALUES (?, ?, ?)`, "wal-"+string(rune('a'+i%26))+string(rune('a'+i/26)), big, i); err != nil {
			t.Fatal(err)
		}
	}
	if s := walSize(); s < 20<<20 {
		t.Fatalf("with a snapshot held the WAL is %d bytes; the test means to grow it past the checkpointer's limit", s)
	}
	if err := db.CheckpointWAL(ctx); !errors.Is(err, store.ErrCheckpointBusy) {
		t.Fatalf("checkpoint with a snapshot held: %v, want ErrCheckpointBusy", err)
	}
	if _, err := snap.ExecContext(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	snap.Close()

	if err := db.CheckpointWAL(ctx); err != nil {
		t.Fatalf("checkpoint once the snapshot is released: %v", err)
	}
	if s := walSize(); s != 0 {
		t.Fatalf("after the checkpoint the WAL is %d bytes, want 0", s)
	}
	var busy int
	if err := db.DB.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy); err != nil || busy != 10000 {
		t.Fatalf("the writer's busy_timeout after a checkpoint: %d %v, want 10000", busy, err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO kv (k, v, updated_ms) VALUES (?, ?, ?)`, "after", "1", 0); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM kv`).Scan(&n); err != nil || n != n0+rows+1 {
		t.Fatalf("%d rows (%v), want %d", n, err, n0+rows+1)
	}
}
