package oath

import (
	"context"
	"errors"
	"fmt"

	"github.com/egate-bank/egate/devices/hsm"
)

// RewrapSummary reports what RewrapSeeds did.
type RewrapSummary struct {
	// Rewrapped counts the seeds this run moved under the seed-wrap key, by
	// the label of the key they were wrapped with.
	Rewrapped map[string]int
	// Kept counts seeds left under another seed-wrap key (a seed-wrap key
	// lets nothing out; HMACs use each token's own key, so they keep
	// working), by label.
	Kept map[string]int
}

// Total is the number of seeds moved.
func (r RewrapSummary) Total() int {
	n := 0
	for _, v := range r.Rewrapped {
		n += v
	}
	return n
}

const rewrapPage = 256

// RewrapSeeds moves every stored seed that is not wrapped by the configured
// seed-wrap key (Config.WrapKeyLabel) under it, inside the HSM
// (HSM.RewrapSecret: unwrapped by its old key into a sensitive session key,
// wrapped at once by the new one; never in the clear outside the HSM).
//
// It is idempotent and safe to run on every replica at once: each row is
// replaced by one UPDATE that names the label and blob it replaces, so a
// row another run moved first is left alone (and not counted), and a moved
// row is never picked again. A seed that cannot be moved (its key is
// missing: hsm.ErrKeyNotFound; the blob is not its key's: hsm.ErrSealed)
// stays as it is, the others are moved, and the error counts them and names
// the first token's serial. Any other failure (the database, the HSM
// session, the context) stops the run at once; the rows moved until then
// stay moved and the next run goes on from there. Verification reads each
// token's own wrap_label, so tokens work before, during and after the move.
func (s *Service) RewrapSeeds(ctx context.Context) (RewrapSummary, error) {
	sum := RewrapSummary{Rewrapped: map[string]int{}, Kept: map[string]int{}}
	to := s.cfg.WrapKeyLabel
	type row struct {
		id, serial, label string
		wrapped           []byte
	}
	after := ""
	failed := 0
	var firstErr error
	for {
		rows, err := s.db.Query(ctx, `SELECT id, serial, wrap_label, wrapped FROM otp_tokens WHERE wrap_label <> ? AND id > ? ORDER BY id LIMIT ?`, to, after, rewrapPage)
		if err != nil {
			return sum, fmt.Errorf("rewrapping OTP seeds: %w", err)
		}
		var page []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.serial, &r.label, &r.wrapped); err != nil {
				rows.Close()
				return sum, fmt.Errorf("rewrapping OTP seeds: %w", err)
			}
			page = append(page, r)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return sum, fmt.Errorf("rewrapping OTP seeds: %w", err)
		}
		for _, r := range page {
			moved, err := s.hsm.RewrapSecret(ctx, r.label, to, r.wrapped)
			if errors.Is(err, hsm.ErrOneWay) {
				sum.Kept[r.label]++
				continue
			}
			if errors.Is(err, hsm.ErrKeyNotFound) || errors.Is(err, hsm.ErrSealed) {
				failed++
				if firstErr == nil {
					firstErr = fmt.Errorf("token %s (wrapped by %q): %w", r.serial, r.label, err)
				}
				continue
			}
			if err != nil {
				return sum, fmt.Errorf("rewrapping the seed of token %s from %q to %q: %w", r.serial, r.label, to, err)
			}
			res, err := s.db.Exec(ctx, `UPDATE otp_tokens SET wrap_label = ?, wrapped = ? WHERE id = ? AND wrap_label = ? AND wrapped = ?`, to, moved, r.id, r.label, r.wrapped)
			if err != nil {
				return sum, fmt.Errorf("storing the rewrapped seed of token %s: %w", r.serial, err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				sum.Rewrapped[r.label]++
			}
		}
		if len(page) < rewrapPage {
			if failed > 0 {
				return sum, fmt.Errorf("rewrapping OTP seeds: %d could not be moved and stay under their key; the first: %w", failed, firstErr)
			}
			return sum, nil
		}
		after = page[len(page)-1].id
	}
}
