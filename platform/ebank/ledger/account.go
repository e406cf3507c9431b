package ledger

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/egate-bank/egate/internal/store"
)

// Account kinds.
const (
	KindCurrent  = "current"  // a customer's current account
	KindSavings  = "savings"  // a customer's savings account
	KindEquity   = "equity"   // the bank's: opening balances come from here
	KindClearing = "clearing" // the bank's: the other side of payments to and from other banks
	KindSuspense = "suspense" // the bank's: money not yet matched to an account
	KindFees     = "fees"     // the bank's: fee income
	KindATMCash  = "atm-cash" // the bank's: cash in the ATMs (an asset)
)

// Account flags, as TigerBeetle names them.
const (
	// DebitsMustNotExceedCredits keeps debits_posted + debits_pending ≤
	// credits_posted: a customer's account never goes below zero.
	DebitsMustNotExceedCredits = 1
	// CreditsMustNotExceedDebits keeps credits_posted + credits_pending ≤
	// debits_posted.
	CreditsMustNotExceedDebits = 2
)

// Account statuses.
const (
	StatusOpen   = "open"
	StatusFrozen = "frozen" // no new movement; holds made before may still be captured or released
	StatusClosed = "closed"
)

// BankOwner is the owner of the bank's own accounts.
const BankOwner = "bank"

// Currency is the one currency the ledger keeps.
const Currency = "CNY"

// NumberPrefix begins every account number: 629988, a 12-digit serial and
// a Luhn check digit make 19 digits, which fit in the BIGINT id.
const NumberPrefix = "629988"

// Account is one account with its balances in fen.
type Account struct {
	Number   string `json:"number"`
	Owner    string `json:"owner"`
	Kind     string `json:"kind"`
	Label    string `json:"label,omitempty"`
	Name     string `json:"name"`
	Currency string `json:"currency"`
	Normal   string `json:"normal"` // "debit" or "credit"
	Flags    int    `json:"flags"`
	Status   string `json:"status"`

	DebitsPosted   int64 `json:"debits_posted"`
	CreditsPosted  int64 `json:"credits_posted"`
	DebitsPending  int64 `json:"debits_pending"`
	CreditsPending int64 `json:"credits_pending"`
	CreatedMS      int64 `json:"created_ms"`
}

// Balance is the posted balance on the account's normal side: for a
// customer's account (credit normal) credits minus debits.
func (a Account) Balance() int64 {
	if a.Normal == "debit" {
		return a.DebitsPosted - a.CreditsPosted
	}
	return a.CreditsPosted - a.DebitsPosted
}

// Available is the balance less what holds reserve.
func (a Account) Available() int64 {
	if a.Normal == "debit" {
		return a.DebitsPosted - a.CreditsPosted - a.CreditsPending
	}
	return a.CreditsPosted - a.DebitsPosted - a.DebitsPending
}

// NewAccount describes an account to open.
type NewAccount struct {
	Owner string // a passport id, or BankOwner
	Kind  string
	Label string // the bank's accounts: a unique name (EnsureBankAccount sets it)
	Name  string
}

// customer kinds and their defaults.
func kindDefaults(kind string) (normal string, flags int, bank bool, ok bool) {
	switch kind {
	case KindCurrent, KindSavings:
		return "credit", DebitsMustNotExceedCredits, false, true
	case KindEquity, KindFees, KindSuspense:
		return "credit", 0, true, true
	case KindClearing, KindATMCash:
		return "debit", 0, true, true
	}
	return "", 0, false, false
}

// OpenAccount opens an account with zero balances and a fresh number.
// Customers' accounts (current, savings) may not go below zero; the bank's
// may.
func (l *Ledger) OpenAccount(ctx context.Context, n NewAccount) (Account, error) {
	normal, flags, bank, ok := kindDefaults(n.Kind)
	switch {
	case !ok:
		return Account{}, fmt.Errorf("%w: unknown account kind %q", ErrInvalidRequest, n.Kind)
	case n.Owner == "":
		return Account{}, fmt.Errorf("%w: an account needs an owner", ErrInvalidRequest)
	case bank != (n.Owner == BankOwner):
		return Account{}, fmt.Errorf("%w: a %s account belongs to %s", ErrInvalidRequest, n.Kind, map[bool]string{true: "the bank", false: "a customer"}[bank])
	case bank && n.Label == "":
		return Account{}, fmt.Errorf("%w: the bank's accounts need a label", ErrInvalidRequest)
	case !bank && n.Label != "":
		return Account{}, fmt.Errorf("%w: customers' accounts have no label", ErrInvalidRequest)
	}
	a := Account{
		Owner: n.Owner, Kind: n.Kind, Label: n.Label, Name: n.Name, Currency: Currency,
		Normal: normal, Flags: flags, Status: StatusOpen, CreatedMS: l.now().UnixMilli(),
	}
	for range 5 {
		id, err := newNumber()
		if err != nil {
			return Account{}, err
		}
		a.Number = strconv.FormatInt(id, 10)
		_, err = l.db.Exec(ctx, `INSERT INTO ebank_accounts (id, owner, kind, label, name, currency, normal, flags, status,
			debits_posted, credits_posted, debits_pending, credits_pending, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, 0, ?)`,
			id, a.Owner, a.Kind, a.Label, a.Name, a.Currency, a.Normal, a.Flags, a.Status, a.CreatedMS)
		if err == nil {
			return a, nil
		}
		if !store.IsUniqueViolation(err) {
			return Account{}, fmt.Errorf("opening a %s account: %w", n.Kind, err)
		}
		if a.Label != "" {
			if got, err := l.BankAccount(ctx, a.Label); err == nil {
				return got, nil // opened meanwhile by another replica
			}
		}
	}
	return Account{}, errors.New("opening an account: no free account number after 5 tries")
}

