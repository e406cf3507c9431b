package mall

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// Merchant states.
const (
	Applied  = "applied"
	Approved = "approved"
	Rejected = "rejected"
)

// Rules are the admission rules an application is checked against.
type Rules struct {
	// Categories may sell in the mall; any other is refused.
	Categories []string
	// HighRisk categories are allowed but flagged for the reviewer.
	HighRisk []string
}

// DefaultRules are the bank's admission rules.
func DefaultRules() Rules {
	return Rules{
		Categories: []string{"books", "clothing", "electronics", "food", "home", "jewellery", "sports", "tea", "toys"},
		HighRisk:   []string{"electronics", "jewellery"},
	}
}

func (r Rules) rules() Rules {
	if len(r.Categories) == 0 {
		return DefaultRules()
	}
	return r
}

// Application is what a customer applying as a merchant gives.
type Application struct {
	Owner    string // the applicant's passport id
	Name     string // the shop's name
	Category string
	Licence  string // the business licence: an 18-character unified social credit code
	Contact  string // an 11-digit mobile number
}

// Merchant is an application and, once approved, a merchant of the mall.
type Merchant struct {
	ID, Owner, Name, Category, Licence, Contact string
	// Flags are the risk flags the rules found (high_risk_category,
	// duplicate_licence, duplicate_contact): the reviewer must accept them.
	Flags []string
	// Problems are what the rules refuse (name_missing, licence_missing,
	// contact_missing, category_not_allowed): such an application is
	// never approved.
	Problems   []string
	Status     string
	Account    string // the settlement account at ebank, once approved
	Reviewer   string
	Note       string
	CreatedMS  int64
	ReviewedMS int64
}

// Eligible reports whether the rules let the application be approved.
func (m Merchant) Eligible() bool { return len(m.Problems) == 0 }

var (
	licenceRE = regexp.MustCompile(`^[0-9A-HJ-NPQRTUWXY]{18}$`)
	mobileRE  = regexp.MustCompile(`^1[3-9][0-9]{9}$`)
)

// Categories lists the categories the rules allow, for the apply form.
func (m *Mall) Categories() []string { return m.Rules.rules().Categories }

// check runs the rules on a; flags that compare with other merchants are
// added by Apply.
func (r Rules) check(a Application) (problems, flags []string) {
	r = r.rules()
	if a.Name == "" || utf8.RuneCountInString(a.Name) > 60 {
		problems = append(problems, "name_missing")
	}
	if !licenceRE.MatchString(a.Licence) {
		problems = append(problems, "licence_missing")
	}
	if !mobileRE.MatchString(a.Contact) {
		problems = append(problems, "contact_missing")
	}
	if !slices.Contains(r.Categories, a.Category) {
		problems = append(problems, "category_not_allowed")
	} else if slices.Contains(r.HighRisk, a.Category) {
		flags = append(flags, "high_risk_category")
	}
	return problems, flags
}

// Apply records a customer's application with what the rules found. One
// application per customer.
func (m *Mall) Apply(ctx context.Context, a Application) (Merchant, error) {
	a.Name, a.Licence, a.Contact = strings.TrimSpace(a.Name), strings.ToUpper(strings.TrimSpace(a.Licence)), strings.TrimSpace(a.Contact)
	if a.Owner == "" {
		return Merchant{}, fmt.Errorf("%w: the applicant is not known", ErrInvalid)
	}
	problems, flags := m.Rules.check(a)
	var n int
	if err := m.DB.QueryRow(ctx, `SELECT COUNT(*) FROM mall_merchants WHERE licence = ? AND licence <> ''`, a.Licence).Scan(&n); err != nil {
		return Merchant{}, err
	}
	if n > 0 {
		flags = append(flags, "duplicate_licence")
	}
	if err := m.DB.QueryRow(ctx, `SELECT COUNT(*) FROM mall_merchants WHERE contact = ? AND contact <> ''`, a.Contact).Scan(&n); err != nil {
		return Merchant{}, err
	}
	if n > 0 {
		flags = append(flags, "duplicate_contact")
	}
	mc := Merchant{ID: newID("m-"), Owner: a.Owner, Name: a.Name, Category: a.Category, Licence: a.Licence, Contact: a.Contact,
		Flags: flags, Problems: problems, Status: Applied, CreatedMS: m.now().UnixMilli()}
	if err := m.insertMerchant(ctx, mc); err != nil {
		return Merchant{}, err
	}
	return mc, nil
}

func (m *Mall) insertMerchant(ctx context.Context, mc Merchant) error {
	_, err := m.DB.Exec(ctx, `INSERT INTO mall_merchants (id, owner, name, category, licence, contact, flags, problems, status, account, reviewer, note, created_ms, reviewed_ms)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, mc.ID, mc.Owner, mc.Name, mc.Category, mc.Licence, mc.Contact,
		strings.Join(mc.Flags, ","), strings.Join(mc.Problems, ","), mc.Status, mc.Account, mc.Reviewer, mc.Note, mc.CreatedMS, mc.ReviewedMS)
	if store.IsUniqueViolation(err) {
		return fmt.Errorf("%w: %s", ErrAlreadyApplied, mc.Owner)
	}
	return err
}

// Seed records an approved merchant with a given id and settlement
// account, for egate demo: no rules, no review. Run again it changes
// nothing.
func (m *Mall) Seed(ctx context.Context, mc Merchant) (Merchant, error) {
	if got, err := m.Merchant(ctx, mc.ID); err == nil {
		return got, nil
	}
	mc.Status, mc.Reviewer, mc.Note = Approved, "seed", "egate demo"
	mc.CreatedMS = m.now().UnixMilli()
	mc.ReviewedMS = mc.CreatedMS
	if err := m.insertMerchant(ctx, mc); err != nil {
		return Merchant{}, err
	}
	return mc, nil
}

const merchantCols = `id, owner, name, category, licence, contact, flags, problems, status, account, reviewer, note, created_ms, reviewed_ms`

func scanMerchant(s interface{ Scan(...any) error }) (Merchant, error) {
	var mc Merchant
	var flags, problems string
	err := s.Scan(&mc.ID, &mc.Owner, &mc.Name, &mc.Category, &mc.Licence, &mc.Contact, &flags, &problems, &mc.Status, &mc.Account,
		&mc.Reviewer, &mc.Note, &mc.CreatedMS, &mc.ReviewedMS)
	if flags != "" {
		mc.Flags = strings.Split(flags, ",")
	}
	if problems != "" {
		mc.Problems = strings.Split(problems, ",")
	}
	return mc, err
}

// Merchant returns the merchant id.
func (m *Mall) Merchant(ctx context.Context, id string) (Merchant, error) {
	mc, err := scanMerchant(m.DB.QueryRow(ctx, `SELECT `+merchantCols+` FROM mall_merchants WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return mc, fmt.Errorf("%w: merchant %s", ErrNotFound, id)
	}
	return mc, err
}

