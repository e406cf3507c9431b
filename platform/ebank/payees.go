package ebank

import (
	"context"
	"fmt"
	"time"

	"github.com/egate-bank/egate/internal/store"
)

// Payee is one of a customer's saved payees.
type Payee struct {
	Kind    string // account (at this bank) or bank (another bank's)
	Account string
	Name    string
	Bank    string // kind bank: the other bank's name
}

// Payees keeps customers' saved payees (table ebank_payees).
type Payees struct{ DB *store.DB }

// MaxPayees bounds one customer's list.
const MaxPayees = 50

// Save adds or renames owner's payee; a customer may keep MaxPayees.
func (p Payees) Save(ctx context.Context, owner string, y Payee) error {
	if owner == "" || y.Account == "" || (y.Kind != "account" && y.Kind != "bank") || len(y.Name) > 60 || len(y.Bank) > 60 || len(y.Account) > 40 {
		return fmt.Errorf("saving a payee: invalid payee")
	}
	var n int
	if err := p.DB.QueryRow(ctx, `SELECT COUNT(*) FROM ebank_payees WHERE owner = ?`, owner).Scan(&n); err != nil {
		return fmt.Errorf("counting payees: %w", err)
	}
	if n >= MaxPayees {
		return fmt.Errorf("saving a payee: at most %d", MaxPayees)
	}
	_, err := p.DB.Exec(ctx, `INSERT INTO ebank_payees (owner, kind, account, name, bank, created_ms) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (owner, kind, account) DO UPDATE SET name = excluded.name, bank = excluded.bank`,
		owner, y.Kind, y.Account, y.Name, y.Bank, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("saving a payee: %w", err)
	}
	return nil
}

// List returns owner's payees, oldest first.
func (p Payees) List(ctx context.Context, owner string) ([]Payee, error) {
	rows, err := p.DB.Query(ctx, `SELECT kind, account, name, bank FROM ebank_payees WHERE owner = ? ORDER BY created_ms, account`, owner)
	if err != nil {
		return nil, fmt.Errorf("listing payees: %w", err)
	}
	defer rows.Close()
	var out []Payee
	for rows.Next() {
		var y Payee
		if err := rows.Scan(&y.Kind, &y.Account, &y.Name, &y.Bank); err != nil {
			return nil, err
		}
		out = append(out, y)
	}
	return out, rows.Err()
}
