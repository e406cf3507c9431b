// Package limits is the bank's transaction-limit table by authentication
// level and the per-customer usage counted against it.
//
// The table says, for each level a customer can prove (1 password … 5 a
// second-generation U-shield), how much one movement may be and how much may
// move in a day and in a year. A movement needs the lowest level whose limits
// it fits, given what the customer already moved today and this year; a
// customer may lower their own limits, never raise them past the table.
//
// Usage is counted per customer across every channel and kind, in the
// database, by one guarded UPDATE per period (… SET used = used + amount
// WHERE used + amount <= limit), inside one transaction with the record of
// what was counted. So concurrent movements — in goroutines or on replicas on
// one PostgreSQL — never together pass a limit that only one of them fits,
// and counting the same key twice counts once. Release gives a count back
// (a cancelled or reversed movement), once.
package limits

import (
	"errors"
	"fmt"

	"github.com/egate-bank/egate/internal/money"
)

// Limit is one row of the table, amounts in fen.
type Limit struct {
	Level   int   `yaml:"level" json:"level"`
	PerTxn  int64 `yaml:"per-transaction" json:"per_transaction"`
	PerDay  int64 `yaml:"per-day" json:"per_day"`
	PerYear int64 `yaml:"per-year" json:"per_year"`
}

// Table is the limit table, one row per level from 1 up.
type Table []Limit

// yuan is 100 fen.
const yuan = 100

// Default is the bank's default table (docs/architecture.md §5), in fen.
func Default() Table {
	return Table{
		{Level: 1, PerTxn: 0, PerDay: 0, PerYear: 0},
		{Level: 2, PerTxn: 1_000 * yuan, PerDay: 5_000 * yuan, PerYear: 100_000 * yuan},
		{Level: 3, PerTxn: 50_000 * yuan, PerDay: 500_000 * yuan, PerYear: 5_000_000 * yuan},
		{Level: 4, PerTxn: 1_000_000 * yuan, PerDay: 1_000_000 * yuan, PerYear: 20_000_000 * yuan},
		{Level: 5, PerTxn: 5_000_000 * yuan, PerDay: 5_000_000 * yuan, PerYear: 100_000_000 * yuan},
	}
}

// ErrConfig reports an unusable table.
var ErrConfig = errors.New("limit table")

// Validate checks that the table has levels 1…N in order (N ≤ 5), no
// negative amount, per-transaction ≤ per-day ≤ per-year in each row, and
// that no limit falls as the level rises.
func (t Table) Validate() error {
	if len(t) == 0 || len(t) > 5 {
		return fmt.Errorf("%w: give one row for each level from 1 up to at most 5", ErrConfig)
	}
	for i, l := range t {
		if l.Level != i+1 {
			return fmt.Errorf("%w: row %d is level %d, want level %d (rows in level order, none missing)", ErrConfig, i+1, l.Level, i+1)
		}
		if l.PerTxn < 0 || l.PerDay < 0 || l.PerYear < 0 {
			return fmt.Errorf("%w: level %d: limits must not be negative", ErrConfig, l.Level)
		}
		if l.PerTxn > l.PerDay || l.PerDay > l.PerYear {
			return fmt.Errorf("%w: level %d: want per-transaction ≤ per-day ≤ per-year", ErrConfig, l.Level)
		}
		if i > 0 {
			p := t[i-1]
			if l.PerTxn < p.PerTxn || l.PerDay < p.PerDay || l.PerYear < p.PerYear {
				return fmt.Errorf("%w: level %d allows less than level %d", ErrConfig, l.Level, p.Level)
			}
		}
	}
	return nil
}

// Of returns the row of a level.
func (t Table) Of(level int) (Limit, bool) {
	if level < 1 || level > len(t) {
		return Limit{}, false
	}
	return t[level-1], true
}

// Top is the highest level in the table.
func (t Table) Top() int { return len(t) }

