// Package audit is egate's append-only, hash-chained log of security
// decisions. Each record's hash is SHA-256(previous hash || canonical
// record), starting from 32 zero bytes, so changing, dropping or reordering
// any record breaks every hash after it; Verify walks the chain and names the
// first broken position. Signed checkpoints of the head (checkpoint.go) let
// an auditor with the audit key's public key tell that nobody rewrote the chain.
//
// Concurrency: appends are serialised, not raced. Every Append runs in one
// transaction that first takes a lock every appender takes, then reads the
// head and inserts the next position, then commits, which releases the lock.
// On PostgreSQL the lock is a transaction-scoped advisory lock
// (pg_advisory_xact_lock on LockKey), so replicas on one database queue for
// it; on SQLite it is the database's write lock, taken when the
// transaction begins (internal/store opens SQLite with _txlock=immediate: a
// deferred transaction that reads first could not upgrade to writing while
// another connection writes), and a second process waits for it within the
// store's busy timeout. The primary key on the position stays
// as a safety net: an appender that does not take the lock (an older
// replica during a rolling upgrade) makes the insert conflict, and Append
// re-reads the head and tries again; with the lock that never happens.
//
// A Log remembers the head it appended last and tries it first: the
// insert names that record's position and hash and inserts only while it
// is still the last record with that hash, so a head that moved (another
// replica's append, a rolled-back transaction, a changed record) costs a
// statement that inserts nothing and the head is read as before; an
// append after one of this Log's own is one statement instead of two.
package audit

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/egate-bank/egate/internal/store"
)

// Genesis is the previous hash of the first record.
var Genesis = hex.EncodeToString(make([]byte, sha256.Size))

// Record is one audited decision.
type Record struct {
	Seq    int64             `json:"seq"`
	AtMS   int64             `json:"at_ms"`
	Kind   string            `json:"kind"`   // "login.password", "login.factor", "login.sso", …
	Fields map[string]string `json:"fields"` // never secrets
}

// Canonical is the byte string a record's hash covers: JSON with the
// fields in a fixed order and map keys sorted (encoding/json sorts them).
func (r Record) Canonical() []byte {
	b, _ := json.Marshal(r) // a struct of ints and strings always marshals
	return b
}

