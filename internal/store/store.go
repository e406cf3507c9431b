// Package store opens egate's database: embedded SQLite (modernc.org/sqlite,
// the default, one file) or PostgreSQL through pgx (several replicas on one
// database). Both run the same embedded migrations, and the rest of egate
// writes SQL once, with `?` placeholders that Rebind turns into `$n` for
// PostgreSQL.
//
// Counters that guard security are single atomic statements (UPDATE … WHERE
// … RETURNING, INSERT … ON CONFLICT DO NOTHING) so that replicas never let
// more through than one server would; both engines support those forms.
//
// On a SQLite file (WAL mode) a DB is two pools: the writer, one
// connection, which runs every write, every transaction and every statement
// that is not a plain read; and a few read-only connections beside it
// (Reader), which WAL lets read while the writer writes: a plain read runs
// there while the writer is busy. A read sees everything committed before
// it started. See readers.go.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"
)

// Drivers egate supports.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Config is the database section of egate's config.
type Config struct {
	Driver string `yaml:"driver"` // sqlite (default) or postgres
	// DSN: for sqlite a file path (created on first start); for postgres a
	// URL such as postgres://egate@127.0.0.1:5432/egate?sslmode=disable.
	// A password belongs in PGPASSWORD or ~/.pgpass, not here.
	DSN          string `yaml:"dsn"`
	MaxOpenConns int    `yaml:"max-open-conns"`

	// For tools that inspect a database and must not create or change it
	// (egate admin audit): a SQLite file must already exist, and the
	// migrations are not applied. Not config keys.
	MustExist bool `yaml:"-"`
	NoMigrate bool `yaml:"-"`
}

// ErrConfig reports an unusable database configuration.
var ErrConfig = errors.New("database config")

// Validate checks the section.
func (c Config) Validate() error {
	switch c.Driver {
	case SQLite, Postgres:
	default:
		return fmt.Errorf("%w: driver %q: use %q or %q", ErrConfig, c.Driver, SQLite, Postgres)
	}
	if c.DSN == "" {
		return fmt.Errorf("%w: dsn is empty: give a SQLite file path or a postgres:// URL", ErrConfig)
	}
	if c.Driver == SQLite && looksLikeServerDSN(c.DSN) {
		// Never repeat the DSN: a server connection string may carry a
		// password, and SQLite would make a file named after it.
		return fmt.Errorf("%w: dsn looks like a PostgreSQL connection string, not a SQLite file path: set database.driver to postgres (and keep the password in PGPASSWORD or ~/.pgpass)", ErrConfig)
	}
	if c.Driver == Postgres {
		u, err := url.Parse(c.DSN)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return fmt.Errorf("%w: dsn for postgres must be a postgres:// URL", ErrConfig)
		}
		if _, ok := u.User.Password(); ok {
			return fmt.Errorf("%w: dsn carries a password; put it in PGPASSWORD or ~/.pgpass instead", ErrConfig)
		}
		// pgx also reads a password from the query (?password=…, and
		// ?sslpassword=… for the client key): refused as the one in the
		// user part is, and the DSN is never repeated.
		for k := range u.Query() {
			if strings.EqualFold(k, "password") || strings.EqualFold(k, "sslpassword") {
				return fmt.Errorf("%w: dsn carries a password in its %s parameter; put it in PGPASSWORD or ~/.pgpass instead", ErrConfig, strings.ToLower(k))
			}
		}
	}
	if c.MaxOpenConns < 0 {
		return fmt.Errorf("%w: max-open-conns must not be negative", ErrConfig)
	}
	return nil
}

// DB is an open database of either engine. The embedded *sql.DB is the
// writer: on SQLite its one connection; on PostgreSQL the pool.
type DB struct {
	*sql.DB
	driver string
	stmts  *stmtCache // the writer's; nil: statements are not cached (PostgreSQL, NewForDialect)
	batch  *batcher   // SQLite: the writer's jobs (batch.go); nil otherwise
	rd     *readers   // SQLite in WAL mode: the read-only pool beside the writer; nil otherwise
}

// Driver returns SQLite or Postgres.
func (db *DB) Driver() string { return db.driver }

