// Package challenge is the one single-use challenge store of every
// authenticator (SMS, grid card, dynamic-password token, U-shield, PIV):
// the table auth_challenges. A challenge is created by a
// factor's Begin and consumed by its Verify; consumption is one atomic UPDATE
// (… WHERE used_ms IS NULL AND expires_ms > now), so across goroutines and
// replicas exactly one Verify wins, whatever the database engine.
//
// Verify first Opens the challenge (to check it belongs to the customer and
// factor and was begun for the purpose and transaction the answer is given
// for, and to read what it asked), checks the answer, and only then
// Consumes it, so bad input leaves the challenge untouched. A factor that
// uses the challenge up before it compares the answer (the
// dynamic-password token) calls OpenConsume: both in one statement when
// the challenge is usable and binds, otherwise nothing changes and the
// refusal is Open's or Consume's.
package challenge

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/internal/store"
)

// Record is one challenge as stored.
type Record struct {
	ID         string
	Factor     string
	PassportID string
	Purpose    authn.Purpose
	TxHash     []byte
	Data       []byte // what a device signs
	Secret     []byte // factor-private (grid cells, SMS code HMAC); never shown
	Ref        string // factor-private reference (card serial, phone number)
	CreatedAt  time.Time
	ExpiresAt  time.Time
	Used       bool
}

// Store keeps challenges in the database.
type Store struct {
	db  *store.DB
	now func() time.Time
}

// New returns a store; now is the clock (time.Now when nil).
func New(db *store.DB, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, now: now}
}

// NewID returns a fresh opaque challenge id (128 random bits).
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Create stores r; ID and CreatedAt are filled in when empty. With a
// context from WithCompanion, r and what the companion stores commit in
// one transaction.
func (s *Store) Create(ctx context.Context, r *Record) error {
	if r.ID == "" {
		r.ID = NewID()
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = s.now()
	}
	if r.ExpiresAt.IsZero() || !r.ExpiresAt.After(r.CreatedAt) {
		return fmt.Errorf("challenge for %s: expiry must be after creation", r.Factor)
	}
	args := []any{r.ID, r.Factor, r.PassportID, string(r.Purpose), r.TxHash, r.Data, r.Secret, r.Ref,
		r.CreatedAt.UnixMilli(), r.ExpiresAt.UnixMilli()}
	var err error
	if also, ok := ctx.Value(companionKey{}).(Companion); ok && also != nil {
		err = s.db.InTx(ctx, func(tx *store.Tx) error {
			if _, err := tx.Exec(ctx, qCreate, args...); err != nil {
				return err
			}
			return also(ctx, tx, r)
		})
	} else {
		_, err = s.db.Exec(ctx, qCreate, args...)
	}
	if err != nil {
		return fmt.Errorf("storing %s challenge: %w", r.Factor, err)
	}
	return nil
}

// Settle is what a caller commits with a tool's acceptance of a right
// answer, in the tool's own transaction (txauth: the limit count, the
// grant and its audit record, in the transaction that moves an OTP
// token's replay ledger): res is what the tool proves.
type Settle func(ctx context.Context, tx *store.Tx, res authn.Result) error

type settleKey struct{}

// WithSettle returns ctx carrying settle for the tool a Verify is given
// ctx to. A tool that can (the OTP token's HOTP/TOTP codes) runs it in
// the transaction that records the accepted answer, so both commit once;
// when settle fails, the tool rolls back, records the acceptance alone
// (a right answer stays used up) and returns a *SettleError. Any other
// tool ignores it: the caller sees that settle did not run and commits
// its work itself.
func WithSettle(ctx context.Context, settle Settle) context.Context {
	return context.WithValue(ctx, settleKey{}, settle)
}

// SettleFrom is the Settle of ctx (nil: none).
func SettleFrom(ctx context.Context) Settle {
	s, _ := ctx.Value(settleKey{}).(Settle)
	return s
}

// SettleError is a Settle's error: the tool accepted the answer and
// recorded it; what the caller would have committed with it was not.
type SettleError struct{ Err error }

func (e *SettleError) Error() string { return e.Err.Error() }
func (e *SettleError) Unwrap() error { return e.Err }

