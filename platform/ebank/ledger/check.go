package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strconv"

	"github.com/egate-bank/egate/internal/money"
	"github.com/egate-bank/egate/internal/store"
)

// Report is what Check proved: the counts, and the totals in fen that
// balance (debits = credits, posted and pending apart).
type Report struct {
	Accounts  int64
	Transfers int64
	Holds     int64 // holds still pending (not captured or released)

	DebitsPosted, CreditsPosted   int64 // over every account's columns
	DebitsPending, CreditsPending int64
}

// CheckError names the first account (by number) that does not balance,
// or a transfer that names no account.
type CheckError struct {
	Account string // the account number
	Kind    string // its kind, or "" when the account does not exist
	Column  string // debits_posted, credits_posted, debits_pending, credits_pending, or "available" for a negative balance
	Stored  int64  // what the column holds
	Summed  int64  // what the transfers add up to (for "available": 0, the least allowed)
}

func (e *CheckError) Error() string {
	switch {
	case e.Kind == "":
		return fmt.Sprintf("ledger does not balance: transfers post %s yuan to %s, which is not an account", money.Yuan(e.Summed), e.Account)
	case e.Column == "available":
		return fmt.Sprintf("ledger does not balance: %s account %s is below zero: %s yuan available", e.Kind, e.Account, money.Yuan(e.Stored))
	}
	d := e.Stored - e.Summed
	more := "more"
	if d < 0 {
		d, more = -d, "less"
	}
	return fmt.Sprintf("ledger does not balance: %s account %s: %s is %s yuan but its transfers sum to %s yuan (%s yuan %s)",
		e.Kind, e.Account, e.Column, money.Yuan(e.Stored), money.Yuan(e.Summed), money.Yuan(d), more)
}

