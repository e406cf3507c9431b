package ebank

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// Mobiles is the receive-by-mobile directory (table ebank_mobiles): a
// customer registers a mobile number for one of their accounts, and a
// payer may give that number instead of the account number.
type Mobiles struct {
	DB     *store.DB
	Ledger *ledger.Ledger
}

// Errors of the directory.
var (
	ErrBadMobile   = errors.New("not a mainland mobile number (11 digits starting with 1)")
	ErrMobileTaken = errors.New("the mobile number is registered by another customer")
	ErrNotYours    = errors.New("the account is not the customer's open account")
)

// NormalizeMobile turns "+86 138-0013-8000" into "13800138000"; false when
// it is not a mainland mobile number.
func NormalizeMobile(s string) (string, bool) {
	s = strings.NewReplacer(" ", "", "-", "", "\u00a0", "").Replace(strings.TrimSpace(s))
	s = strings.TrimPrefix(strings.TrimPrefix(s, "+86"), "0086")
	if len(s) != 11 || s[0] != '1' || strings.Trim(s, "0123456789") != "" {
		return "", false
	}
	return s, true
}

// Register points mobile at owner's account (one of owner's open customer
// accounts); registering it again moves it to another of owner's
// accounts. A number another customer registered is refused.
func (m Mobiles) Register(ctx context.Context, owner, mobile, account string) error {
	n, ok := NormalizeMobile(mobile)
	if !ok {
		return ErrBadMobile
	}
	a, err := m.Ledger.Account(ctx, account)
	if err != nil || a.Owner != owner || a.Owner == ledger.BankOwner || a.Status != ledger.StatusOpen {
		return ErrNotYours
	}
	res, err := m.DB.Exec(ctx, `INSERT INTO ebank_mobiles (mobile, owner, account, registered_ms) VALUES (?, ?, ?, ?)
		ON CONFLICT (mobile) DO UPDATE SET account = excluded.account, registered_ms = excluded.registered_ms WHERE ebank_mobiles.owner = excluded.owner`,
		n, owner, a.Number, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("registering a mobile number: %w", err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return ErrMobileTaken
	}
	return nil
}

// Lookup returns the account registered for mobile; ok false when none.
func (m Mobiles) Lookup(ctx context.Context, mobile string) (account string, ok bool, err error) {
	n, valid := NormalizeMobile(mobile)
	if !valid {
		return "", false, nil
	}
	err = m.DB.QueryRow(ctx, `SELECT account FROM ebank_mobiles WHERE mobile = ?`, n).Scan(&account)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("looking up a mobile number: %w", err)
	}
	return account, true, nil
}

// MaskMobile shows a number as 138****8000.
func MaskMobile(n string) string {
	if len(n) != 11 {
		return n
	}
	return n[:3] + "****" + n[7:]
}

// Of returns the account owner's mobile number receives into, if any.
func (m Mobiles) Of(ctx context.Context, owner, mobile string) (account string, ok bool, err error) {
	n, valid := NormalizeMobile(mobile)
	if !valid {
		return "", false, nil
	}
	err = m.DB.QueryRow(ctx, `SELECT account FROM ebank_mobiles WHERE mobile = ? AND owner = ?`, n, owner).Scan(&account)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("reading a mobile registration: %w", err)
	}
	return account, true, nil
}