// Usage is what a customer has moved in the current day and year, in fen.
type Usage struct {
	Day, Year int64
}

// Period names a limit.
type Period string

// The limits.
const (
	PerTransaction Period = "per-transaction"
	PerDay         Period = "per-day"
	PerYear        Period = "per-year"
)

// ExceededError says which limit stops a movement at a level.
type ExceededError struct {
	Period Period
	Level  int
	Max    int64 // the limit, fen
	Used   int64 // already used in the period (0 for per-transaction)
	Amount int64
}

// ErrExceeded matches every *ExceededError with errors.Is.
var ErrExceeded = errors.New("over the limit")

func (e *ExceededError) Error() string {
	if e.Period == PerTransaction {
		return fmt.Sprintf("%s yuan is over the level-%d limit of %s yuan per transaction", money.Yuan(e.Amount), e.Level, money.Yuan(e.Max))
	}
	left := e.Max - e.Used
	if left < 0 {
		left = 0
	}
	what := "today"
	if e.Period == PerYear {
		what = "this year"
	}
	return fmt.Sprintf("%s yuan is over what is left %s at level %d: %s of %s yuan", money.Yuan(e.Amount), what, e.Level, money.Yuan(left), money.Yuan(e.Max))
}

// Is makes errors.Is(err, ErrExceeded) true.
func (e *ExceededError) Is(target error) bool { return target == ErrExceeded }

// Check says whether amount fits the limits of level given usage, and if
// not, which limit stops it.
func (t Table) Check(level int, amount int64, u Usage) error {
	l, ok := t.Of(level)
	if !ok {
		return fmt.Errorf("%w: no level %d", ErrConfig, level)
	}
	return l.check(amount, u)
}

func (l Limit) check(amount int64, u Usage) error {
	switch {
	case amount > l.PerTxn:
		return &ExceededError{Period: PerTransaction, Level: l.Level, Max: l.PerTxn, Amount: amount}
	case u.Day+amount > l.PerDay:
		return &ExceededError{Period: PerDay, Level: l.Level, Max: l.PerDay, Used: u.Day, Amount: amount}
	case u.Year+amount > l.PerYear:
		return &ExceededError{Period: PerYear, Level: l.Level, Max: l.PerYear, Used: u.Year, Amount: amount}
	}
	return nil
}

// Need returns the lowest level at which amount fits, given usage. When no
// level does, the error is the *ExceededError of the highest level: the
// limit that no tool can lift.
func (t Table) Need(amount int64, u Usage) (int, error) {
	var err error
	for _, l := range t {
		if err = l.check(amount, u); err == nil {
			return l.Level, nil
		}
	}
	if err == nil {
		err = fmt.Errorf("%w: empty", ErrConfig)
	}
	return 0, err
}

// Lower returns t with each limit lowered to the customer's own where the
// customer set one; levels the customer did not touch keep the table's.
func (t Table) Lower(own []OwnLimit) Table {
	out := make(Table, len(t))
	copy(out, t)
	for _, o := range own {
		if o.Level < 1 || o.Level > len(out) {
			continue
		}
		l := &out[o.Level-1]
		l.PerTxn = min(l.PerTxn, o.PerTxn)
		l.PerDay = min(l.PerDay, o.PerDay)
		l.PerYear = min(l.PerYear, o.PerYear)
	}
	// A lowered level must not allow more than the one above it was
	// lowered to: a customer who lowered level 3 to 100 yuan did not mean
	// level 2 to stay at 1,000.
	for i := len(out) - 2; i >= 0; i-- {
		out[i].PerTxn = min(out[i].PerTxn, out[i+1].PerTxn)
		out[i].PerDay = min(out[i].PerDay, out[i+1].PerDay)
		out[i].PerYear = min(out[i].PerYear, out[i+1].PerYear)
	}
	return out
}

// OwnLimit is a customer's own lower limit for a level.
type OwnLimit Limit