// EnsureBankAccount returns the bank's account with label, opening it (of
// kind) if there is none. Safe to call from several replicas at once.
func (l *Ledger) EnsureBankAccount(ctx context.Context, label, kind, name string) (Account, error) {
	a, err := l.BankAccount(ctx, label)
	if err == nil {
		return a, nil
	}
	if !errors.Is(err, ErrUnknownAccount) {
		return Account{}, err
	}
	return l.OpenAccount(ctx, NewAccount{Owner: BankOwner, Kind: kind, Label: label, Name: name})
}

// BankAccount returns the bank's account with label.
func (l *Ledger) BankAccount(ctx context.Context, label string) (Account, error) {
	a, err := scanAccount(l.db.QueryRow(ctx, `SELECT `+accountCols+` FROM ebank_accounts WHERE label = ? AND label <> ''`, label))
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("%w: the bank has no account %q", ErrUnknownAccount, label)
	}
	return a, err
}

// Account returns the account with number.
func (l *Ledger) Account(ctx context.Context, number string) (Account, error) {
	id, err := ParseNumber(number)
	if err != nil {
		return Account{}, err
	}
	a, err := scanAccount(l.db.QueryRow(ctx, `SELECT `+accountCols+` FROM ebank_accounts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("%w: %s", ErrUnknownAccount, number)
	}
	if err != nil {
		return Account{}, fmt.Errorf("reading account %s: %w", number, err)
	}
	return a, nil
}

// Accounts lists owner's accounts, oldest first.
func (l *Ledger) Accounts(ctx context.Context, owner string) ([]Account, error) {
	rows, err := l.db.Query(ctx, `SELECT `+accountCols+` FROM ebank_accounts WHERE owner = ? ORDER BY created_ms, id`, owner)
	if err != nil {
		return nil, fmt.Errorf("listing accounts: %w", err)
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// SetStatus freezes, closes or reopens an account. A frozen or closed
// account takes part in no new transfer or hold; holds made before may
// still be captured or released.
func (l *Ledger) SetStatus(ctx context.Context, number, status string) error {
	if status != StatusOpen && status != StatusFrozen && status != StatusClosed {
		return fmt.Errorf("%w: status %q: use open, frozen or closed", ErrInvalidRequest, status)
	}
	id, err := ParseNumber(number)
	if err != nil {
		return err
	}
	res, err := l.db.Exec(ctx, `UPDATE ebank_accounts SET status = ? WHERE id = ?`, status, id)
	if err != nil {
		return fmt.Errorf("setting account %s %s: %w", number, status, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %s", ErrUnknownAccount, number)
	}
	return nil
}

const accountCols = `id, owner, kind, label, name, currency, normal, flags, status, debits_posted, credits_posted, debits_pending, credits_pending, created_ms`

func scanAccount(r interface{ Scan(...any) error }) (Account, error) {
	var a Account
	var id int64
	err := r.Scan(&id, &a.Owner, &a.Kind, &a.Label, &a.Name, &a.Currency, &a.Normal, &a.Flags, &a.Status,
		&a.DebitsPosted, &a.CreditsPosted, &a.DebitsPending, &a.CreditsPending, &a.CreatedMS)
	a.Number = strconv.FormatInt(id, 10)
	return a, err
}

// newNumber makes a fresh account number: NumberPrefix, 12 random digits
// and the Luhn check digit.
func newNumber() (int64, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, fmt.Errorf("making an account number: %w", err)
	}
	serial := binary.BigEndian.Uint64(b[:]) % 1_000_000_000_000
	body := fmt.Sprintf("%s%012d", NumberPrefix, serial)
	n, _ := strconv.ParseInt(body+string(rune('0'+luhn(body))), 10, 64)
	return n, nil
}

// luhn returns the check digit that makes body+digit pass the Luhn test.
func luhn(body string) int {
	sum := 0
	double := true // the rightmost digit of body is doubled once the check digit is appended
	for i := len(body) - 1; i >= 0; i-- {
		d := int(body[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return (10 - sum%10) % 10
}

// ParseNumber checks an account number (19 digits, the bank's prefix, the
// Luhn check digit) and returns it as the account's id.
func ParseNumber(s string) (int64, error) {
	if len(s) != 19 || s[:len(NumberPrefix)] != NumberPrefix {
		return 0, fmt.Errorf("%w: %q is not one of this bank's account numbers (19 digits beginning %s)", ErrUnknownAccount, s, NumberPrefix)
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: %q is not one of this bank's account numbers (19 digits beginning %s)", ErrUnknownAccount, s, NumberPrefix)
		}
	}
	if int(s[18]-'0') != luhn(s[:18]) {
		return 0, fmt.Errorf("%w: %q has a wrong check digit: check the number for a typo", ErrUnknownAccount, s)
	}
	n, _ := strconv.ParseInt(s, 10, 64)
	return n, nil
}
