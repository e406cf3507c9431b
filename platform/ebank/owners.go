package ebank

import (
	"context"
	"errors"
	"time"

	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// Owners answers transaction authorization's questions about accounts from
// the ledger (authsvc/txauth's Accounts and AccountAger): whose an account
// is, and how old. An account that is not the bank's (another bank's, a
// typo) belongs to nobody. Both answers come from Ledger.Opened, which
// reads an account once and remembers what never changes about it.
type Owners struct {
	Ledger *ledger.Ledger
	Now    func() time.Time // nil: time.Now
}

// Owns reports whether account is one of customer's.
func (o Owners) Owns(ctx context.Context, customer, account string) (bool, error) {
	a, err := o.Ledger.Opened(ctx, account)
	if errors.Is(err, ledger.ErrUnknownAccount) || ledger.Code(err) == "unknown_account" {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return customer != "" && a.Owner == customer, nil
}

// AccountAgeDays is the days since account was opened; -1 when unknown.
func (o Owners) AccountAgeDays(ctx context.Context, account string) (int64, error) {
	a, err := o.Ledger.Opened(ctx, account)
	if ledger.Code(err) == "unknown_account" {
		return -1, nil
	}
	if err != nil {
		return -1, err
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	return (now().UnixMilli() - a.CreatedMS) / (24 * 3600 * 1000), nil
}
