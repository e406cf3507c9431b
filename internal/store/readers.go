package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Readers beside SQLite's one writer.
//
// SQLite lets one connection write at a time; in WAL mode any number of
// other connections read meanwhile, each from the snapshot of the database
// as it was committed when its read began, and a reader never takes the
// write lock. A DB on a SQLite file therefore keeps two pools: the writer
// (the embedded *sql.DB, one connection: every write, every transaction,
// everything that is not a plain read, and every direct use of db.DB), and
// up to maxReaders() read-only connections (Reader) for the plain reads of
// DB.Query and DB.QueryRow that would otherwise queue for the writer.
//
// A plain read runs on the writer when the writer is idle, and on a reader
// only when the writer is busy (DB.PoolFor). Each connection has its own
// page cache, and SQLite empties a connection's cache whenever another
// connection has committed since its last read: the writer's is always
// warm, a reader's is cold after every commit and reads its pages again
// (BenchmarkTxRoundTrip/sqlite: sending every read to the readers cost
// ~6 % more CPU a movement and no throughput; reading on the writer when it
// is free costs what it did before, and a read no longer waits behind a
// write or a transaction).
//
// Consistency: a read on a reader sees everything committed before it
// began (a commit is in the WAL index before Commit or Exec returns), so a
// caller that writes and then reads sees its write, as it did on one
// connection. What a reader cannot see is a transaction still open on the
// writer, its own included: a transaction reads on the transaction (Tx),
// which runs on the writer. No code relies on more: with one connection a
// read outside a transaction could already come before or after any other
// request's write, and every check-then-act on a limit, a counter or a
// single use is one statement or one transaction on the writer. (The one
// connection was once said to make BEGIN IMMEDIATE unnecessary for atomic
// counters: they are single statements, still on the one writer, and
// transactions begin IMMEDIATE anyway, for another process on the file.)
//
// The readers are opened with query_only, so a write that reached one
// would fail ("attempt to write a readonly database") instead of taking
// the write lock beside the writer; IsRead only lets statements whose
// first keyword is SELECT through, and SQLite's SELECT never writes.
//
// A database in memory (":memory:", "file:…?mode=memory", a memdb VFS)
// has no WAL, and another connection would open another database: it keeps
// its one connection, and Reader is the writer. So does any database whose
// journal mode is not WAL, which is what an operator's own "file:" URI
// without _pragma=journal_mode(WAL) opens: without WAL a reader's lock
// would block the writer's commits. An operator's "file:" URI in WAL mode
// gets readers opened with the same URI, plus query_only and without
// _txlock (a reader's BEGIN must not take the write lock).
//
// Checkpoints: a checkpoint copies the WAL back into the database file up
// to the oldest snapshot a reader still holds, and the WAL starts over
// from its beginning only once all of it has been copied. With readers,
// the checkpointer (checkpoint.go) runs them in the background on a
// connection of its own instead of the writer after its commits, and
// finishes one when readers that always overlap let the WAL get long.
//
// Writers stay one connection, so they never meet SQLITE_BUSY among
// themselves, and a reader never takes the write lock, so the busy
// handler's sleeps (busy_timeout) are only ever met by another process on
// the same file and by the checkpointer (bounded by walWaitBusy).
type readers struct {
	pool  *sql.DB
	stmts *stmtCache
	ckpt  *checkpointer
}

// maxReaders is the number of read-only connections: one for each core
// but the writer's, up to 4. More readers than that only take CPU from the
// writer, the one connection every write waits for: with 4 readers on 2
// cores BenchmarkReadsBesideWrites read no faster than with 1 and its
// writer committed about half as often.
func maxReaders() int { return min(4, max(1, runtime.GOMAXPROCS(0)-1)) }

// IsRead reports whether q is a plain read, one that DB.Query and
// DB.QueryRow run on a reader on SQLite: its first keyword (after blanks
// and comments) is SELECT. Anything else stays on the writer: INSERT,
// UPDATE or DELETE … RETURNING; WITH …, which may carry a write; PRAGMA.
func IsRead(q string) bool {
	for {
		q = strings.TrimLeft(q, " \t\r\n\f(")
		switch {
		case strings.HasPrefix(q, "--"):
			i := strings.IndexByte(q, '\n')
			if i < 0 {
				return false
			}
			q = q[i+1:]
			continue
		case strings.HasPrefix(q, "/*"):
			i := strings.Index(q, "*/")
			if i < 0 {
				return false
			}
			q = q[i+2:]
			continue
		}
		break
	}
	if len(q) < 6 || !strings.EqualFold(q[:6], "SELECT") {
		return false
	}
	if len(q) == 6 {
		return true
	}
	c := q[6]
	return !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80)
}

