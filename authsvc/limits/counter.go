package limits

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/egate-bank/egate/internal/money"
	"github.com/egate-bank/egate/internal/store"
)

// Counter counts customers' usage in the database.
type Counter struct {
	db    *store.DB
	table Table
	loc   *time.Location
	now   func() time.Time
}

// NewCounter returns a counter for the bank's table; days and years are
// those of loc (the bank's time zone; UTC when nil); now is the clock
// (time.Now when nil).
func NewCounter(db *store.DB, table Table, loc *time.Location, now func() time.Time) (*Counter, error) {
	if err := table.Validate(); err != nil {
		return nil, err
	}
	if loc == nil {
		loc = time.UTC
	}
	if now == nil {
		now = time.Now
	}
	return &Counter{db: db, table: table, loc: loc, now: now}, nil
}

// Table is the bank's table.
func (c *Counter) Table() Table { return c.table }

func (c *Counter) periods() (day, year string) {
	t := c.now().In(c.loc)
	return "d:" + t.Format("2006-01-02"), "y:" + t.Format("2006")
}

// Usage returns what the customer moved today and this year.
func (c *Counter) Usage(ctx context.Context, customer string) (Usage, error) {
	day, year := c.periods()
	var u Usage
	rows, err := c.db.Query(ctx, `SELECT period, used FROM limit_usage WHERE customer = ? AND period IN (?, ?)`, customer, day, year)
	if err != nil {
		return u, fmt.Errorf("reading limit usage: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p string
		var n int64
		if err := rows.Scan(&p, &n); err != nil {
			return u, fmt.Errorf("reading limit usage: %w", err)
		}
		if p == day {
			u.Day = n
		} else {
			u.Year = n
		}
	}
	return u, rows.Err()
}

// State is Effective and Usage read by one statement: what a decision
// needs (a round trip less on PostgreSQL, a statement less on SQLite).
func (c *Counter) State(ctx context.Context, customer string) (Table, Usage, error) {
	day, year := c.periods()
	var u Usage
	rows, err := c.db.Query(ctx, `SELECT level, per_txn, per_day, per_year, '' FROM limit_own WHERE customer = ?
		UNION ALL SELECT 0, used, 0, 0, period FROM limit_usage WHERE customer = ? AND period IN (?, ?)`, customer, customer, day, year)
	if err != nil {
		return nil, u, fmt.Errorf("reading limits and usage: %w", err)
	}
	defer rows.Close()
	var own []OwnLimit
	for rows.Next() {
		var o OwnLimit
		var period string
		if err := rows.Scan(&o.Level, &o.PerTxn, &o.PerDay, &o.PerYear, &period); err != nil {
			return nil, u, fmt.Errorf("reading limits and usage: %w", err)
		}
		switch period {
		case "":
			own = append(own, o)
		case day:
			u.Day = o.PerTxn
		default:
			u.Year = o.PerTxn
		}
	}
	if err := rows.Err(); err != nil {
		return nil, u, fmt.Errorf("reading limits and usage: %w", err)
	}
	return c.table.Lower(own), u, nil
}

// Effective is the bank's table lowered by the customer's own limits.
func (c *Counter) Effective(ctx context.Context, customer string) (Table, error) {
	return c.effective(ctx, c.db, customer)
}

func (c *Counter) effective(ctx context.Context, q querier, customer string) (Table, error) {
	rows, err := q.Query(ctx, `SELECT level, per_txn, per_day, per_year FROM limit_own WHERE customer = ?`, customer)
	if err != nil {
		return nil, fmt.Errorf("reading own limits: %w", err)
	}
	defer rows.Close()
	var own []OwnLimit
	for rows.Next() {
		var o OwnLimit
		if err := rows.Scan(&o.Level, &o.PerTxn, &o.PerDay, &o.PerYear); err != nil {
			return nil, fmt.Errorf("reading own limits: %w", err)
		}
		own = append(own, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading own limits: %w", err)
	}
	return c.table.Lower(own), nil
}

// ErrRaise refuses an own limit above the bank's table.
var ErrRaise = errors.New("a customer can lower a limit, not raise it past the bank's")

// SetOwn sets the customer's own limits for one level. Each must be at most
// the bank's limit for that level; setting them to the bank's removes the
// customer's own.
func (c *Counter) SetOwn(ctx context.Context, customer string, l Limit) error {
	bank, ok := c.table.Of(l.Level)
	if !ok {
		return fmt.Errorf("%w: no level %d", ErrConfig, l.Level)
	}
	if l.PerTxn < 0 || l.PerDay < 0 || l.PerYear < 0 {
		return fmt.Errorf("%w: limits must not be negative", ErrConfig)
	}
	if l.PerTxn > bank.PerTxn || l.PerDay > bank.PerDay || l.PerYear > bank.PerYear {
		return fmt.Errorf("%w (level %d allows at most %s yuan per transaction, %s a day, %s a year)", ErrRaise, l.Level, money.Yuan(bank.PerTxn), money.Yuan(bank.PerDay), money.Yuan(bank.PerYear))
	}
	if l.PerTxn > l.PerDay || l.PerDay > l.PerYear {
		return fmt.Errorf("%w: want per-transaction ≤ per-day ≤ per-year", ErrConfig)
	}
	if l == bank {
		_, err := c.db.Exec(ctx, `DELETE FROM limit_own WHERE customer = ? AND level = ?`, customer, l.Level)
		return err
	}
	_, err := c.db.Exec(ctx, `INSERT INTO limit_own (customer, level, per_txn, per_day, per_year, set_ms) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (customer, level) DO UPDATE SET per_txn = excluded.per_txn, per_day = excluded.per_day, per_year = excluded.per_year, set_ms = excluded.set_ms`,
		customer, l.Level, l.PerTxn, l.PerDay, l.PerYear, c.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("saving own limits: %w", err)
	}
	return nil
}

// Count records amount against the customer's day and year under the
// limits of level (the level the customer proved), once per key: counting
// a key again returns counted=false and changes nothing. Over a limit, the
// error is an *ExceededError and nothing is counted. The customer's own
// lower limits apply.
func (c *Counter) Count(ctx context.Context, customer, key string, amount int64, level int) (counted bool, err error) {
	err = c.db.InTx(ctx, func(tx *store.Tx) error {
		counted, err = c.CountTx(ctx, tx, customer, key, amount, level)
		return err
	})
	if err != nil {
		return false, err
	}
	return counted, nil
}

// querier is what DB and Tx both do.
type querier interface {
	Query(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// CountTx is Count inside the caller's transaction tx, so that the count
// commits with what it pays for (a grant) or not at all. On an error the
// caller must roll tx back: the usage of one period may have been
// counted before the other was found full.
func (c *Counter) CountTx(ctx context.Context, tx *store.Tx, customer, key string, amount int64, level int) (counted bool, err error) {
	if amount <= 0 {
		return false, fmt.Errorf("%w: amount must be positive", ErrConfig)
	}
	table, err := c.effective(ctx, tx, customer)
	if err != nil {
		return false, err
	}
	lim, ok := table.Of(level)
	if !ok {
		return false, fmt.Errorf("%w: no level %d", ErrConfig, level)
	}
	if amount > lim.PerTxn {
		return false, &ExceededError{Period: PerTransaction, Level: level, Max: lim.PerTxn, Amount: amount}
	}
	day, year := c.periods()
	res, err := tx.Exec(ctx, `INSERT INTO limit_counts (count_key, customer, amount, day, year, level, state, counted_ms, released_ms)
		VALUES (?, ?, ?, ?, ?, ?, 'counted', ?, 0) ON CONFLICT (count_key) DO NOTHING`,
		key, customer, amount, day, year, level, c.now().UnixMilli())
	if err != nil {
		return false, fmt.Errorf("recording the count: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var who string
		var amt int64
		if err := tx.QueryRow(ctx, `SELECT customer, amount FROM limit_counts WHERE count_key = ?`, key).Scan(&who, &amt); err != nil {
			return false, fmt.Errorf("reading the count: %w", err)
		}
		if who != customer || amt != amount {
			return false, ErrKeyReused
		}
		return false, nil
	}
	exceeded := func(period string, max int64, name Period) error {
		var now int64
		tx.QueryRow(ctx, `SELECT used FROM limit_usage WHERE customer = ? AND period = ?`, customer, period).Scan(&now)
		return &ExceededError{Period: name, Level: level, Max: max, Used: now, Amount: amount}
	}
	switch {
	case amount > lim.PerDay:
		return false, exceeded(day, lim.PerDay, PerDay)
	case amount > lim.PerYear:
		return false, exceeded(year, lim.PerYear, PerYear)
	}
	// Both periods in one guarded upsert: a period's row is created with
	// the amount (which fits, checked above) or raised by it only while
	// it stays within its limit; a period left out of RETURNING is full.
	rows, err := tx.Query(ctx, `INSERT INTO limit_usage (customer, period, used) VALUES (?, ?, ?), (?, ?, ?)
		ON CONFLICT (customer, period) DO UPDATE SET used = limit_usage.used + excluded.used
		WHERE limit_usage.used + excluded.used <= CASE WHEN limit_usage.period = ? THEN CAST(? AS BIGINT) ELSE CAST(? AS BIGINT) END
		RETURNING period`,
		customer, day, amount, customer, year, amount, day, lim.PerDay, lim.PerYear)
	if err != nil {
		return false, fmt.Errorf("counting: %w", err)
	}
	gotDay, gotYear := false, false
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return false, fmt.Errorf("counting: %w", err)
		}
		gotDay, gotYear = gotDay || p == day, gotYear || p == year
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("counting: %w", err)
	}
	switch {
	case !gotDay:
		return false, exceeded(day, lim.PerDay, PerDay)
	case !gotYear:
		return false, exceeded(year, lim.PerYear, PerYear)
	}
	return true, nil
}

// ErrKeyReused refuses a count key already used for another customer or
// amount.
var ErrKeyReused = errors.New("this key was already counted for another movement")

// Release gives back what key counted, once: a cancelled or reversed
// movement. It reports whether anything was given back (false for a key
// never counted or already released).
func (c *Counter) Release(ctx context.Context, key string) (bool, error) {
	released := false
	err := c.db.InTx(ctx, func(tx *store.Tx) error {
		var customer, day, year string
		var amount int64
		err := tx.QueryRow(ctx, `UPDATE limit_counts SET state = 'released', released_ms = ? WHERE count_key = ? AND state = 'counted'
			RETURNING customer, amount, day, year`, c.now().UnixMilli(), key).Scan(&customer, &amount, &day, &year)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("releasing: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE limit_usage SET used = used - ? WHERE customer = ? AND period IN (?, ?)`, amount, customer, day, year); err != nil {
			return fmt.Errorf("releasing: %w", err)
		}
		released = true
		return nil
	})
	return released, err
}
