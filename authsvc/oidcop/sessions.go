package oidcop

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Session is a passport session: the customer is logged in (at Level, with
// AMR, since AuthTime) for every platform until it expires or ends. Only the
// SHA-256 of the cookie value is stored.
type Session struct {
	PassportID string
	Level      int
	AMR        []string
	AuthTime   time.Time
	Expires    time.Time
}

// ErrNoSession: the cookie names no live session.
var ErrNoSession = errors.New("no passport session")

// CreateSession starts a session and returns the cookie value.
func (s *Storage) CreateSession(ctx context.Context, passportID string, level int, amr []string, authTime time.Time, device string) (string, Session, error) {
	tok := randomID(32)
	now := s.now()
	ss := Session{PassportID: passportID, Level: level, AMR: amr, AuthTime: authTime, Expires: now.Add(s.cfg.SessionTTL)}
	if len(device) > 200 {
		device = device[:200]
	}
	_, err := s.db.Exec(ctx, `INSERT INTO passport_sessions (id_hash, passport_id, level, amr, auth_time_ms, expires_ms, device, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		hashToken(tok), passportID, level, joinSp(amr), authTime.UnixMilli(), ss.Expires.UnixMilli(), device, now.UnixMilli())
	if err != nil {
		return "", Session{}, fmt.Errorf("starting session: %w", err)
	}
	return tok, ss, nil
}

// SessionByToken returns the live session of a cookie value.
func (s *Storage) SessionByToken(ctx context.Context, tok string) (Session, error) {
	if tok == "" || len(tok) > 128 {
		return Session{}, ErrNoSession
	}
	var (
		ss                Session
		amr               string
		authTime, expires int64
	)
	err := s.db.QueryRow(ctx, `SELECT passport_id, level, amr, auth_time_ms, expires_ms FROM passport_sessions WHERE id_hash = ? AND ended = 0 AND expires_ms > ?`,
		hashToken(tok), s.now().UnixMilli()).Scan(&ss.PassportID, &ss.Level, &amr, &authTime, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("reading session: %w", err)
	}
	ss.AMR, ss.AuthTime, ss.Expires = splitSp(amr), time.UnixMilli(authTime), time.UnixMilli(expires)
	return ss, nil
}

// UpgradeSession records a higher level reached in a live session.
func (s *Storage) UpgradeSession(ctx context.Context, tok string, level int, amr []string, authTime time.Time) error {
	_, err := s.db.Exec(ctx, `UPDATE passport_sessions SET level = ?, amr = ?, auth_time_ms = ? WHERE id_hash = ? AND ended = 0 AND level <= ?`,
		level, joinSp(amr), authTime.UnixMilli(), hashToken(tok), level)
	if err != nil {
		return fmt.Errorf("upgrading session: %w", err)
	}
	return nil
}

// EndSession ends one session (logout on this browser).
func (s *Storage) EndSession(ctx context.Context, tok string) error {
	_, err := s.db.Exec(ctx, `UPDATE passport_sessions SET ended = 1 WHERE id_hash = ?`, hashToken(tok))
	return err
}

// EndSessionsOf ends every session of a customer.
func (s *Storage) EndSessionsOf(ctx context.Context, passportID string) error {
	_, err := s.db.Exec(ctx, `UPDATE passport_sessions SET ended = 1 WHERE passport_id = ?`, passportID)
	if err != nil {
		return fmt.Errorf("ending sessions: %w", err)
	}
	return nil
}

// LogoutCustomer ends every passport session of a customer and revokes
// every token issued to them, for every client: after a logout no platform
// can refresh its way back in.
func (s *Storage) LogoutCustomer(ctx context.Context, passportID string) error {
	if err := s.EndSessionsOf(ctx, passportID); err != nil {
		return err
	}
	return s.revokeWhere(ctx, `subject = ?`, passportID)
}

// RandomToken returns 256 random bits, URL-safe.
func RandomToken() string { return randomID(32) }

// Purge deletes what can no longer be used: auth requests and tokens that
// expired more than grace ago (kept that long so that a replayed code or
// refresh token is still recognised and revokes its family), and sessions
// that ended or expired. It returns the number of rows deleted.
func (s *Storage) Purge(ctx context.Context, grace time.Duration) (int64, error) {
	cut := s.now().Add(-grace).UnixMilli()
	var total int64
	for _, q := range []struct {
		sql string
		arg any
	}{
		{`DELETE FROM oidc_auth_requests WHERE expires_ms < ?`, cut},
		{`DELETE FROM oidc_tokens WHERE expires_ms < ?`, cut},
		{`DELETE FROM passport_sessions WHERE expires_ms < ? OR ended = 1`, s.now().UnixMilli()},
	} {
		res, err := s.db.Exec(ctx, q.sql, q.arg)
		if err != nil {
			return total, fmt.Errorf("purging: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}
