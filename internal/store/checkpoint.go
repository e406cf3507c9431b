package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// The checkpointer keeps the WAL of a SQLite database with readers from
// growing without bound.
//
// SQLite checkpoints on its own after a commit leaves 1,000 pages in the
// WAL (wal_autocheckpoint), passively: it copies back what no reader's
// snapshot still needs and never waits. The WAL starts over from its
// beginning only once a checkpoint has copied all of it; readers that
// keep overlapping the writer's commits can put that off for ever, and the
// file then grows with every commit. So the checkpointer looks at the WAL
// file's size every walCheckEvery and, past walLimit, runs a TRUNCATE
// checkpoint on the writer: it waits (at most walWaitBusy, SQLite's busy
// handler sleeping meanwhile) for the readers of older snapshots to
// finish, copies everything back and truncates the file to nothing.
// Readers are short, so it seldom waits; a long one (a ledger check's
// snapshot) makes it give up until the next look, and writes are held up
// for at most walWaitBusy meanwhile.
const (
	walLimit      = 16 << 20 // bytes; the WAL of 1,000 pages of 4 KiB is ~4 MiB
	walCheckEvery = 250 * time.Millisecond
	walWaitBusy   = 100 * time.Millisecond
)

// sqliteBusyTimeout is the busy_timeout, in milliseconds, of the
// connections opened from a database path.
const sqliteBusyTimeout = 10000

type checkpointer struct {
	writer *sql.DB
	wal    string // the WAL file
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex // one checkpoint at a time
}

// startCheckpointer looks after the WAL file wal of the database that
// writer writes.
func startCheckpointer(writer *sql.DB, wal string) *checkpointer {
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{writer: writer, wal: wal, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		t := time.NewTicker(walCheckEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				// An error is tried again at the next look: a library
				// never logs, and the next commit's checkpoint and this
				// one both keep working on what they can.
				c.check(ctx)
			}
		}
	}()
	return c
}

func (c *checkpointer) stop() {
	if c == nil {
		return
	}
	c.cancel()
	<-c.done
}

// ErrCheckpointBusy reports a checkpoint that could not copy the whole
// WAL back in its time: a reader still holds an older snapshot.
var ErrCheckpointBusy = errors.New("sqlite checkpoint: a reader holds an older snapshot")

// check truncates the WAL if it is longer than walLimit.
func (c *checkpointer) check(ctx context.Context) error {
	st, err := os.Stat(c.wal)
	if err != nil || st.Size() <= walLimit {
		return nil
	}
	return c.truncate(ctx)
}

// truncate runs a TRUNCATE checkpoint on the writer, waiting at most
// walWaitBusy for readers.
func (c *checkpointer) truncate(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	conn, err := c.writer.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite checkpoint: %w", err)
	}
	defer conn.Close()
	var was int
	if err := conn.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&was); err != nil {
		return fmt.Errorf("sqlite checkpoint: %w", err)
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, walWaitBusy.Milliseconds())); err != nil {
		return fmt.Errorf("sqlite checkpoint: %w", err)
	}
	var busy, logged, copied int
	cerr := conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logged, &copied)
	bctx := context.WithoutCancel(ctx)
	if _, err := conn.ExecContext(bctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, was)); err != nil {
		// The writer must not keep the short timeout: drop the connection
		// (database/sql opens a new one from the DSN).
		conn.Raw(func(any) error { return driver.ErrBadConn })
		return fmt.Errorf("sqlite checkpoint: restoring busy_timeout: %w", err)
	}
	switch {
	case cerr != nil:
		return fmt.Errorf("sqlite checkpoint: %w", cerr)
	case busy != 0:
		return ErrCheckpointBusy
	}
	return nil
}

// CheckpointWAL truncates the WAL of a SQLite database with readers if it
// has grown past its limit, as the checkpointer does on its own every
// walCheckEvery; ErrCheckpointBusy if a reader's snapshot kept it from
// finishing. Nothing to do elsewhere (PostgreSQL, SQLite without readers,
// whose one connection lets the automatic checkpoint finish).
func (db *DB) CheckpointWAL(ctx context.Context) error {
	if db.rd == nil || db.rd.ckpt == nil {
		return nil
	}
	return db.rd.ckpt.check(ctx)
}

// walFile is the WAL file of the main database of writer ("" in memory).
func walFile(ctx context.Context, writer *sql.DB) (string, error) {
	var f string
	if err := writer.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&f); err != nil {
		return "", fmt.Errorf("reading the sqlite file name: %w", err)
	}
	if f == "" {
		return "", nil
	}
	return f + "-wal", nil
}