// Check proves, on one consistent snapshot of the database, that every
// account's four balance columns equal the sums of its transfers (posted:
// posted transfers and captures; pending: holds not yet captured or
// released), that debits equal credits over all accounts, posted and
// pending apart, and that no account that must not go negative has. It
// returns a *CheckError naming the first account by number that fails. It
// only reads.
func Check(ctx context.Context, db *store.DB) (Report, error) {
	var rep Report
	q, done, err := snapshot(ctx, db)
	if err != nil {
		return rep, err
	}
	defer done()

	type sums struct{ dp, cp, dpend, cpend int64 }
	want := map[int64]*sums{}
	get := func(id int64) *sums {
		s := want[id]
		if s == nil {
			s = &sums{}
			want[id] = s
		}
		return s
	}
	grouped := []struct {
		q   string
		add func(s *sums, v int64)
	}{
		{`SELECT debit_account, SUM(amount) FROM ebank_transfers WHERE kind IN ('posted', 'post') GROUP BY debit_account`,
			func(s *sums, v int64) { s.dp += v }},
		{`SELECT credit_account, SUM(amount) FROM ebank_transfers WHERE kind IN ('posted', 'post') GROUP BY credit_account`,
			func(s *sums, v int64) { s.cp += v }},
	}
	for _, g := range grouped {
		rows, err := q(g.q)
		if err != nil {
			return rep, fmt.Errorf("ledger check: summing transfers: %w", err)
		}
		for rows.Next() {
			var id, sum int64
			if err := rows.Scan(&id, &sum); err != nil {
				rows.Close()
				return rep, fmt.Errorf("ledger check: %w", err)
			}
			g.add(get(id), sum)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return rep, fmt.Errorf("ledger check: summing transfers: %w", err)
		}
	}
	// Holds not yet captured or released, through the partial index on
	// pending transfers: few compared with all transfers.
	rows, err := q(`SELECT p.debit_account, p.credit_account, p.amount FROM ebank_transfers p
		WHERE p.kind = 'pending' AND NOT EXISTS (SELECT 1 FROM ebank_transfers r WHERE r.pending_id = p.id)`)
	if err != nil {
		return rep, fmt.Errorf("ledger check: summing holds: %w", err)
	}
	for rows.Next() {
		var d, c, amount int64
		if err := rows.Scan(&d, &c, &amount); err != nil {
			rows.Close()
			return rep, fmt.Errorf("ledger check: %w", err)
		}
		get(d).dpend += amount
		get(c).cpend += amount
		rep.Holds++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("ledger check: summing holds: %w", err)
	}

	rows, err = q(`SELECT id, kind, flags, debits_posted, credits_posted, debits_pending, credits_pending FROM ebank_accounts ORDER BY id`)
	if err != nil {
		return rep, fmt.Errorf("ledger check: reading accounts: %w", err)
	}
	var first *CheckError
	seen := map[int64]bool{}
	for rows.Next() {
		var id, dp, cp, dpend, cpend int64
		var kind string
		var flags int
		if err := rows.Scan(&id, &kind, &flags, &dp, &cp, &dpend, &cpend); err != nil {
			rows.Close()
			return rep, fmt.Errorf("ledger check: %w", err)
		}
		rep.Accounts++
		rep.DebitsPosted += dp
		rep.CreditsPosted += cp
		rep.DebitsPending += dpend
		rep.CreditsPending += cpend
		seen[id] = true
		if first != nil {
			continue
		}
		s := want[id]
		if s == nil {
			s = &sums{}
		}
		num := strconv.FormatInt(id, 10)
		for _, c := range []struct {
			col            string
			stored, summed int64
		}{{"debits_posted", dp, s.dp}, {"credits_posted", cp, s.cp}, {"debits_pending", dpend, s.dpend}, {"credits_pending", cpend, s.cpend}} {
			if c.stored != c.summed {
				first = &CheckError{Account: num, Kind: kind, Column: c.col, Stored: c.stored, Summed: c.summed}
				break
			}
		}
		if first == nil && flags&DebitsMustNotExceedCredits != 0 && dp+dpend > cp {
			first = &CheckError{Account: num, Kind: kind, Column: "available", Stored: cp - dp - dpend}
		}
		if first == nil && flags&CreditsMustNotExceedDebits != 0 && cp+cpend > dp {
			first = &CheckError{Account: num, Kind: kind, Column: "available", Stored: dp - cp - cpend}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("ledger check: reading accounts: %w", err)
	}
	// Transfers naming no account: the first by number, unless an
	// existing account with a smaller number already failed.
	var orphans []int64
	for id := range want {
		if !seen[id] {
			orphans = append(orphans, id)
		}
	}
	sort.Slice(orphans, func(i, j int) bool { return orphans[i] < orphans[j] })
	if len(orphans) > 0 {
		id := orphans[0]
		if first == nil || strconv.FormatInt(id, 10) < first.Account {
			s := want[id]
			first = &CheckError{Account: strconv.FormatInt(id, 10), Summed: s.dp + s.cp + s.dpend + s.cpend}
		}
	}
	if first != nil {
		return rep, first
	}
	if err := q1(q, `SELECT COUNT(*) FROM ebank_transfers`, &rep.Transfers); err != nil {
		return rep, err
	}
	// With every account equal to its transfers these hold by
	// construction; they are checked all the same, against the columns.
	if rep.DebitsPosted != rep.CreditsPosted || rep.DebitsPending != rep.CreditsPending {
		return rep, fmt.Errorf("ledger does not balance: debits %s / credits %s yuan posted, %s / %s pending",
			money.Yuan(rep.DebitsPosted), money.Yuan(rep.CreditsPosted), money.Yuan(rep.DebitsPending), money.Yuan(rep.CreditsPending))
	}
	return rep, nil
}

func q1(q func(string) (*sql.Rows, error), query string, dst *int64) error {
	rows, err := q(query)
	if err != nil {
		return fmt.Errorf("ledger check: %w", err)
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(dst); err != nil {
			return fmt.Errorf("ledger check: %w", err)
		}
	}
	return rows.Err()
}

// snapshot returns a query function over one consistent, read-only view
// of the database: on PostgreSQL a REPEATABLE READ READ ONLY transaction;
// on SQLite a deferred transaction on one of the readers (a WAL read
// snapshot that takes no write lock, so a live server keeps writing, and
// reading, meanwhile).
func snapshot(ctx context.Context, db *store.DB) (func(string) (*sql.Rows, error), func(), error) {
	if db.Driver() == store.Postgres {
		tx, err := db.DB.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
		if err != nil {
			return nil, nil, fmt.Errorf("ledger check: %w", err)
		}
		return func(s string) (*sql.Rows, error) { return tx.QueryContext(ctx, s) }, func() { tx.Rollback() }, nil
	}
	conn, err := db.Reader().Conn(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("ledger check: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `BEGIN DEFERRED`); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("ledger check: %w", err)
	}
	return func(s string) (*sql.Rows, error) { return conn.QueryContext(ctx, s) },
		func() { conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`); conn.Close() }, nil
}