// ChainHash returns hex(SHA-256(prev || canonical)).
func ChainHash(prevHex string, canonical []byte) (string, error) {
	prev, err := hex.DecodeString(prevHex)
	if err != nil || len(prev) != sha256.Size {
		return "", fmt.Errorf("%w: previous hash is not 32 hex bytes", ErrBroken)
	}
	h := sha256.New()
	h.Write(prev)
	h.Write(canonical)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ErrBroken says the chain does not verify.
var ErrBroken = errors.New("audit chain broken")

// BrokenError names the first record that does not verify.
type BrokenError struct {
	Seq    int64
	Reason string
}

func (e *BrokenError) Error() string {
	return fmt.Sprintf("audit chain broken at record %d: %s", e.Seq, e.Reason)
}
func (e *BrokenError) Unwrap() error { return ErrBroken }

// Log appends to and verifies the audit log in one database.
type Log struct {
	db  *store.DB
	now func() time.Time
	// conflicts counts position conflicts Append retried; with every
	// appender taking the lock it stays zero (the tests check).
	conflicts atomic.Int64
	// last is the head this Log appended last (nil: none yet), tried
	// before reading the head (insertNext).
	last atomic.Pointer[head]
}

// New returns the log.
func New(db *store.DB, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{db: db, now: now}
}

// DB is the database the log is in (AppendTx takes transactions of it).
func (l *Log) DB() *store.DB { return l.db }

// LockKey is the PostgreSQL advisory lock (pg_advisory_xact_lock) that
// serialises appends: "egateAud" in ASCII, distinct from the migrations'.
const LockKey int64 = 0x6567617465417564

// maxAttempts bounds the retries on a position conflict, which only an
// appender that skips the lock can cause.
const maxAttempts = 100

// ErrContention says Append gave up after maxAttempts position conflicts.
var ErrContention = errors.New("appending audit record: too much contention")

// Append adds a record and returns its position. Concurrent appends, in
// this process or in other replicas on the same database, wait for each
// other (see the package doc) and all succeed.
func (l *Log) Append(ctx context.Context, kind string, fields map[string]string) (int64, error) {
	if fields == nil {
		fields = map[string]string{}
	}
	at := l.now().UnixMilli()
	for range maxAttempts {
		var (
			seq int64
			err error
		)
		seq, err = l.appendLocked(ctx, at, kind, fields)
		if store.IsUniqueViolation(err) {
			l.conflicts.Add(1)
			continue // an appender without the lock took this position
		}
		if err != nil {
			return 0, err
		}
		return seq, nil
	}
	return 0, ErrContention
}

// appendLocked appends in one transaction that holds the append lock:
// on PostgreSQL the advisory lock, which the transaction's end releases;
// on SQLite the write lock, which its transactions take when they begin
// (internal/store opens SQLite with _txlock=immediate).
func (l *Log) appendLocked(ctx context.Context, at int64, kind string, fields map[string]string) (int64, error) {
	var (
		seq   int64
		inner error // f's own error, already saying what failed
	)
	err := l.db.InTx(ctx, func(tx *store.Tx) error {
		if l.db.Driver() == store.Postgres {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(?)`, LockKey); err != nil {
				inner = fmt.Errorf("locking the audit log: %w", err)
				return inner
			}
		}
		seq, inner = l.insertNext(ctx, tx, at, kind, fields)
		return inner
	})
	switch {
	case inner != nil:
		return 0, inner
	case err != nil:
		return 0, fmt.Errorf("appending audit record: %w", err)
	}
	return seq, nil
}

// AppendTx appends a record inside the caller's transaction tx (of the
// Log's database), so that the record and the state change it records
// commit or roll back together, and a round trip pays one transaction, not
// two. It takes the append lock as Append does (on PostgreSQL the advisory
// lock, held until tx ends: call AppendTx as the transaction's last
// statement, after its row locks, so the lock is held briefly and always
// taken last; on SQLite tx already holds the write lock). A position
// conflict (an appender without the lock) is returned, not retried: the
// caller's transaction is then rolled back.
func (l *Log) AppendTx(ctx context.Context, tx *store.Tx, kind string, fields map[string]string) (int64, error) {
	if tx.DB() != l.db {
		return 0, errors.New("appending audit record: the transaction is not on the audit log's database")
	}
	if fields == nil {
		fields = map[string]string{}
	}
	if tx.DB().Driver() == store.Postgres {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(?)`, LockKey); err != nil {
			return 0, fmt.Errorf("locking the audit log: %w", err)
		}
	}
	return l.insertNext(ctx, tx, l.now().UnixMilli(), kind, fields)
}

// head is a position of the chain and the hash of its record.
type head struct {
	seq  int64
	hash string
}

// insertNext inserts the next record after the head; the caller holds the
// append lock. The head this Log appended last is tried first, by one
// statement that inserts only while that record is still the last one
// with that hash (so a record another appender or replica added since, a
// transaction rolled back after its append, or a changed record is never
// chained to); otherwise the head is read, as it always was.
func (l *Log) insertNext(ctx context.Context, tx *store.Tx, at int64, kind string, fields map[string]string) (int64, error) {
	if last := l.last.Load(); last != nil {
		r := Record{Seq: last.seq + 1, AtMS: at, Kind: kind, Fields: fields}
		canon := r.Canonical()
		h, err := ChainHash(last.hash, canon)
		if err != nil {
			return 0, err
		}
		res, err := tx.Exec(ctx, qInsertAfter, r.Seq, at, kind, string(canon), last.hash, h, last.seq, last.hash)
		if err != nil {
			return 0, fmt.Errorf("appending audit record: %w", err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 1 {
			l.last.Store(&head{r.Seq, h})
			return r.Seq, nil
		}
	}
	var seq int64
	prev := Genesis
	err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&seq, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("reading audit head: %w", err)
	}
	r := Record{Seq: seq + 1, AtMS: at, Kind: kind, Fields: fields}
	canon := r.Canonical()
	h, err := ChainHash(prev, canon)
	if err != nil {
		return 0, err
	}
	_, err = tx.Exec(ctx, `INSERT INTO audit_log (seq, at_ms, kind, record, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)`,
		r.Seq, at, kind, string(canon), prev, h)
	if err != nil {
		return 0, fmt.Errorf("appending audit record: %w", err)
	}
	l.last.Store(&head{r.Seq, h})
	return r.Seq, nil
}

// qInsertAfter inserts a record after the head (seq, hash) only while that
// record is in the log with that hash and is the last one. Both lookups
// go by the primary key whatever the plan (MAX reads the index's end; a
// "nothing after it" range test is a whole scan in PostgreSQL's generic
// plan of a prepared statement).
const qInsertAfter = `INSERT INTO audit_log (seq, at_ms, kind, record, prev_hash, hash)
	SELECT CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT)
	WHERE EXISTS (SELECT 1 FROM audit_log WHERE seq = ? AND hash = ? AND seq = (SELECT MAX(seq) FROM audit_log))`

// FieldOperator is the field that names the operator (a person, from
// egate admin --operator or the OS user) in the record of an operator's
// action.
const FieldOperator = "operator"

// ErrNoOperator refuses an operator's action recorded without a name.
var ErrNoOperator = errors.New("audit: an operator action needs the operator's name")

// AppendOperator appends the record of an operator's action (kinds
// "admin.…"): the fields with operator in FieldOperator, which a field of
// the same name cannot replace. An empty or blank operator appends nothing.
func (l *Log) AppendOperator(ctx context.Context, kind, operator string, fields map[string]string) (int64, error) {
	if strings.TrimSpace(operator) == "" {
		return 0, ErrNoOperator
	}
	f := make(map[string]string, len(fields)+1)
	for k, v := range fields {
		f[k] = v
	}
	f[FieldOperator] = operator
	return l.Append(ctx, kind, f)
}

// Verify walks the whole chain and returns the number of records, or a
// *BrokenError for the first that does not verify.
func (l *Log) Verify(ctx context.Context) (int64, error) {
	n, _, err := l.VerifyHead(ctx)
	return n, err
}

// VerifyHead is Verify that also returns the head: the last record's hash
// (Genesis for an empty log). An operator who writes the head down outside
// the database can later tell that no record up to it was changed, dropped
// or cut off; signed checkpoints (VerifySigned) do that for them.
func (l *Log) VerifyHead(ctx context.Context) (int64, string, error) {
	return l.verifyFrom(ctx, 0, Genesis)
}

// checkRecord checks one stored record: it is at position want, chained to
// prev, its columns match its canonical JSON and its hash is right.
func checkRecord(want int64, prev string, seq, at int64, kind, rec, prevHash, hash string) error {
	if seq != want {
		return &BrokenError{Seq: want, Reason: "record missing"}
	}
	if prevHash != prev {
		return &BrokenError{Seq: seq, Reason: "previous hash does not match"}
	}
	var r Record
	if err := json.Unmarshal([]byte(rec), &r); err != nil || r.Seq != seq || r.AtMS != at || r.Kind != kind {
		return &BrokenError{Seq: seq, Reason: "record does not match its columns"}
	}
	if string(r.Canonical()) != rec {
		return &BrokenError{Seq: seq, Reason: "record is not canonical"}
	}
	h, err := ChainHash(prev, []byte(rec))
	if err != nil || h != hash {
		return &BrokenError{Seq: seq, Reason: "hash does not match"}
	}
	return nil
}

// Entry is a stored record with the chain hashes stored beside it.
type Entry struct {
	Record
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

// Tail returns the last n entries, oldest first, as stored (it does not
// verify them; Verify does).
func (l *Log) Tail(ctx context.Context, n int) ([]Entry, error) {
	if n <= 0 {
		return nil, nil
	}
	out, err := l.entries(ctx, `SELECT record, prev_hash, hash FROM audit_log ORDER BY seq DESC LIMIT ?`, n)
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}

// Range returns up to n entries from position from on, oldest first, as
// stored: an operator who wrote down the head at position k reads entry k
// here and compares its hash.
func (l *Log) Range(ctx context.Context, from int64, n int) ([]Entry, error) {
	if n <= 0 {
		return nil, nil
	}
	return l.entries(ctx, `SELECT record, prev_hash, hash FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?`, from, n)
}

func (l *Log) entries(ctx context.Context, q string, args ...any) ([]Entry, error) {
	rows, err := l.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading audit log: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var rec string
		var e Entry
		if err := rows.Scan(&rec, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("reading audit log: %w", err)
		}
		if err := json.Unmarshal([]byte(rec), &e.Record); err != nil {
			return nil, fmt.Errorf("reading audit log: a stored record is not JSON: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading audit log: %w", err)
	}
	return out, nil
}
