package messenger

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"time"
)

// ReceiveCode is a payee's receive QR.
type ReceiveCode struct {
	Token   string // only when just made: the secret in the QR
	Payee   string
	Name    string
	Amount  int64 // 0: the payer says how much
	Memo    string
	Expires time.Time
}

func tokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// NewReceiveCode makes a receive code for payee, valid for ttl.
func (s *Store) NewReceiveCode(ctx context.Context, payee string, amount int64, memo string, ttl time.Duration) (ReceiveCode, error) {
	if amount < 0 {
		return ReceiveCode{}, ErrBadAmount
	}
	var b [16]byte
	rand.Read(b[:])
	now := s.now()
	c := ReceiveCode{Token: base64.RawURLEncoding.EncodeToString(b[:]), Payee: payee, Amount: amount, Memo: strings.TrimSpace(memo),
		Expires: now.Add(ttl).Truncate(time.Millisecond)}
	_, err := s.DB.Exec(ctx, `INSERT INTO msg_receive_codes (token_hash, payee, amount, memo, created_ms, expires_ms) VALUES (?, ?, ?, ?, ?, ?)`,
		tokenHash(c.Token), payee, amount, c.Memo, now.UnixMilli(), c.Expires.UnixMilli())
	c.Name = s.Name(ctx, payee)
	return c, err
}

// ReceiveCode returns the code of token: ErrQRUnknown, or ErrQRExpired
// once past its time.
func (s *Store) ReceiveCode(ctx context.Context, token string) (ReceiveCode, error) {
	c := ReceiveCode{}
	var exp int64
	if len(token) > 64 {
		return c, ErrQRUnknown
	}
	err := s.DB.QueryRow(ctx, `SELECT payee, amount, memo, expires_ms FROM msg_receive_codes WHERE token_hash = ?`, tokenHash(token)).
		Scan(&c.Payee, &c.Amount, &c.Memo, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return c, ErrQRUnknown
	}
	if err != nil {
		return c, err
	}
	c.Token, c.Expires, c.Name = token, time.UnixMilli(exp), s.Name(ctx, c.Payee)
	if !s.now().Before(c.Expires) {
		return c, ErrQRExpired
	}
	return c, nil
}
