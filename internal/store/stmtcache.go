package store

import (
	"context"
	"database/sql"
	"sync"
)

// maxCachedStmts bounds the statement cache: egate's queries are
// constants, so the bound is only a guard against a caller that builds
// queries from data (they then run unprepared past it).
const maxCachedStmts = 512

// stmtCache keeps one prepared statement per query text for the life of
// the DB. On SQLite, parsing a statement costs about as much as running
// it; database/sql keeps a prepared *sql.Stmt per connection and
// re-prepares it on a connection that lacks it. PostgreSQL needs none:
// pgx caches prepared statements per connection itself.
//
// A DB on SQLite has two: the writer's and, with readers, the readers'
// (a statement prepared on one pool cannot run on the other, nor the
// readers' in a transaction).
type stmtCache struct {
	pool *sql.DB // the statements are prepared on it
	mu   sync.RWMutex
	m    map[string]*sql.Stmt
}

func newStmtCache(pool *sql.DB) *stmtCache {
	return &stmtCache{pool: pool, m: map[string]*sql.Stmt{}}
}

func (c *stmtCache) get(q string) *sql.Stmt {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[q]
}

// stmt is the writer's cached statement of q, prepared now if it is not
// cached; nil when there is no cache, the cache is full, or q does not
// prepare (the caller then runs q unprepared and reports its error). It
// must not be called inside a transaction of db for a query not cached yet
// (SQLite's writer has one connection, which the transaction holds); Tx
// notes those and prepares them when it ends.
func (db *DB) stmt(ctx context.Context, q string) *sql.Stmt {
	return db.stmts.stmt(ctx, q)
}

// stmt is the cached statement of q (a query of SQLite, which needs no
// Rebind), prepared on c's pool now if it is not cached; nil as DB.stmt.
func (c *stmtCache) stmt(ctx context.Context, q string) *sql.Stmt {
	if c == nil {
		return nil
	}
	if st := c.get(q); st != nil {
		return st
	}
	c.mu.RLock()
	full := len(c.m) >= maxCachedStmts
	c.mu.RUnlock()
	if full {
		return nil
	}
	st, err := c.pool.PrepareContext(ctx, q)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[q]; ok {
		st.Close()
		return old
	}
	if len(c.m) >= maxCachedStmts {
		st.Close()
		return nil
	}
	c.m[q] = st
	return st
}

func (c *stmtCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

func (c *stmtCache) close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	for q, st := range c.m {
		st.Close()
		delete(c.m, q)
	}
	c.mu.Unlock()
}

// CachedStatements is the number of statements in the caches (0 on
// PostgreSQL, which does not use them). A plain read prepared on both
// the writer and the readers counts twice.
func (db *DB) CachedStatements() int {
	n := db.stmts.len()
	if db.rd != nil {
		n += db.rd.stmts.len()
	}
	return n
}

// Close closes the readers and the cached statements, then the database.
func (db *DB) Close() error {
	db.batch.stop()
	db.closeReaders()
	db.stmts.close()
	return db.DB.Close()
}