const qCreate = `INSERT INTO auth_challenges (id, factor, passport_id, purpose, tx_hash, data, secret, ref, created_ms, expires_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// Companion stores what a caller keeps beside a challenge (txauth: the
// intent and the tool it was begun for), in the challenge's own
// transaction: r is the challenge as inserted, its ID filled in. An error
// rolls the challenge back too.
type Companion func(ctx context.Context, tx *store.Tx, r *Record) error

type companionKey struct{}

// WithCompanion returns ctx carrying also: a challenge Created with the
// returned context (by whichever tool's Begin the caller calls) commits
// with what also stores, in one transaction, or neither does. A caller
// that keeps a row of its own about a tool's challenge uses it, so that
// no crash between two inserts leaves half a challenge and a begin pays
// one commit, without every tool having to know. A tool's Begin creates
// one challenge; the caller can check which one also saw (r.ID against
// the ID Begin returned).
func WithCompanion(ctx context.Context, also Companion) context.Context {
	return context.WithValue(ctx, companionKey{}, also)
}

// Get returns the challenge id of factor for passportID if it is still
// usable: ErrUnknown when it does not exist or belongs to another customer
// or factor (the two are not told apart), ErrUsed, ErrExpired.
func (s *Store) Get(ctx context.Context, factor, passportID, id string) (*Record, error) {
	r := &Record{ID: id}
	var purpose string
	var created, expires int64
	var used sql.NullInt64
	err := s.db.QueryRow(ctx, `SELECT factor, passport_id, purpose, tx_hash, data, secret, ref, created_ms, expires_ms, used_ms
		FROM auth_challenges WHERE id = ?`, id).
		Scan(&r.Factor, &r.PassportID, &purpose, &r.TxHash, &r.Data, &r.Secret, &r.Ref, &created, &expires, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s challenge: %w", factor, authn.ErrUnknown)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s challenge: %w", factor, err)
	}
	if r.Factor != factor || r.PassportID != passportID {
		return nil, fmt.Errorf("%s challenge: %w", factor, authn.ErrUnknown)
	}
	r.Purpose = authn.Purpose(purpose)
	r.CreatedAt = time.UnixMilli(created)
	r.ExpiresAt = time.UnixMilli(expires)
	r.Used = used.Valid
	if r.Used {
		return r, fmt.Errorf("%s challenge: %w", factor, authn.ErrUsed)
	}
	if !s.now().Before(r.ExpiresAt) {
		return r, fmt.Errorf("%s challenge: %w", factor, authn.ErrExpired)
	}
	return r, nil
}

// Open is Get for a factor's Verify: the challenge of req must also have
// been begun for req's purpose (PurposeLogin when unset) and, for a
// transaction, for exactly req.TxHash; otherwise it is
// authn.ErrOtherTransaction, whether or not the challenge is still usable,
// and nothing changes. Every tool opens its challenge this way, so an
// answer to another transaction's challenge, or a login challenge given
// for a transaction, is refused before any attempt is counted.
func (s *Store) Open(ctx context.Context, factor string, req authn.VerifyRequest) (*Record, error) {
	r, err := s.Get(ctx, factor, req.PassportID, req.ChallengeID)
	if r == nil {
		return nil, err
	}
	if !r.Binds(req.Want(), req.TxHash) {
		return nil, fmt.Errorf("%s challenge: %w", factor, authn.ErrOtherTransaction)
	}
	return r, err
}

// OpenConsume is Open followed by Consume, in one statement when the
// challenge is usable and binds req (purpose, and for a transaction its
// hash): it is then marked used and returned as Open would have returned
// it. Otherwise nothing changes, and Open and Consume themselves run to
// give the very refusal (or, after a lost race, the success) they give
// one after the other. Factors that use up the challenge before they
// compare the answer (the dynamic-password token) call it.
func (s *Store) OpenConsume(ctx context.Context, factor string, req authn.VerifyRequest) (*Record, error) {
	r, err := s.openConsume(ctx, s.db.QueryRow, factor, req)
	if r != nil || err != nil {
		return r, err
	}
	r, err = s.Open(ctx, factor, req)
	if err != nil {
		return nil, err
	}
	if err := s.Consume(ctx, factor, req.PassportID, req.ChallengeID); err != nil {
		return nil, err
	}
	return r, nil
}

// OpenConsumeTx is OpenConsume's one statement inside the caller's
// transaction tx, so that the challenge is used up in one commit with what
// the caller changes beside it (the OTP token's attempt). It returns nil
// and no error when that statement changed nothing: the challenge is not
// usable or does not bind req; the caller then rolls tx back and calls
// OpenConsume for its refusal.
func (s *Store) OpenConsumeTx(ctx context.Context, tx *store.Tx, factor string, req authn.VerifyRequest) (*Record, error) {
	return s.openConsume(ctx, tx.QueryRow, factor, req)
}

// openConsume runs the one statement of OpenConsume through queryRow (of
// the database or of a transaction): the record when it used the
// challenge up, nil and no error when it changed nothing.
func (s *Store) openConsume(ctx context.Context, queryRow func(context.Context, string, ...any) *sql.Row, factor string, req authn.VerifyRequest) (*Record, error) {
	want := req.Want()
	if want == authn.PurposeTransaction && len(req.TxHash) == 0 {
		return nil, nil
	}
	now := s.now().UnixMilli()
	q, args := qOpenConsume, []any{now, req.ChallengeID, factor, req.PassportID, string(want), now}
	if want == authn.PurposeTransaction {
		q, args = qOpenConsumeTx, append(args, req.TxHash)
	}
	r := &Record{ID: req.ChallengeID, Factor: factor, PassportID: req.PassportID, Purpose: want}
	var created, expires int64
	err := queryRow(ctx, q, args...).Scan(&r.TxHash, &r.Data, &r.Secret, &r.Ref, &created, &expires)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("consuming %s challenge: %w", factor, err)
	}
	r.CreatedAt, r.ExpiresAt = time.UnixMilli(created), time.UnixMilli(expires)
	return r, nil
}

const (
	qOpenConsume = `UPDATE auth_challenges SET used_ms = ?
		WHERE id = ? AND factor = ? AND passport_id = ? AND purpose = ? AND used_ms IS NULL AND expires_ms > ?
		RETURNING tx_hash, data, secret, ref, created_ms, expires_ms`
	qOpenConsumeTx = `UPDATE auth_challenges SET used_ms = ?
		WHERE id = ? AND factor = ? AND passport_id = ? AND purpose = ? AND used_ms IS NULL AND expires_ms > ? AND tx_hash = ?
		RETURNING tx_hash, data, secret, ref, created_ms, expires_ms`
)

// Binds reports whether r was begun for purpose and, for a transaction,
// for exactly txHash (a transaction challenge without a hash binds nothing).
func (r *Record) Binds(purpose authn.Purpose, txHash []byte) bool {
	if r.Purpose != purpose {
		return false
	}
	if purpose == authn.PurposeTransaction {
		return len(r.TxHash) > 0 && bytes.Equal(r.TxHash, txHash)
	}
	return true
}

// Consume marks the challenge used, once: of any number of concurrent
// callers exactly one gets nil; the others get ErrUsed (or ErrExpired when
// it ran out meanwhile).
func (s *Store) Consume(ctx context.Context, factor, passportID, id string) error {
	now := s.now().UnixMilli()
	res, err := s.db.Exec(ctx, `UPDATE auth_challenges SET used_ms = ?
		WHERE id = ? AND factor = ? AND passport_id = ? AND used_ms IS NULL AND expires_ms > ?`,
		now, id, factor, passportID, now)
	if err != nil {
		return fmt.Errorf("consuming %s challenge: %w", factor, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("consuming %s challenge: %w", factor, err)
	}
	if n == 1 {
		return nil
	}
	// Lost the race or ran out: say which.
	if _, err := s.Get(ctx, factor, passportID, id); err != nil {
		return err
	}
	return fmt.Errorf("%s challenge: %w", factor, authn.ErrUsed)
}

// Purge deletes challenges that expired before cutoff; it returns how many.
func (s *Store) Purge(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.db.Exec(ctx, `DELETE FROM auth_challenges WHERE expires_ms < ?`, cutoff.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("purging challenges: %w", err)
	}
	return res.RowsAffected()
}

// Release undoes a Consume whose answer turned out wrong, so the customer
// may answer the same challenge again (until it expires). Factors that check
// an answer only after claiming the challenge use Consume then Release; at
// most one answer per challenge is being checked at any time.
func (s *Store) Release(ctx context.Context, factor, passportID, id string) error {
	_, err := s.db.Exec(ctx, `UPDATE auth_challenges SET used_ms = NULL WHERE id = ? AND factor = ? AND passport_id = ?`, id, factor, passportID)
	if err != nil {
		return fmt.Errorf("releasing %s challenge: %w", factor, err)
	}
	return nil
}
