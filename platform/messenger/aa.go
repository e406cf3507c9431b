package messenger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/egate-bank/egate/internal/store"
)

// States of an AA collection and of its shares.
const (
	AAOpen   = "open"
	AAClosed = "closed"

	ShareDue    = "due"
	SharePaying = "paying" // claimed by a payment under way (its key is the share's)
	SharePaid   = "paid"
	ShareOwn    = "own" // the collector's own share: nothing to pay
)

// AA is an AA collection: the collector splits Total among members of a
// conversation, each pays their share.
type AA struct {
	ID            string
	Conversation  string
	Collector     string
	CollectorName string
	Total         int64
	Memo          string
	State         string
	Shares        []Share
	Created       time.Time
}

// Share is one member's part.
type Share struct {
	Member string
	Name   string
	Amount int64
	State  string
	PaidAt time.Time
}

// Paid is what the members paid so far (the collector's own share not
// counted), and Due what is still to come.
func (a AA) Paid() (paid, due int64) {
	for _, s := range a.Shares {
		switch s.State {
		case SharePaid:
			paid += s.Amount
		case ShareDue, SharePaying:
			due += s.Amount
		}
	}
	return paid, due
}

// ShareOf returns member's share.
func (a AA) ShareOf(member string) (Share, bool) {
	for _, s := range a.Shares {
		if s.Member == member {
			return s, true
		}
	}
	return Share{}, false
}

// Split divides total (fen) among members: with set nil in equal shares,
// the fen that do not divide evenly (total mod n) added to remainderTo's
// share, which must then be one of members; with set, each member's share
// as given, which must add up to total. Every share is above zero.
func Split(total int64, members []string, set map[string]int64, remainderTo string) ([]Share, error) {
	if total <= 0 {
		return nil, ErrBadAmount
	}
	if len(members) == 0 {
		return nil, ErrAANoMembers
	}
	seen := map[string]bool{}
	out := make([]Share, 0, len(members))
	var sum int64
	n := int64(len(members))
	for _, m := range members {
		if seen[m] {
			return nil, ErrBadSplit
		}
		seen[m] = true
		amt := total / n
		if set != nil {
			amt = set[m]
		}
		if amt <= 0 {
			return nil, ErrBadSplit
		}
		sum += amt
		out = append(out, Share{Member: m, Amount: amt})
	}
	if set != nil {
		if sum != total || len(set) != len(members) {
			return nil, ErrBadSplit
		}
		return out, nil
	}
	if rem := total - sum; rem != 0 {
		i := slices.IndexFunc(out, func(s Share) bool { return s.Member == remainderTo })
		if i < 0 {
			return nil, ErrBadSplit
		}
		out[i].Amount += rem
	}
	return out, nil
}

