package ledger

import (
	"context"
	"fmt"
	"math"
)

// HistoryFilter narrows an account's history: transfers created in
// [FromMS, ToMS) (0: unbounded) with an amount in [Min, Max] fen (0:
// unbounded), newest first, at most Limit (0: 500).
type HistoryFilter struct {
	FromMS, ToMS int64
	Min, Max     int64
	Limit        int
}

// History lists the movements that changed number's posted balance
// (posted transfers and captured holds), newest first. Holds still pending
// are in the account's debits_pending and credits_pending, not here.
func (l *Ledger) History(ctx context.Context, number string, f HistoryFilter) ([]Transfer, error) {
	id, err := ParseNumber(number)
	if err != nil {
		return nil, err
	}
	to, max := f.ToMS, f.Max
	if to == 0 {
		to = math.MaxInt64
	}
	if max == 0 {
		max = math.MaxInt64
	}
	if f.Limit <= 0 {
		f.Limit = 500
	}
	rows, err := l.db.Query(ctx, `SELECT `+rowCols+` FROM ebank_transfers
		WHERE (debit_account = ? OR credit_account = ?) AND kind IN ('posted', 'post')
		AND created_ms >= ? AND created_ms < ? AND amount >= ? AND amount <= ?
		ORDER BY created_ms DESC, id DESC LIMIT ?`, id, id, f.FromMS, to, f.Min, max, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("reading the history of %s: %w", number, err)
	}
	defer rows.Close()
	var out []Transfer
	for rows.Next() {
		w, err := scanRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, w.transfer())
	}
	return out, rows.Err()
}
