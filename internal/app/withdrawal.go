package app

import (
	"context"
	"fmt"

	"github.com/egate-bank/egate/atm/withdrawal"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// WithdrawalOrigin is the ledger origin (the back-end client) of ATM
// withdrawals' holds.
const WithdrawalOrigin = "atm-withdrawal"

// WithdrawalLedger is ebank's holds as the withdrawal's Ledger: a hold from
// the customer's account to the bank's atm-cash account, captured for what
// the ATM paid out, released for the rest. A refusal of the ledger (funds,
// account not open, a grant refused) is withdrawal.ErrHoldRefused.
type WithdrawalLedger struct {
	Holds *ebank.Holds
	// Cash is the number of the bank's atm-cash account.
	Cash string
}

var _ withdrawal.Ledger = WithdrawalLedger{}

// NewWithdrawalLedger finds the atm-cash account (opened by
// ebank.EnsureBankAccounts).
func NewWithdrawalLedger(ctx context.Context, h *ebank.Holds) (WithdrawalLedger, error) {
	a, err := h.Ledger.BankAccount(ctx, ebank.LabelATMCash)
	if err != nil {
		return WithdrawalLedger{}, fmt.Errorf("the bank's %s account: %w", ebank.LabelATMCash, err)
	}
	return WithdrawalLedger{Holds: h, Cash: a.Number}, nil
}

func refused(err error) error {
	if err != nil && ledger.Code(err) != "" {
		return fmt.Errorf("%w: %w", withdrawal.ErrHoldRefused, err)
	}
	return err
}

// Hold implements withdrawal.Ledger.
func (l WithdrawalLedger) Hold(ctx context.Context, key, account string, amount int64, grant string) (string, error) {
	t, err := l.Holds.Hold(ctx, ebank.HoldRequest{Origin: WithdrawalOrigin, Key: key, Debit: account, Credit: l.Cash,
		Amount: amount, Grant: grant, Code: "atm-withdrawal"})
	if err != nil {
		return "", refused(err)
	}
	return t.ID, nil
}

// Capture implements withdrawal.Ledger.
func (l WithdrawalLedger) Capture(ctx context.Context, key, hold string, amount int64, grant string) error {
	_, err := l.Holds.Capture(ctx, WithdrawalOrigin, key, hold, amount, grant)
	return err
}

// Release implements withdrawal.Ledger.
func (l WithdrawalLedger) Release(ctx context.Context, key, hold, grant string) error {
	_, err := l.Holds.Release(ctx, WithdrawalOrigin, key, hold, grant)
	return err
}
