package otp

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/egate-bank/egate/devices/otp"
)

const tokenCols = `id, serial, key_id, manufacturer, kind, hash, digits, period_s, t0, suite, wrap_label, wrapped, counter, drift, COALESCE(passport_id, ''), status, failures, locked_until_ms, not_after_ms`

type scanner interface{ Scan(dest ...any) error }

func scanToken(r scanner) (*Token, error) {
	var (
		t                   Token
		kind, hash, suite   string
		digits, period      int
		t0, counter, notAft int64
	)
	err := r.Scan(&t.ID, &t.Serial, &t.KeyID, &t.Manufacturer, &kind, &hash, &digits, &period, &t0, &suite, &t.wrapLabel, &t.wrapped, &counter, &t.Drift, &t.PassportID, &t.Status, &t.Failures, &t.LockedUntil, &notAft)
	if err != nil {
		return nil, err
	}
	h, err := otp.ParseHash(hash)
	if err != nil {
		return nil, fmt.Errorf("token %s: %w", t.Serial, err)
	}
	t.Params = otp.Params{Kind: otp.Kind(kind), Hash: h, Digits: digits, Period: time.Duration(period) * time.Second, T0: t0, Suite: suite}
	t.Counter = uint64(counter)
	if notAft > 0 {
		t.NotAfter = time.UnixMilli(notAft)
	}
	return &t, nil
}

// TokenBySerial finds a token by its serial (and key id when the device
// holds several keys; "" when it holds one).
func (s *Service) TokenBySerial(ctx context.Context, serial, keyID string) (*Token, error) {
	q := `SELECT ` + tokenCols + ` FROM otp_tokens WHERE serial = ?`
	args := []any{serial}
	if keyID != "" {
		q += ` AND key_id = ?`
		args = append(args, keyID)
	}
	return s.one(ctx, q+` LIMIT 2`, args...)
}

// TokenOf finds the customer's one active token (of the kinds given, all
// when none).
func (s *Service) TokenOf(ctx context.Context, passportID string, kinds ...otp.Kind) (*Token, error) {
	rows, err := s.db.Query(ctx, `SELECT `+tokenCols+` FROM otp_tokens WHERE passport_id = ? AND status = 'active' ORDER BY assigned_ms DESC`, passportID)
	if err != nil {
		return nil, fmt.Errorf("finding the customer's token: %w", err)
	}
	defer rows.Close()
	var found []*Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		if len(kinds) == 0 || containsKind(kinds, t.Params.Kind) {
			found = append(found, t)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	switch len(found) {
	case 0:
		return nil, ErrUnknownToken
	case 1:
		return found[0], nil
	}
	return nil, ErrAmbiguous
}

func containsKind(ks []otp.Kind, k otp.Kind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

func (s *Service) one(ctx context.Context, q string, args ...any) (*Token, error) {
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("finding token: %w", err)
	}
	defer rows.Close()
	var found []*Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		found = append(found, t)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	switch len(found) {
	case 0:
		return nil, ErrUnknownToken
	case 1:
		return found[0], nil
	}
	return nil, ErrAmbiguous
}

// Assign binds an unassigned token to a customer (enrollment).
func (s *Service) Assign(ctx context.Context, serial, keyID, passportID string) error {
	if passportID == "" {
		return fmt.Errorf("%w: empty passport id", ErrMalformed)
	}
	t, err := s.TokenBySerial(ctx, serial, keyID)
	if err != nil {
		return err
	}
	res, err := s.db.Exec(ctx, `UPDATE otp_tokens SET passport_id = ?, assigned_ms = ? WHERE id = ? AND passport_id IS NULL AND status = 'active'`,
		passportID, s.now().UnixMilli(), t.ID)
	if err != nil {
		return fmt.Errorf("assigning token %s: %w", serial, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		if t.PassportID == passportID {
			return nil
		}
		return fmt.Errorf("token %s: %w", serial, ErrAssigned)
	}
	return nil
}

// Unassign releases a token (returned or lost) and revokes it when lost.
func (s *Service) Revoke(ctx context.Context, serial, keyID string) error {
	t, err := s.TokenBySerial(ctx, serial, keyID)
	if err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, `UPDATE otp_tokens SET status = 'revoked' WHERE id = ?`, t.ID)
	return err
}

// Unlock clears a token's failures and lockout (operator action).
func (s *Service) Unlock(ctx context.Context, serial, keyID string) error {
	t, err := s.TokenBySerial(ctx, serial, keyID)
	if err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, `UPDATE otp_tokens SET failures = 0, locked_until_ms = 0 WHERE id = ?`, t.ID)
	return err
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var errNoRows = sql.ErrNoRows

func isNoRows(err error) bool { return errors.Is(err, errNoRows) }