// Open connects, checks the connection and applies pending migrations.
func Open(ctx context.Context, c Config) (*DB, error) {
	if c.Driver == "" {
		c.Driver = SQLite
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var (
		sdb *sql.DB
		err error
	)
	switch c.Driver {
	case SQLite:
		if err := checkSQLitePath(c.DSN, c.MustExist); err != nil {
			return nil, err
		}
		sdb, err = sql.Open("sqlite", sqliteDSN(c.DSN))
		if err == nil {
			// One writer at a time is SQLite's model: every write and
			// every transaction queues for this one connection, so
			// writers never meet SQLITE_BUSY among themselves. Plain
			// reads go to the readers opened below (readers.go).
			sdb.SetMaxOpenConns(1)
		}
	case Postgres:
		sdb, err = sql.Open("pgx", c.DSN)
		if err == nil {
			n := c.MaxOpenConns
			if n == 0 {
				n = 16
			}
			sdb.SetMaxOpenConns(n)
			sdb.SetMaxIdleConns(n)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s database: %w", c.Driver, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sdb.PingContext(pctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("connecting to the %s database: %w", c.Driver, err)
	}
	db := &DB{DB: sdb, driver: c.Driver}
	if c.Driver == SQLite {
		db.stmts = newStmtCache(sdb)
	}
	if !c.NoMigrate {
		if err := db.Migrate(ctx); err != nil {
			sdb.Close()
			return nil, err
		}
	}
	if c.Driver == SQLite {
		if err := db.openReaders(ctx, c.DSN); err != nil {
			sdb.Close()
			return nil, err
		}
		db.batch = startBatcher(db)
	}
	return db, nil
}

// looksLikeServerDSN tells a server connection string (a URL, or libpq's
// key=value form) from a file path.
func looksLikeServerDSN(dsn string) bool {
	if strings.HasPrefix(dsn, "file:") {
		return false
	}
	l := strings.ToLower(dsn)
	return strings.Contains(l, "://") || strings.HasPrefix(l, "postgres:") || strings.HasPrefix(l, "postgresql:") ||
		strings.Contains(l, "password=") || strings.Contains(l, "host=") || strings.Contains(l, "dbname=")
}

// checkSQLitePath tells, before SQLite's own "unable to open database file",
// that the directory of a database file path is missing, and with
// mustExist that the file itself is (SQLite would create it). A "file:" URI
// is passed to SQLite as it is.
func checkSQLitePath(dsn string, mustExist bool) error {
	if strings.HasPrefix(dsn, "file:") || dsn == ":memory:" {
		return nil
	}
	dir := "."
	switch i := strings.LastIndex(dsn, string(filepath.Separator)); {
	case i == 0:
		dir = dsn[:1]
	case i > 0:
		dir = dsn[:i] // as the operator wrote it ("./var", not "var")
	}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("sqlite database %s: the directory %s does not exist: create it, run egate demo once (it makes ./var), or set database.dsn", dsn, dir)
	case err != nil:
		return fmt.Errorf("sqlite database %s: %w", dsn, err)
	case !st.IsDir():
		return fmt.Errorf("sqlite database %s: %s is not a directory: set database.dsn", dsn, dir)
	}
	if mustExist {
		if _, err := os.Stat(dsn); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sqlite database %s does not exist: check the path (--db or database.dsn); nothing was created", dsn)
		}
	}
	return nil
}

func sqliteDSN(path string) string {
	if strings.HasPrefix(path, "file:") {
		return path
	}
	// WAL for concurrent readers, a busy timeout so a second process waits
	// instead of failing, and foreign keys on. Transactions begin
	// IMMEDIATE: one that reads then writes holds the write lock from its
	// start, so a second process (another replica on the same file) waits
	// its turn instead of failing at its first write (the audit log's
	// append relies on it).
	return "file:" + uriPath(path) + "?_pragma=busy_timeout(" + strconv.Itoa(sqliteBusyTimeout) + ")&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

// uriPath escapes what a file: URI would read as its query (?), its
// fragment (#) or an escape (%), so that a database path holding them opens
// that very file instead of one named by the part before them.
func uriPath(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
}

// Rebind turns `?` placeholders into `$1, $2, …` on PostgreSQL. Question
// marks inside single-quoted literals are left alone.
func (db *DB) Rebind(q string) string {
	if db.driver != Postgres {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	inQuote := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			inQuote = !inQuote
			b.WriteByte(c)
		case c == '?' && !inQuote:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Exec is ExecContext with Rebind, through a cached prepared statement on
// SQLite (stmtcache.go).
func (db *DB) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if db.batch != nil && isWrite(q) {
		var res sql.Result
		err := db.batch.do(ctx, func(tx *Tx) error {
			var err error
			res, err = tx.Exec(ctx, q, args...)
			return err
		})
		return res, err
	}
	if st := db.stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return db.DB.ExecContext(ctx, db.Rebind(q), args...)
}

// Query is QueryContext with Rebind, through a cached prepared statement
// on SQLite; a plain read (IsRead) runs on a reader there.
func (db *DB) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if r := db.readerFor(q); r != nil {
		if st := r.stmts.stmt(ctx, q); st != nil {
			return st.QueryContext(ctx, args...)
		}
		return r.pool.QueryContext(ctx, q, args...)
	}
	if st := db.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return db.DB.QueryContext(ctx, db.Rebind(q), args...)
}

// QueryRow is QueryRowContext with Rebind, through a cached prepared
// statement on SQLite; a plain read (IsRead) runs on a reader there.
func (db *DB) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if r := db.readerFor(q); r != nil {
		if st := r.stmts.stmt(ctx, q); st != nil {
			return st.QueryRowContext(ctx, args...)
		}
		return r.pool.QueryRowContext(ctx, q, args...)
	}
	if st := db.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return db.DB.QueryRowContext(ctx, db.Rebind(q), args...)
}

