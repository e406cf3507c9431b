package gridcard

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// CardInfo is an issued card as an operator sees it: never its codes.
type CardInfo struct {
	Serial      string
	Cols, Rows  int
	Uses        int
	MaxUses     int
	Attempts    int // wrong answers since the last right one
	MaxAttempts int
	Status      string // "active" or "revoked" (replaced by a newer card)
	Issued      time.Time
}

// Locked reports whether the card refuses answers: too many wrong ones in
// a row. Only a new card (Issue) ends it.
func (c CardInfo) Locked() bool { return c.Attempts >= c.MaxAttempts }

// Cards lists the customer's cards, oldest first.
func (s *Service) Cards(ctx context.Context, passportID string) ([]CardInfo, error) {
	rows, err := s.db.Query(ctx, `SELECT serial, cols, rows_n, uses, max_uses, attempts, max_attempts, status, issued_ms
		FROM gridcards WHERE passport_id = ? ORDER BY issued_ms, serial`, passportID)
	if err != nil {
		return nil, fmt.Errorf("listing grid cards: %w", err)
	}
	defer rows.Close()
	var out []CardInfo
	for rows.Next() {
		var c CardInfo
		var issued int64
		if err := rows.Scan(&c.Serial, &c.Cols, &c.Rows, &c.Uses, &c.MaxUses, &c.Attempts, &c.MaxAttempts, &c.Status, &issued); err != nil {
			return nil, fmt.Errorf("listing grid cards: %w", err)
		}
		c.Issued = time.UnixMilli(issued)
		out = append(out, c)
	}
	return out, rows.Err()
}

// ErrNoSuchCard: the customer has no active card with that serial.
var ErrNoSuchCard = errors.New("no active grid card with that serial")

// ReportLost revokes the customer's active card serial at once (the
// customer reported it lost): it answers no challenge from then on.
func (s *Service) ReportLost(ctx context.Context, passportID, serial string) error {
	res, err := s.db.Exec(ctx, `UPDATE gridcards SET status = 'revoked' WHERE serial = ? AND passport_id = ? AND status = 'active'`, serial, passportID)
	if err != nil {
		return fmt.Errorf("revoking grid card: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNoSuchCard
	}
	return nil
}
