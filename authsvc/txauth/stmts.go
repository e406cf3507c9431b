package txauth

import (
	"context"
	"database/sql"
	"sync"

	"github.com/egate-bank/egate/internal/store"
)

// stmts caches the service's prepared statements: SQLite would otherwise
// parse every statement again on every request (database/sql prepares a
// statement once per connection and keeps it). A plain read runs on the
// pool store.DB.PoolFor picks (on SQLite a reader beside the one writer
// while the writer is busy), so it is kept prepared on both; everything
// else, and every statement of a transaction, on the writer.
type stmts struct {
	db *store.DB
	m  sync.Map // query → *sql.Stmt on the writer (db.DB)
	r  sync.Map // query → *sql.Stmt on the readers (db.Reader()), plain reads
}

// get is q prepared on the pool it runs on now, outside a transaction.
func (c *stmts) get(ctx context.Context, q string) (*sql.Stmt, error) {
	if pool := c.db.PoolFor(q); pool != c.db.DB {
		return cached(ctx, &c.r, pool, c.db.Rebind(q), q)
	}
	return cached(ctx, &c.m, c.db.DB, c.db.Rebind(q), q)
}

// cached is m's statement of q, prepared on pool (as bound) if m has none.
func cached(ctx context.Context, m *sync.Map, pool *sql.DB, bound, q string) (*sql.Stmt, error) {
	if st, ok := m.Load(q); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := pool.PrepareContext(ctx, bound)
	if err != nil {
		return nil, err
	}
	if old, loaded := m.LoadOrStore(q, st); loaded {
		st.Close()
		return old.(*sql.Stmt), nil
	}
	return st, nil
}

// row is QueryRow through a prepared statement.
func (c *stmts) row(ctx context.Context, q string, args ...any) scanner {
	st, err := c.get(ctx, q)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

// rows is Query through a prepared statement.
func (c *stmts) rows(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := c.get(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (c *stmts) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	st, err := cached(ctx, &c.m, c.db.DB, c.db.Rebind(q), q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// tx is a statement inside a transaction. A statement not prepared
// before on the writer is prepared on the transaction (preparing it on the
// writer could wait for the very connection the transaction holds: SQLite
// has one).
func (c *stmts) tx(ctx context.Context, tx *store.Tx, q string) (*sql.Stmt, error) {
	if st, ok := c.m.Load(q); ok {
		return tx.StmtContext(ctx, st.(*sql.Stmt)), nil
	}
	return tx.PrepareContext(ctx, c.db.Rebind(q))
}

// prepare prepares queries ahead (outside any transaction) on the
// writer, for tx.
func (c *stmts) prepare(ctx context.Context, qs ...string) error {
	for _, q := range qs {
		if _, err := cached(ctx, &c.m, c.db.DB, c.db.Rebind(q), q); err != nil {
			return err
		}
	}
	return nil
}

type scanner interface{ Scan(dst ...any) error }

type errRow struct{ err error }

func (e errRow) Scan(...any) error { return e.err }

func (c *stmts) close() {
	for _, m := range []*sync.Map{&c.m, &c.r} {
		m.Range(func(_, v any) bool { v.(*sql.Stmt).Close(); return true })
	}
}

// The statements run inside transactions, prepared when the service starts.
const (
	qConsumeGrant = `UPDATE tx_grants SET used_ms = ? WHERE token_hash = ? AND intent_hash = ? AND used_ms IS NULL AND expires_ms > ? RETURNING intent_hash`
	qExecuted     = `UPDATE tx_intents SET state = 'executed', updated_ms = ? WHERE hash = ?`
	qGranted      = `UPDATE tx_intents SET state = 'granted', proved_level = ?, proved_factor = ?, updated_ms = ? WHERE hash = ? AND state = 'allowed'`
	qInsertGrant  = `INSERT INTO tx_grants (token_hash, intent_hash, created_ms, expires_ms) VALUES (?, ?, ?, ?)`
	qInsertIntent = `INSERT INTO tx_intents (hash, customer, idem_key, body, payee, amount, device, action, level, decision, features, state, created_ms, updated_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
)

var txQueries = []string{qConsumeGrant, qExecuted, qGranted, qInsertGrant, qInsertIntent}
