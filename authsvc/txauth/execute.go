package txauth

import (
	"context"
	"errors"
	"fmt"

	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/store"
)

// Execute is the check a platform makes just before it executes an
// intent: the grant must have been issued for exactly this intent, be
// unused and unexpired; it is consumed by one UPDATE of the intent's row
// (granted to executed), so of concurrent calls with one grant exactly one
// wins. A grant for another intent is refused and not consumed.
func (s *Service) Execute(ctx context.Context, grant string, in intent.Intent) (txclient.Executed, error) {
	if err := in.Validate(); err != nil {
		return txclient.Executed{}, badIntent(err)
	}
	if grant == "" || len(grant) > 128 {
		return txclient.Executed{}, ErrUnknownGrant
	}
	ctx, err := s.dbCtx(ctx)
	if err != nil {
		return txclient.Executed{}, err
	}
	hash, th, now := in.HashHex(), tokenHash(grant), s.now().UnixMilli()
	won := false
	var after func() error
	// The grant consumed with the intent executed, and the audit record,
	// in one transaction.
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(ctx, qExecute, now, hash, th, now)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil
		}
		won = true
		after, err = s.auditTx(ctx, tx, "tx.execute", map[string]string{"intent": hash, "customer": in.Customer, "amount": itoa(in.Amount)})
		return err
	})
	var ae *Error
	if errors.As(err, &ae) {
		return txclient.Executed{}, ae
	}
	if err != nil {
		return txclient.Executed{}, unavailable(fmt.Errorf("consuming the grant: %w", err))
	}
	if !won {
		// Why not: the grant's intent, and whether it is still granted
		// (executed or cancelled: used) or expired.
		var bound, state string
		err := s.db.QueryRow(ctx, `SELECT hash, state FROM tx_intents WHERE grant_hash = ?`, th).Scan(&bound, &state)
		switch {
		case isNoRows(err):
			return txclient.Executed{}, ErrUnknownGrant
		case err != nil:
			return txclient.Executed{}, unavailable(err)
		case bound != hash:
			return txclient.Executed{}, ErrGrantMismatch
		case state != txclient.StateGranted:
			return txclient.Executed{}, ErrGrantUsed
		default:
			return txclient.Executed{}, ErrGrantExpired
		}
	}
	if err := after(); err != nil {
		return txclient.Executed{}, err
	}
	return txclient.Executed{Intent: hash, State: txclient.StateExecuted, Amount: in.Amount}, nil
}

// Cancel cancels an intent not yet executed, or reverses an executed one:
// its grant can no longer be used (the intent is no longer granted) and the limit usage it counted is given
// back, once. by names who asked (a back-end client or an operator).
func (s *Service) Cancel(ctx context.Context, hash, reason, by string) (txclient.Cancelled, error) {
	r, err := s.mustLoad(ctx, hash)
	if err != nil {
		return txclient.Cancelled{}, err
	}
	switch r.State {
	case txclient.StateAllowed, txclient.StateReview, txclient.StateGranted, txclient.StateExecuted:
	default:
		return txclient.Cancelled{}, stateErr(r.State)
	}
	now := s.now().UnixMilli()
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE tx_intents SET state = 'cancelled', updated_ms = ? WHERE hash = ? AND state = ?`, now, hash, r.State)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			var st string
			tx.QueryRow(ctx, `SELECT state FROM tx_intents WHERE hash = ?`, hash).Scan(&st)
			return stateErr(st)
		}
		return nil
	})
	var ae *Error
	if errors.As(err, &ae) {
		return txclient.Cancelled{}, ae
	}
	if err != nil {
		return txclient.Cancelled{}, unavailable(err)
	}
	// Released after the cancel is committed: Release gives back once,
	// so a retry after a crash here is safe.
	released, err := s.counter.Release(ctx, hash)
	if err != nil {
		return txclient.Cancelled{}, unavailable(err)
	}
	if err := s.appendAudit(ctx, "tx.cancel", map[string]string{"intent": hash, "customer": r.Customer, "from": r.State, "by": by, "reason": reason, "released": fmt.Sprint(released)}); err != nil {
		return txclient.Cancelled{}, err
	}
	return txclient.Cancelled{Intent: hash, State: txclient.StateCancelled, Released: released}, nil
}