// readerFor is the readers to run q on now, or nil: q is not a plain
// read, there are no readers, or the writer is idle (its page cache is
// warm; a reader's is emptied by every commit).
func (db *DB) readerFor(q string) *readers {
	if db.rd == nil || !IsRead(q) || !db.batch.busy() && db.DB.Stats().InUse == 0 {
		return nil
	}
	return db.rd
}

// Reader is the pool for read-only work outside any transaction, for a
// caller that prepares its own statements or needs one connection for a
// read snapshot (BEGIN DEFERRED … ROLLBACK): on a SQLite file, the
// read-only connections beside the writer; otherwise (PostgreSQL, SQLite
// in memory or not in WAL mode) the DB's own pool. A write on it fails on
// SQLite. PoolFor picks the pool for a statement as DB.Query does.
func (db *DB) Reader() *sql.DB {
	if db.rd != nil {
		return db.rd.pool
	}
	return db.DB
}

// Readers is the number of read-only connections beside the writer (0:
// reads share the DB's pool, as on PostgreSQL and SQLite in memory).
func (db *DB) Readers() int {
	if db.rd == nil {
		return 0
	}
	return maxReaders()
}

// PoolFor is the pool to run q on now, outside any transaction, as
// DB.Query does: the writer (db.DB) for anything but a plain read
// (IsRead), and for a plain read while the writer is idle; Reader while it
// is busy. A caller that keeps prepared statements keeps one per pool (a
// statement prepared on Reader cannot be used in a transaction: Tx.Stmt
// refuses a statement of another pool).
func (db *DB) PoolFor(q string) *sql.DB {
	if db.readerFor(q) != nil {
		return db.rd.pool
	}
	return db.DB
}

// openReaders opens the readers of a SQLite database whose journal mode
// is WAL; otherwise it leaves the DB with its one connection.
func (db *DB) openReaders(ctx context.Context, dsn string) error {
	var mode string
	if err := db.DB.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return fmt.Errorf("reading the sqlite journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return nil
	}
	rdsn, err := readerDSN(dsn)
	if err != nil {
		return err
	}
	pool, err := sql.Open("sqlite", rdsn)
	if err != nil {
		return fmt.Errorf("opening the sqlite readers: %w", err)
	}
	n := maxReaders()
	pool.SetMaxOpenConns(n)
	pool.SetMaxIdleConns(n)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.PingContext(pctx); err != nil {
		pool.Close()
		return fmt.Errorf("connecting a sqlite reader: %w", err)
	}
	wal, err := walFile(ctx, db.DB)
	if err != nil {
		pool.Close()
		return err
	}
	db.rd = &readers{pool: pool, stmts: newStmtCache(pool)}
	if wal == "" {
		return nil
	}
	// The checkpoints move off the writer to a connection of their own
	// (checkpoint.go). If that connection cannot be had, the writer keeps
	// checkpointing itself.
	own, err := sql.Open("sqlite", rdsn)
	if err == nil {
		own.SetMaxOpenConns(1)
		err = own.PingContext(pctx)
	}
	if err == nil {
		_, err = db.DB.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 0`)
	}
	if err != nil {
		if own != nil {
			own.Close()
		}
		pool.Close()
		db.rd = nil
		return fmt.Errorf("opening the sqlite checkpointer: %w", err)
	}
	db.rd.ckpt = startCheckpointer(db.DB, own, wal)
	return nil
}

// readerDSN is the DSN of a reader of the database that dsn (a path or a
// file: URI, as in Config) opens.
func readerDSN(dsn string) (string, error) {
	if !strings.HasPrefix(dsn, "file:") {
		return "file:" + uriPath(dsn) + "?_pragma=busy_timeout(" + strconv.Itoa(sqliteBusyTimeout) + ")&_pragma=query_only(1)", nil
	}
	base, query, _ := strings.Cut(dsn, "?")
	query, _, _ = strings.Cut(query, "#")
	base, _, _ = strings.Cut(base, "#")
	v, err := url.ParseQuery(query)
	if err != nil {
		// Never repeat the DSN (its query may name a key or a password
		// of a VFS).
		return "", fmt.Errorf("%w: the query of the sqlite file: URI does not parse: %v", ErrConfig, err)
	}
	v.Del("_txlock")
	v.Del("_query_only")
	v.Add("_pragma", "query_only(1)")
	return base + "?" + v.Encode(), nil
}

func (db *DB) closeReaders() {
	if db.rd == nil {
		return
	}
	db.rd.ckpt.stop()
	db.rd.stmts.close()
	db.rd.pool.Close()
}
