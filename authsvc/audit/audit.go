// Package audit is egate's append-only, hash-chained log of security
// decisions. Each record's hash is SHA-256(previous hash || canonical
// record), starting from 32 zero bytes, so changing, dropping or reordering
// any record breaks every hash after it; Verify walks the chain and names the
// first broken position. (Signed checkpoints of the head come later.)
//
// Replicas append concurrently: each takes the head's position and inserts
// the next one; the primary key on the position makes a racing replica
// fail, re-read the head and retry.
package audit

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
}

// New returns the log.
func New(db *store.DB, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{db: db, now: now}
}

// Append adds a record and returns its position.
func (l *Log) Append(ctx context.Context, kind string, fields map[string]string) (int64, error) {
	if fields == nil {
		fields = map[string]string{}
	}
	at := l.now().UnixMilli()
	for attempt := 0; attempt < 100; attempt++ {
		var seq int64
		prev := Genesis
		err := l.db.QueryRow(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&seq, &prev)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("reading audit head: %w", err)
		}
		r := Record{Seq: seq + 1, AtMS: at, Kind: kind, Fields: fields}
		canon := r.Canonical()
		h, err := ChainHash(prev, canon)
		if err != nil {
			return 0, err
		}
		_, err = l.db.Exec(ctx, `INSERT INTO audit_log (seq, at_ms, kind, record, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)`,
			r.Seq, at, kind, string(canon), prev, h)
		if store.IsUniqueViolation(err) {
			continue // another replica took this position
		}
		if err != nil {
			return 0, fmt.Errorf("appending audit record: %w", err)
		}
		return r.Seq, nil
	}
	return 0, errors.New("appending audit record: too much contention")
}

// Verify walks the whole chain and returns the number of records, or a
// *BrokenError for the first that does not verify.
func (l *Log) Verify(ctx context.Context) (int64, error) {
	rows, err := l.db.Query(ctx, `SELECT seq, at_ms, kind, record, prev_hash, hash FROM audit_log ORDER BY seq`)
	if err != nil {
		return 0, fmt.Errorf("reading audit log: %w", err)
	}
	defer rows.Close()
	prev, want := Genesis, int64(1)
	for rows.Next() {
		var (
			seq, at                   int64
			kind, rec, prevHash, hash string
		)
		if err := rows.Scan(&seq, &at, &kind, &rec, &prevHash, &hash); err != nil {
			return 0, fmt.Errorf("reading audit log: %w", err)
		}
		if seq != want {
			return 0, &BrokenError{Seq: want, Reason: "record missing"}
		}
		if prevHash != prev {
			return 0, &BrokenError{Seq: seq, Reason: "previous hash does not match"}
		}
		var r Record
		if err := json.Unmarshal([]byte(rec), &r); err != nil || r.Seq != seq || r.AtMS != at || r.Kind != kind {
			return 0, &BrokenError{Seq: seq, Reason: "record does not match its columns"}
		}
		if string(r.Canonical()) != rec {
			return 0, &BrokenError{Seq: seq, Reason: "record is not canonical"}
		}
		h, err := ChainHash(prev, []byte(rec))
		if err != nil || h != hash {
			return 0, &BrokenError{Seq: seq, Reason: "hash does not match"}
		}
		prev, want = hash, want+1
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("reading audit log: %w", err)
	}
	return want - 1, nil
}