// MerchantOf returns the customer's merchant (application), if any.
func (m *Mall) MerchantOf(ctx context.Context, owner string) (Merchant, bool, error) {
	mc, err := scanMerchant(m.DB.QueryRow(ctx, `SELECT `+merchantCols+` FROM mall_merchants WHERE owner = ?`, owner))
	if errors.Is(err, sql.ErrNoRows) {
		return mc, false, nil
	}
	return mc, err == nil, err
}

// Merchants lists the merchants in status (all when empty), oldest first.
func (m *Mall) Merchants(ctx context.Context, status string) ([]Merchant, error) {
	rows, err := m.DB.Query(ctx, `SELECT `+merchantCols+` FROM mall_merchants WHERE status = ? OR ? = '' ORDER BY created_ms, id`, status, status)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Merchant
	for rows.Next() {
		mc, err := scanMerchant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, mc)
	}
	return out, rows.Err()
}

// SettlementOwner is the ledger owner of a merchant's settlement account.
func SettlementOwner(merchantID string) string { return "merchant:" + merchantID }

// Review is a staff decision on an application.
type Review struct {
	Merchant string
	Reviewer string
	Note     string // why: required to reject
	// AcceptRisk says the reviewer saw the risk flags and admits the
	// merchant anyway; without it a flagged application is not approved.
	AcceptRisk bool
}

// Approve admits an eligible application: it opens (or finds) the
// merchant's settlement account at ebank and marks the merchant approved.
// Only one reviewer wins a race; the other gets ErrAlreadyReviewed.
func (m *Mall) Approve(ctx context.Context, rv Review) (Merchant, error) {
	mc, err := m.Merchant(ctx, rv.Merchant)
	if err != nil {
		return mc, err
	}
	switch {
	case mc.Status != Applied:
		return mc, fmt.Errorf("%w: %s is %s", ErrAlreadyReviewed, mc.ID, mc.Status)
	case !mc.Eligible():
		return mc, fmt.Errorf("%w: %s", ErrIneligible, strings.Join(mc.Problems, ", "))
	case len(mc.Flags) > 0 && !rv.AcceptRisk:
		return mc, fmt.Errorf("%w: %s", ErrRiskNotAccepted, strings.Join(mc.Flags, ", "))
	}
	acct, err := m.settlementAccount(ctx, mc)
	if err != nil {
		return mc, err
	}
	res, err := m.DB.Exec(ctx, `UPDATE mall_merchants SET status = ?, account = ?, reviewer = ?, note = ?, reviewed_ms = ? WHERE id = ? AND status = ?`,
		Approved, acct, rv.Reviewer, rv.Note, m.now().UnixMilli(), mc.ID, Applied)
	if err != nil {
		return mc, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return mc, fmt.Errorf("%w: %s", ErrAlreadyReviewed, mc.ID)
	}
	return m.Merchant(ctx, mc.ID)
}

// settlementAccount opens the merchant's current account at ebank, or
// returns the one it has (an approval retried after a failure).
func (m *Mall) settlementAccount(ctx context.Context, mc Merchant) (string, error) {
	owner := SettlementOwner(mc.ID)
	have, err := m.Ledger.Accounts(ctx, owner)
	if err != nil {
		return "", err
	}
	for _, a := range have {
		if a.Kind == ledger.KindCurrent {
			return a.Number, nil
		}
	}
	a, err := m.Ledger.OpenAccount(ctx, ledger.NewAccount{Owner: owner, Kind: ledger.KindCurrent, Name: mc.Name + " settlement"})
	if err != nil {
		return "", fmt.Errorf("opening the settlement account of %s: %w", mc.ID, err)
	}
	return a.Number, nil
}

// Reject refuses an application, with the reason.
func (m *Mall) Reject(ctx context.Context, rv Review) (Merchant, error) {
	if strings.TrimSpace(rv.Note) == "" {
		return Merchant{}, ErrNoReason
	}
	mc, err := m.Merchant(ctx, rv.Merchant)
	if err != nil {
		return mc, err
	}
	res, err := m.DB.Exec(ctx, `UPDATE mall_merchants SET status = ?, reviewer = ?, note = ?, reviewed_ms = ? WHERE id = ? AND status = ?`,
		Rejected, rv.Reviewer, rv.Note, m.now().UnixMilli(), mc.ID, Applied)
	if err != nil {
		return mc, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return mc, fmt.Errorf("%w: %s is %s", ErrAlreadyReviewed, mc.ID, mc.Status)
	}
	return m.Merchant(ctx, mc.ID)
}