// Tx is a transaction that rebinds like DB.
type Tx struct {
	*sql.Tx
	db *DB
	// missed are the queries run in this transaction that were not in
	// the writer's statement cache; they are prepared on the writer once
	// the transaction ends (preparing them now would wait for the very
	// connection the transaction holds: SQLite's writer has one).
	missed []string
	// batched: a job of the SQLite batcher (batch.go), whose transaction
	// other jobs share: its statements run without their context's
	// cancellation, and Commit and Rollback are InTx's.
	batched bool
}

// Begin starts a transaction. It runs on the writer, reads included: a
// transaction that reads its own writes, or reads then writes, does so on
// one connection.
func (db *DB) Begin(ctx context.Context) (*Tx, error) {
	tx, err := db.DB.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &Tx{Tx: tx, db: db}, nil
}

// DB is the database the transaction runs on.
func (tx *Tx) DB() *DB { return tx.db }

// stmt is the cached statement of q bound to the transaction, or nil
// (then q is noted to be prepared when the transaction ends).
func (tx *Tx) stmt(ctx context.Context, q string) *sql.Stmt {
	c := tx.db.stmts
	if c == nil {
		return nil
	}
	if st := c.get(q); st != nil {
		return tx.Tx.StmtContext(ctx, st)
	}
	if len(tx.missed) < 16 {
		tx.missed = append(tx.missed, q)
	}
	return nil
}

// Exec is ExecContext with Rebind (through the statement cache).
func (tx *Tx) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	ctx = tx.ctx(ctx)
	if st := tx.stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return tx.Tx.ExecContext(ctx, tx.db.Rebind(q), args...)
}

// Query is QueryContext with Rebind (through the statement cache).
func (tx *Tx) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	ctx = tx.ctx(ctx)
	if st := tx.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return tx.Tx.QueryContext(ctx, tx.db.Rebind(q), args...)
}

// QueryRow is QueryRowContext with Rebind (through the statement cache).
func (tx *Tx) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	ctx = tx.ctx(ctx)
	if st := tx.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return tx.Tx.QueryRowContext(ctx, tx.db.Rebind(q), args...)
}

// ctx is the context a statement of tx runs with: in a batch, without
// ctx's cancellation (see batch.go).
func (tx *Tx) ctx(ctx context.Context) context.Context {
	if tx.batched {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// Commit commits, then prepares the statements the transaction missed.
func (tx *Tx) Commit() error {
	if tx.batched {
		return errInBatch
	}
	err := tx.Tx.Commit()
	tx.prepareMissed()
	return err
}

// Rollback rolls back, then prepares the statements the transaction
// missed.
func (tx *Tx) Rollback() error {
	if tx.batched {
		return errInBatch
	}
	err := tx.Tx.Rollback()
	tx.prepareMissed()
	return err
}

func (tx *Tx) prepareMissed() {
	qs := tx.missed
	tx.missed = nil
	for _, q := range qs {
		tx.db.stmt(context.Background(), q)
	}
}

// InTx runs f in a transaction, committing when f returns nil. On
// SQLite the transaction may be shared with other callers' (group commit,
// batch.go): f's writes are kept when f returns nil and the shared
// transaction commits, and InTx returns only then.
func (db *DB) InTx(ctx context.Context, f func(tx *Tx) error) error {
	if db.batch != nil {
		return db.batch.do(ctx, f)
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// IsUniqueViolation reports whether err is a unique or primary-key conflict
// on either engine.
func IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "UNIQUE constraint failed") || // SQLite
		strings.Contains(s, "SQLSTATE 23505") || strings.Contains(s, "duplicate key value") // PostgreSQL
}

// NewForDialect returns a DB with no connection, for code (and tests) that
// only needs Rebind.
func NewForDialect(driver string) *DB { return &DB{driver: driver} }
