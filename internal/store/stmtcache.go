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
type stmtCache struct {
	mu sync.RWMutex
	m  map[string]*sql.Stmt
}

func newStmtCache() *stmtCache { return &stmtCache{m: map[string]*sql.Stmt{}} }

func (c *stmtCache) get(q string) *sql.Stmt {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[q]
}

// stmt is the cached statement of q, prepared now if it is not cached;
// nil when there is no cache, the cache is full, or q does not prepare
// (the caller then runs q unprepared and reports its error). It must not
// be called inside a transaction of db for a query not cached yet (SQLite
// has one connection, which the transaction holds); Tx notes those and
// prepares them when it ends.
func (db *DB) stmt(ctx context.Context, q string) *sql.Stmt {
	c := db.stmts
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
	st, err := db.DB.PrepareContext(ctx, db.Rebind(q))
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

// CachedStatements is the number of statements in the cache (0 on
// PostgreSQL, which does not use it).
func (db *DB) CachedStatements() int {
	if db.stmts == nil {
		return 0
	}
	db.stmts.mu.RLock()
	defer db.stmts.mu.RUnlock()
	return len(db.stmts.m)
}

// Close closes the cached statements, then the database.
func (db *DB) Close() error {
	if c := db.stmts; c != nil {
		c.mu.Lock()
		for q, st := range c.m {
			st.Close()
			delete(c.m, q)
		}
		c.mu.Unlock()
	}
	return db.DB.Close()
}
