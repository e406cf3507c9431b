package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckpointsOffTheWriter: with readers, the writer never checkpoints
// after its commits (wal_autocheckpoint 0), and the checkpointer's
// passive checkpoints on their own connection are what keeps the WAL
// short: written in chunks with a checkpoint between them, the WAL file
// stays about one chunk long (the writer starts it over once a checkpoint
// has copied all of it), where without them it would grow until the
// checkpointer's size limit makes it truncate the file.
func TestCheckpointsOffTheWriter(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "egate.db")
	db, err := Open(ctx, Config{Driver: SQLite, DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.rd == nil || db.rd.ckpt == nil {
		t.Fatal("a SQLite file in WAL mode has no checkpointer")
	}
	var auto int
	if err := db.DB.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("the writer's wal_autocheckpoint = %d (%v), want 0: it checkpoints after its own commits", auto, err)
	}
	const chunk, chunks = 200, 8 // rows of ~4 KB, each its own commit: ~4 MB of WAL a chunk
	big := strings.Repeat("x", 4000)
	var most int64 // the WAL's largest size
	for c := range chunks {
		for i := range chunk {
			if _, err := db.Exec(ctx, `INSERT INTO kv (k, v, updated_ms) VALUES (?, ?, ?)`, "k"+itoa(c*chunk+i), big, i); err != nil {
				t.Fatal(err)
			}
		}
		st, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		most = max(most, st.Size())
		if err := db.rd.ckpt.passive(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Every chunk's pages went through a WAL of about one chunk, two at
	// most (a background checkpoint may come in the middle of a chunk);
	// without the checkpoints it would reach walLimit (16 MiB).
	if limit := int64(walLimit / 2); most > limit {
		t.Fatalf("the WAL grew to %d bytes over %d chunks, want at most %d: the checkpoints did not let the writer start it over", most, chunks, limit)
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM kv WHERE k LIKE 'k%'`).Scan(&n); err != nil || n != chunk*chunks {
		t.Fatalf("%d rows (%v), want %d", n, err, chunk*chunks)
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{digits[i%10]}, b...)
	}
	return string(b)
}
