package oath

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/egate-bank/egate/devices/otp"
)

const tokenCols = `id, serial, key_id, manufacturer, kind, hash, digits, period_s, t0, suite, wrap_label, wrapped, counter, drift, COALESCE(passport_id, ''), status, failures, locked_until_ms, not_after_ms, not_before_ms, pin_mode, pin_min, pin_max, pin_mac`

type scanner interface{ Scan(dest ...any) error }

func scanToken(r scanner) (*Token, error) {
	var (
		t                   Token
		kind, hash, suite   string
		digits, period      int
		t0, counter, notAft int64
		notBef              int64
	)
	err := r.Scan(&t.ID, &t.Serial, &t.KeyID, &t.Manufacturer, &kind, &hash, &digits, &period, &t0, &suite, &t.wrapLabel, &t.wrapped, &counter, &t.Drift, &t.PassportID, &t.Status, &t.Failures, &t.LockedUntil, &notAft,
		&notBef, &t.PINMode, &t.PINMin, &t.PINMax, &t.pinMAC)
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
	if notBef > 0 {
		t.NotBefore = time.UnixMilli(notBef)
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
	keep := func(t *Token) bool { return len(kinds) == 0 || slices.Contains(kinds, t.Params.Kind) }
	return s.oneOf(ctx, "finding the customer's token", keep,
		`SELECT `+tokenCols+` FROM otp_tokens WHERE passport_id = ? AND status = 'active' ORDER BY assigned_ms DESC`, passportID)
}

func (s *Service) one(ctx context.Context, q string, args ...any) (*Token, error) {
	return s.oneOf(ctx, "finding token", nil, q, args...)
}

// oneOf is the one token of q's rows that keep accepts (all when keep is
// nil): ErrUnknownToken for none, ErrAmbiguous for more than one.
func (s *Service) oneOf(ctx context.Context, what string, keep func(*Token) bool, q string, args ...any) (*Token, error) {
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var found []*Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		if keep == nil || keep(t) {
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

// AssignedError refuses to assign a token that another customer holds; it
// names that customer (operators may see it) and wraps ErrAssigned.
type AssignedError struct {
	Serial     string
	PassportID string
}

func (e *AssignedError) Error() string {
	return fmt.Sprintf("token %s is already assigned to customer %s", e.Serial, e.PassportID)
}
func (e *AssignedError) Unwrap() error { return ErrAssigned }

// ErrNotLocked: an unlock of a token that has no failures and no lockout
// (nothing to do, nothing changed).
var ErrNotLocked = errors.New("the token is not locked and has no failed attempts")

// Assign binds an unassigned, active token to a customer (enrollment).
// Assigning it to the customer who holds it changes nothing and succeeds;
// a token another customer holds is refused with an *AssignedError, a
// revoked one with ErrRevoked.
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
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	// Not assigned: read the token again to say why.
	if t, err = s.TokenBySerial(ctx, serial, keyID); err != nil {
		return err
	}
	switch {
	case t.PassportID == passportID:
		return nil
	case t.PassportID != "":
		return &AssignedError{Serial: t.Serial, PassportID: t.PassportID}
	case t.Status != "active":
		return fmt.Errorf("token %s is %s: %w", t.Serial, t.Status, ErrRevoked)
	}
	return fmt.Errorf("token %s: %w", serial, ErrAssigned)
}

// Unassign releases a token from its customer (returned to the bank) and
// returns that customer's passport id. Its failures and lockout are
// cleared, so the next customer does not inherit them; its counter, the
// replay ledger, is kept, so no code it ever produced is accepted again.
// A token that nobody holds is refused with ErrNotAssigned.
func (s *Service) Unassign(ctx context.Context, serial, keyID string) (string, error) {
	t, err := s.TokenBySerial(ctx, serial, keyID)
	if err != nil {
		return "", err
	}
	if t.PassportID == "" {
		return "", fmt.Errorf("token %s: %w", t.Serial, ErrNotAssigned)
	}
	// Only from the holder just read: a concurrent unassign and assign
	// cannot take the token away from someone else.
	res, err := s.db.Exec(ctx, `UPDATE otp_tokens SET passport_id = NULL, assigned_ms = 0, failures = 0, locked_until_ms = 0 WHERE id = ? AND passport_id = ?`,
		t.ID, t.PassportID)
	if err != nil {
		return "", fmt.Errorf("unassigning token %s: %w", serial, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return "", fmt.Errorf("token %s changed hands meanwhile; look at it again (egate admin token show): %w", t.Serial, ErrNotAssigned)
	}
	return t.PassportID, nil
}

// Revoke marks a token revoked (lost or broken): it is refused from then on.
func (s *Service) Revoke(ctx context.Context, serial, keyID string) error {
	t, err := s.TokenBySerial(ctx, serial, keyID)
	if err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, `UPDATE otp_tokens SET status = 'revoked' WHERE id = ?`, t.ID)
	return err
}

// Unlock clears a token's failures and lockout (operator action). A token
// with neither is refused with ErrNotLocked and nothing changes.
func (s *Service) Unlock(ctx context.Context, serial, keyID string) error {
	t, err := s.TokenBySerial(ctx, serial, keyID)
	if err != nil {
		return err
	}
	res, err := s.db.Exec(ctx, `UPDATE otp_tokens SET failures = 0, locked_until_ms = 0 WHERE id = ? AND (failures > 0 OR locked_until_ms <> 0)`, t.ID)
	if err != nil {
		return fmt.Errorf("unlocking token %s: %w", serial, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("token %s: %w", t.Serial, ErrNotLocked)
	}
	return nil
}

// TokensOf lists every token assigned to the customer, active or not,
// oldest assignment first.
func (s *Service) TokensOf(ctx context.Context, passportID string) ([]*Token, error) {
	rows, err := s.db.Query(ctx, `SELECT `+tokenCols+` FROM otp_tokens WHERE passport_id = ? ORDER BY assigned_ms, serial, key_id`, passportID)
	if err != nil {
		return nil, fmt.Errorf("listing the customer's tokens: %w", err)
	}
	defer rows.Close()
	var out []*Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// TokenLock is a token's lockout as an operator sees it.
type TokenLock struct {
	Locked bool
	// Until is when the lockout ends by itself; zero when only an
	// operator's unlock ends it.
	Until time.Time
}

// LockOf tells whether t (as read) is locked now: a lockout that has run
// out is not (the next attempt clears it), and a token at the failure
// limit is, even before its lockout time is written.
func (s *Service) LockOf(t *Token) TokenLock {
	now := s.now()
	switch {
	case t.LockedUntil < 0:
		return TokenLock{Locked: true}
	case t.LockedUntil > 0 && now.UnixMilli() < t.LockedUntil:
		return TokenLock{Locked: true, Until: time.UnixMilli(t.LockedUntil)}
	case t.LockedUntil == 0 && t.Failures >= s.cfg.MaxFailures:
		l := TokenLock{Locked: true}
		if s.cfg.LockFor > 0 {
			l.Until = now.Add(s.cfg.LockFor)
		}
		return l
	}
	return TokenLock{}
}

// MaxFailures is the number of failed attempts that locks a token.
func (s *Service) MaxFailures() int { return s.cfg.MaxFailures }

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var errNoRows = sql.ErrNoRows

func isNoRows(err error) bool { return errors.Is(err, errNoRows) }
