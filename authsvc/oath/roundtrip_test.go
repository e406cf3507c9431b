package oath

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/egate-bank/egate/internal/store"
)

// countingConnector wraps the SQLite driver and counts the statements sent
// to the database (executions, queries, BEGIN and COMMIT/ROLLBACK).
type countingConnector struct {
	drv  driver.Driver
	dsn  string
	sent atomic.Int64
}

func (c *countingConnector) Connect(context.Context) (driver.Conn, error) {
	cn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: cn, c: c}, nil
}

func (c *countingConnector) Driver() driver.Driver { return c.drv }

type countingConn struct {
	driver.Conn
	c *countingConnector
}

func (cn *countingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	st, err := cn.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	return &countingStmt{Stmt: st, c: cn.c}, nil
}

func (cn *countingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	cn.c.sent.Add(1)
	return cn.Conn.(driver.ExecerContext).ExecContext(ctx, q, args)
}

func (cn *countingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	cn.c.sent.Add(1)
	return cn.Conn.(driver.QueryerContext).QueryContext(ctx, q, args)
}

func (cn *countingConn) BeginTx(ctx context.Context, o driver.TxOptions) (driver.Tx, error) {
	cn.c.sent.Add(1)
	tx, err := cn.Conn.(driver.ConnBeginTx).BeginTx(ctx, o)
	if err != nil {
		return nil, err
	}
	return countingTx{Tx: tx, c: cn.c}, nil
}

type countingTx struct {
	driver.Tx
	c *countingConnector
}

func (t countingTx) Commit() error   { t.c.sent.Add(1); return t.Tx.Commit() }
func (t countingTx) Rollback() error { t.c.sent.Add(1); return t.Tx.Rollback() }

type countingStmt struct {
	driver.Stmt
	c *countingConnector
}

func (s *countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.c.sent.Add(1)
	return s.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (s *countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.c.sent.Add(1)
	return s.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
}

// TestVerifyStatements pins the cost of a verification in statements sent
// to the database: a right code by serial or by customer is two (count the
// attempt and load the token; move the ledger), a wrong code two (count;
// record the failure). Statements are prepared once per Service.
func TestVerifyStatements(t *testing.T) {
	ctx := context.Background()
	sq, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	drv := sq.Driver()
	sq.Close()
	cc := &countingConnector{drv: drv, dsn: "file:" + filepath.Join(t.TempDir(), "c.db") + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"}
	sdb := sql.OpenDB(cc)
	sdb.SetMaxOpenConns(1)
	t.Cleanup(func() { sdb.Close() })
	db := &store.DB{DB: sdb} // SQLite dialect: no rebinding
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	f := setup(t, db, Config{MaxFailures: 3})
	now := f.clk.Now()
	steps := []struct {
		name  string
		l     Lookup
		code  string
		want  error
		stmts int64
	}{
		{"right code by serial", Lookup{Serial: "H0001"}, hotpCode(0), nil, 2},
		{"right code by serial and key id", Lookup{Serial: "H0001", KeyID: "1"}, hotpCode(3), nil, 2},
		{"right code by customer (TOTP)", Lookup{PassportID: "P-T0001"}, totpCode(now), nil, 2},
		{"wrong code", Lookup{Serial: "H0001"}, "000000", ErrWrongCode, 2},
		{"replayed code", Lookup{Serial: "H0001"}, hotpCode(3), ErrReplay, 2},
	}
	for _, st := range steps {
		before := cc.sent.Load()
		_, err := f.svc.VerifyCode(ctx, st.l, st.code)
		if st.want == nil && err != nil || st.want != nil && !errors.Is(err, st.want) {
			t.Fatalf("%s: error %v, want %v", st.name, err, st.want)
		}
		if n := cc.sent.Load() - before; n != st.stmts {
			t.Errorf("%s: %d statements, want %d", st.name, n, st.stmts)
		}
	}
}