// CreateAA opens an AA collection in conv: the collector and every member
// with a share must be in it; the collector's own share, if any, is
// marked own. It returns the collection's id.
func (s *Store) CreateAA(ctx context.Context, conv, collector string, total int64, memo string, shares []Share) (string, error) {
	memo = strings.TrimSpace(memo)
	if utf8.RuneCountInString(memo) > 60 {
		memo = string([]rune(memo)[:60])
	}
	c, err := s.Get(ctx, conv, collector)
	if err != nil {
		return "", err
	}
	in := map[string]bool{}
	for _, m := range c.Members {
		in[m.ID] = true
	}
	var sum int64
	others := 0
	for _, sh := range shares {
		if !in[sh.Member] || sh.Member == Staff {
			return "", ErrNotPayee
		}
		if sh.Member != collector {
			others++
		}
		sum += sh.Amount
	}
	if others == 0 {
		return "", ErrAANoMembers
	}
	if sum != total {
		return "", ErrBadSplit
	}
	id := newID()
	now := s.now().UnixMilli()
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO msg_aa (id, conversation_id, collector, total, memo, state, created_ms, closed_ms) VALUES (?, ?, ?, ?, ?, ?, ?, 0)`,
			id, conv, collector, total, memo, AAOpen, now); err != nil {
			return err
		}
		for _, sh := range shares {
			st := ShareDue
			if sh.Member == collector {
				st = ShareOwn
			}
			if _, err := tx.Exec(ctx, `INSERT INTO msg_aa_shares (aa_id, member, amount, state, payment_id, paid_ms) VALUES (?, ?, ?, ?, '', 0)`,
				id, sh.Member, sh.Amount, st); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("messenger: opening an AA collection: %w", err)
	}
	return id, nil
}

// AA returns the collection with its shares.
func (s *Store) AA(ctx context.Context, id string) (AA, error) {
	a := AA{ID: id}
	var created int64
	err := s.DB.QueryRow(ctx, `SELECT conversation_id, collector, total, memo, state, created_ms FROM msg_aa WHERE id = ?`, id).
		Scan(&a.Conversation, &a.Collector, &a.Total, &a.Memo, &a.State, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return a, ErrAAUnknown
	}
	if err != nil {
		return a, err
	}
	a.Created = time.UnixMilli(created)
	a.CollectorName = s.Name(ctx, a.Collector)
	rows, err := s.DB.Query(ctx, `SELECT s.member, COALESCE(p.login_name, s.member), s.amount, s.state, s.paid_ms FROM msg_aa_shares s
LEFT JOIN msg_profiles p ON p.passport_id = s.member WHERE s.aa_id = ? ORDER BY p.login_name, s.member`, id)
	if err != nil {
		return a, err
	}
	defer rows.Close()
	for rows.Next() {
		var sh Share
		var paid int64
		if err := rows.Scan(&sh.Member, &sh.Name, &sh.Amount, &sh.State, &paid); err != nil {
			return a, err
		}
		if paid > 0 {
			sh.PaidAt = time.UnixMilli(paid)
		}
		a.Shares = append(a.Shares, sh)
	}
	return a, rows.Err()
}

// CheckPayable says whether member may pay their share now.
func (a AA) CheckPayable(member string) (Share, error) {
	sh, ok := a.ShareOf(member)
	switch {
	case !ok || sh.State == ShareOwn:
		return sh, ErrAANotMember
	case sh.State == SharePaid:
		return sh, ErrAAPaid
	case a.State != AAOpen:
		return sh, ErrAAClosed
	}
	return sh, nil
}

// ClaimShare marks member's share as being paid by the payment key, in one
// guarded statement: only a due share of an open collection (or one this
// same key claimed before, a retry) is claimed; so a share is never paid
// twice, nor after the collection closed.
func (s *Store) ClaimShare(ctx context.Context, aaID, member, key string) error {
	res, err := s.DB.Exec(ctx, `UPDATE msg_aa_shares SET state = 'paying', payment_id = ? WHERE aa_id = ? AND member = ?
AND (state = 'due' OR (state = 'paying' AND payment_id = ?)) AND EXISTS (SELECT 1 FROM msg_aa WHERE id = ? AND state = 'open')`,
		key, aaID, member, key, aaID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	a, err := s.AA(ctx, aaID)
	if err != nil {
		return err
	}
	if _, err := a.CheckPayable(member); err != nil {
		return err
	}
	return ErrAAPaid // paying under another key
}

// FinishShare ends a claim: paid, or back to due when the money did not move.
func (s *Store) FinishShare(ctx context.Context, aaID, member, key string, paid bool) error {
	var err error
	if paid {
		_, err = s.DB.Exec(ctx, `UPDATE msg_aa_shares SET state = 'paid', paid_ms = ? WHERE aa_id = ? AND member = ? AND state = 'paying' AND payment_id = ?`,
			s.now().UnixMilli(), aaID, member, key)
	} else {
		_, err = s.DB.Exec(ctx, `UPDATE msg_aa_shares SET state = 'due', payment_id = '' WHERE aa_id = ? AND member = ? AND state = 'paying' AND payment_id = ?`,
			aaID, member, key)
	}
	return err
}

// CloseAA closes an open collection; only its collector may.
func (s *Store) CloseAA(ctx context.Context, id, by string) error {
	a, err := s.AA(ctx, id)
	if err != nil {
		return err
	}
	if a.Collector != by {
		return ErrAANotCollector
	}
	res, err := s.DB.Exec(ctx, `UPDATE msg_aa SET state = 'closed', closed_ms = ? WHERE id = ? AND state = 'open'`, s.now().UnixMilli(), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrAAClosed
	}
	return nil
}
