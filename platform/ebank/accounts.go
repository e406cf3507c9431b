package ebank

import (
	"context"
	"fmt"

	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// The bank's own accounts, by label.
const (
	LabelEquity   = "equity"   // opening balances are posted from here
	LabelClearing = "clearing" // the other side of payments to and from other banks
	LabelSuspense = "suspense" // money not yet matched to an account
	LabelFees     = "fees"     // fee income
	LabelATMCash  = "atm-cash" // cash in the ATMs: a withdrawal moves money here
)

// bankAccounts are the accounts EnsureBankAccounts opens.
var bankAccounts = []struct{ label, kind, name string }{
	{LabelEquity, ledger.KindEquity, "Bank equity (opening balances)"},
	{LabelClearing, ledger.KindClearing, "Interbank clearing"},
	{LabelSuspense, ledger.KindSuspense, "Suspense"},
	{LabelFees, ledger.KindFees, "Fee income"},
	{LabelATMCash, ledger.KindATMCash, "Cash in ATMs"},
}

// EnsureBankAccounts opens the bank's own accounts that do not exist yet
// and returns them all by label. Safe on every start of every replica.
func EnsureBankAccounts(ctx context.Context, l *ledger.Ledger) (map[string]ledger.Account, error) {
	out := map[string]ledger.Account{}
	for _, b := range bankAccounts {
		a, err := l.EnsureBankAccount(ctx, b.label, b.kind, b.name)
		if err != nil {
			return nil, fmt.Errorf("opening the bank's %s account: %w", b.label, err)
		}
		out[b.label] = a
	}
	return out, nil
}

// Opening is what a new customer's accounts start with, in fen.
type Opening struct {
	Current int64
	Savings int64
}

// OpenCustomerAccounts gives the customer passportID a current and a
// savings account, each with its opening balance posted from the bank's
// equity account (so the books balance), and returns them (current
// first). Run again for the same customer it opens nothing new and posts
// nothing twice: it reuses the customer's accounts of those kinds, and
// each opening transfer carries the idempotency key
// "opening:<passport id>:<kind>" of origin "bank". For the demo's seeding
// and for tests; one caller at a time per customer.
func OpenCustomerAccounts(ctx context.Context, l *ledger.Ledger, passportID, name string, o Opening) ([]ledger.Account, error) {
	if passportID == "" || passportID == ledger.BankOwner {
		return nil, fmt.Errorf("%w: a customer's passport id", ledger.ErrInvalidRequest)
	}
	if o.Current < 0 || o.Savings < 0 {
		return nil, fmt.Errorf("%w: opening balances cannot be negative", ledger.ErrAmount)
	}
	bank, err := EnsureBankAccounts(ctx, l)
	if err != nil {
		return nil, err
	}
	have, err := l.Accounts(ctx, passportID)
	if err != nil {
		return nil, err
	}
	var out []ledger.Account
	for _, k := range []struct {
		kind, what string
		amount     int64
	}{{ledger.KindCurrent, "current account", o.Current}, {ledger.KindSavings, "savings account", o.Savings}} {
		var acct ledger.Account
		found := false
		for _, a := range have {
			if a.Kind == k.kind {
				acct, found = a, true
				break
			}
		}
		if !found {
			acct, err = l.OpenAccount(ctx, ledger.NewAccount{Owner: passportID, Kind: k.kind, Name: name + " " + k.what})
			if err != nil {
				return nil, err
			}
		}
		if k.amount > 0 {
			if _, err := l.Transfer(ctx, ledger.Request{
				Origin: ledger.BankOwner, Key: "opening:" + passportID + ":" + k.kind,
				Debit: bank[LabelEquity].Number, Credit: acct.Number, Amount: k.amount, Code: "opening", Memo: "opening balance",
			}); err != nil {
				return nil, fmt.Errorf("posting the opening balance of %s: %w", acct.Number, err)
			}
			if acct, err = l.Account(ctx, acct.Number); err != nil {
				return nil, err
			}
		}
		out = append(out, acct)
	}
	return out, nil
}
