package captcha

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"time"

	"github.com/egate-bank/egate/internal/store"
)

// Errors of Verify.
var (
	ErrWrong = errors.New("the characters in the picture were not entered correctly")
	ErrGone  = errors.New("the picture has expired or was already used; use the new one")
)

// Store issues and checks captchas.
type Store struct {
	db      *store.DB
	now     func() time.Time
	ttl     time.Duration
	digits  int
	onIssue func(id, answer string)
}

// WithIssueHook returns s reporting every issued answer to f. Tests only:
// it lets a test play the human who reads the picture.
func (s *Store) WithIssueHook(f func(id, answer string)) *Store {
	c := *s
	c.onIssue = f
	return &c
}

// New returns a Store; ttl and digits default to 5 minutes and 5.
func New(db *store.DB, now func() time.Time, ttl time.Duration, digits int) *Store {
	if now == nil {
		now = time.Now
	}
	if ttl == 0 {
		ttl = 5 * time.Minute
	}
	if digits == 0 {
		digits = 5
	}
	return &Store{db: db, now: now, ttl: ttl, digits: digits}
}

func answerHash(id, answer string) string {
	h := sha256.Sum256([]byte(id + "\x00" + answer))
	return hex.EncodeToString(h[:])
}

// Challenge is a stored captcha.
type Challenge struct {
	ID  string
	PNG []byte
}

// Issue makes a new captcha and stores the hash of its answer.
func (s *Store) Issue(ctx context.Context) (Challenge, error) {
	var seed [32]byte
	rand.Read(seed[:])
	rng := mrand.New(mrand.NewChaCha8(seed))
	var b strings.Builder
	for range s.digits {
		b.WriteByte(byte('0' + rng.IntN(10)))
	}
	var idb [16]byte
	rand.Read(idb[:])
	id := base64.RawURLEncoding.EncodeToString(idb[:])
	if _, err := s.db.Exec(ctx, `INSERT INTO captchas (id, answer_hash, expires_ms) VALUES (?, ?, ?)`,
		id, answerHash(id, b.String()), s.now().Add(s.ttl).UnixMilli()); err != nil {
		return Challenge{}, fmt.Errorf("storing captcha: %w", err)
	}
	if s.onIssue != nil {
		s.onIssue(id, b.String())
	}
	return Challenge{ID: id, PNG: Render(b.String(), rng)}, nil
}

// Image re-renders nothing: a captcha's picture is only available from
// Issue. Pages embed it as a data: URL.

// Verify spends the captcha id and checks answer (spaces ignored).
func (s *Store) Verify(ctx context.Context, id, answer string) error {
	if id == "" || len(id) > 64 {
		return ErrGone
	}
	var h string
	err := s.db.QueryRow(ctx, `UPDATE captchas SET used = 1 WHERE id = ? AND used = 0 AND expires_ms > ? RETURNING answer_hash`,
		id, s.now().UnixMilli()).Scan(&h)
	if err != nil {
		return ErrGone
	}
	answer = strings.Join(strings.Fields(answer), "")
	if subtle.ConstantTimeCompare([]byte(h), []byte(answerHash(id, answer))) != 1 {
		return ErrWrong
	}
	return nil
}

// Discard spends a captcha without an answer (the customer asked for a new
// picture): it can no longer be answered. An unknown, used or empty id is
// no error.
func (s *Store) Discard(ctx context.Context, id string) error {
	if id == "" || len(id) > 64 {
		return nil
	}
	if _, err := s.db.Exec(ctx, `UPDATE captchas SET used = 1 WHERE id = ?`, id); err != nil {
		return fmt.Errorf("spending captcha: %w", err)
	}
	return nil
}

// Purge deletes expired captchas.
func (s *Store) Purge(ctx context.Context) error {
	_, err := s.db.Exec(ctx, `DELETE FROM captchas WHERE expires_ms <= ?`, s.now().UnixMilli())
	return err
}
