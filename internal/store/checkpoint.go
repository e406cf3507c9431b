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

// The checkpointer copies a SQLite database's WAL back into the database
// file in the background, and keeps the WAL from growing without bound.
//
// SQLite checkpoints on its own after a commit leaves 1,000 pages in the
// WAL (wal_autocheckpoint), on the connection that committed: with one
// writer, the writer, which then copies the pages and waits for two
// fsyncs (the WAL, then the database file) while every write waits for
// it. A DB with readers turns that off on its writer (wal_autocheckpoint
// 0) and the checkpointer runs the same PASSIVE checkpoint every
// walPassiveEvery on a connection of its own: it copies back what no
// reader's snapshot still needs, never waits for a lock, and writers go
// on meanwhile. The writer starts the WAL over from its beginning at its
// next write once a checkpoint has copied all of it. (On this machine the
// writer's own checkpoints cost the money path ~20 % of its throughput:
// BenchmarkTxRoundTrip/sqlite ran that much faster with the database on
// tmpfs, whose fsync is free.)
//
// Readers that keep overlapping the writer's commits can put the start
// over off for ever, and the file then grows with every commit. So the
// checkpointer also looks at the WAL file's size every walCheckEvery and,
// past walLimit, runs a TRUNCATE checkpoint on the writer: it waits (at
// most walWaitBusy, SQLite's busy handler sleeping meanwhile) for the
// readers of older snapshots to finish, copies everything back and
// truncates the file to nothing. Readers are short, so it seldom waits; a
// long one (a ledger check's snapshot) makes it give up until the next
// look, and writes are held up for at most walWaitBusy meanwhile.
const (
	walLimit        = 16 << 20 // bytes; the WAL of 1,000 pages of 4 KiB is ~4 MiB
	walPassiveEvery = 50 * time.Millisecond
	walCheckEvery   = 250 * time.Millisecond
	walWaitBusy     = 100 * time.Millisecond
)

// sqliteBusyTimeout is the busy_timeout, in milliseconds, of the
// connections opened from a database path.
const sqliteBusyTimeout = 10000

type checkpointer struct {
	writer *sql.DB
	own    *sql.DB // the passive checkpoints' connection (query_only)
	wal    string  // the WAL file
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex // one checkpoint at a time
}

// startCheckpointer looks after the WAL file wal of the database that
// writer writes; own is a connection of its own on the same database.
func startCheckpointer(writer, own *sql.DB, wal string) *checkpointer {
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{writer: writer, own: own, wal: wal, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		t := time.NewTicker(walPassiveEvery)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				// An error is tried again at the next tick: a library
				// never logs, and the next checkpoint works on what it
				// can.
				c.passive(ctx)
				if now.Sub(last) >= walCheckEvery {
					last = now
					c.check(ctx)
				}
			}
		}
	}()
	return c
}

// passive runs a PASSIVE checkpoint on the checkpointer's own connection.
func (c *checkpointer) passive(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var busy, logged, copied int
	if err := c.own.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logged, &copied); err != nil {
		return fmt.Errorf("sqlite checkpoint: %w", err)
	}
	return nil
}

func (c *checkpointer) stop() {
	if c == nil {
		return
	}
	c.cancel()
	<-c.done
	c.own.Close()
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
