package sms

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// AttemptState is a customer's wrong SMS codes as an operator sees them.
type AttemptState struct {
	Failures int       // wrong codes counted (forgotten LockFor after the last)
	Max      int       // wrong codes that lock
	Until    time.Time // when the lockout ends; zero when not locked
}

// Attempts reads the customer's wrong-code count and lockout.
func (s *Service) Attempts(ctx context.Context, passportID string) (AttemptState, error) {
	st := AttemptState{Max: s.cfg.MaxAttempts}
	var at int64
	err := s.db.QueryRow(ctx, `SELECT n, updated_ms FROM sms_attempts WHERE passport_id = ?`, passportID).Scan(&st.Failures, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("reading SMS failures: %w", err)
	}
	until := time.UnixMilli(at).Add(s.cfg.LockFor)
	switch {
	case !s.now().Before(until):
		st.Failures = 0 // stale: the next wrong code starts again from one
	case st.Failures >= st.Max:
		st.Until = until
	}
	return st, nil
}

// Unlock clears the customer's wrong-code count and lockout (operator
// action); it reports whether there was anything to clear.
func (s *Service) Unlock(ctx context.Context, passportID string) (bool, error) {
	res, err := s.db.Exec(ctx, `UPDATE sms_attempts SET n = 0, updated_ms = ? WHERE passport_id = ? AND n > 0 AND updated_ms >= ?`,
		s.now().UnixMilli(), passportID, s.now().Add(-s.cfg.LockFor).UnixMilli())
	if err != nil {
		return false, fmt.Errorf("clearing SMS failures: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}
