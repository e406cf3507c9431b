package txauth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/egate-bank/egate/authsvc/alerts"
	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/risk"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
)

// ReviewItem is an intent waiting for the bank's staff.
type ReviewItem struct {
	Intent   string    `json:"intent"`
	Customer string    `json:"customer"`
	Amount   int64     `json:"amount"`
	Text     string    `json:"text"`
	Level    int       `json:"level"`
	Rules    []string  `json:"rules"`
	Reasons  []string  `json:"reasons"`
	At       time.Time `json:"at"`
}

// ReviewList returns up to limit intents held for review, oldest first.
func (s *Service) ReviewList(ctx context.Context, limit int) ([]ReviewItem, error) {
	rows, err := s.db.Query(ctx, `SELECT `+rowCols+` FROM tx_intents WHERE state = 'review' ORDER BY created_ms, hash LIMIT ?`, limit)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	out := []ReviewItem{}
	for rows.Next() {
		r, err := scanRow(rows.Scan)
		if err != nil {
			return nil, err
		}
		it := ReviewItem{Intent: r.Hash, Customer: r.Customer, Amount: r.Intent.Amount, Text: Text(r.Intent), Level: r.Level, At: time.UnixMilli(r.CreatedMS).UTC(), Rules: []string{}, Reasons: []string{}}
		for _, rs := range r.Decision.Reasons {
			if rs.Rule != "" {
				it.Rules = append(it.Rules, rs.Rule)
			}
			it.Reasons = append(it.Reasons, rs.Text)
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// ErrNotUnderReview refuses a review verdict on an intent not waiting for one.
var ErrNotUnderReview = apiErr(http.StatusConflict, "not_under_review", "this intent is not waiting for review")

// Review records staff's verdict on an intent held for review: approve
// releases it (the customer proves it at the decided level), deny refuses
// it. The verdict is audited with the operator and the customer alerted.
func (s *Service) Review(ctx context.Context, hash string, approve bool, operator, note string) (txclient.Decision, error) {
	if strings.TrimSpace(operator) == "" {
		return txclient.Decision{}, ErrBadRequest.with("name the operator")
	}
	r, err := s.mustLoad(ctx, hash)
	if err != nil {
		return txclient.Decision{}, err
	}
	state, verdict, event := txclient.StateRefused, "deny", alerts.TxRefused
	if approve {
		state, verdict, event = txclient.StateAllowed, "approve", alerts.TxApproved
	}
	res, err := s.db.Exec(ctx, `UPDATE tx_intents SET state = ?, reviewer = ?, review_note = ?, updated_ms = ? WHERE hash = ? AND state = 'review'`,
		state, operator, note, s.now().UnixMilli(), hash)
	if err != nil {
		return txclient.Decision{}, unavailable(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return txclient.Decision{}, ErrNotUnderReview.with(fmt.Sprintf("this intent is %s, not waiting for review", r.State))
	}
	r.State, r.Reviewer, r.ReviewNote = state, operator, note
	fields := map[string]string{"intent": hash, "customer": r.Customer, "verdict": verdict, "note": note}
	if oa, ok := s.audit.(OperatorAuditor); ok {
		if _, err := oa.AppendOperator(ctx, "tx.review", operator, fields); err != nil {
			return txclient.Decision{}, unavailable(fmt.Errorf("audit: %w", err))
		}
	} else {
		fields["operator"] = operator
		if err := s.appendAudit(ctx, "tx.review", fields); err != nil {
			return txclient.Decision{}, err
		}
	}
	d := s.view(r)
	if approve {
		// The customer proves it now: with which of their tools.
		if d.Tools, err = s.toolsFor(ctx, r.Customer, r.Level); err != nil {
			return d, err
		}
	}
	if err := s.riskAlert(ctx, r.Intent, hash, event, d.Message); err != nil {
		return d, err
	}
	return d, nil
}

// Recorded is an intent as it was decided, for running other rules over
// it (egate admin risk test).
type Recorded struct {
	Hash      string
	Intent    intent.Intent
	Features  risk.Features
	BaseLevel int    // the limit table's level; 0 when the limits denied it (no rule ran)
	Decision  string // what was decided then
}

// Recorded returns up to limit recorded intents, newest first.
func (s *Service) Recorded(ctx context.Context, limit int) ([]Recorded, error) {
	rows, err := s.db.Query(ctx, `SELECT hash, body, features, decision FROM tx_intents ORDER BY created_ms DESC, hash LIMIT ?`, limit)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []Recorded
	for rows.Next() {
		var rec Recorded
		var body, feats, dec string
		if err := rows.Scan(&rec.Hash, &body, &feats, &dec); err != nil {
			return nil, err
		}
		var d txclient.Decision
		if err := json.Unmarshal([]byte(body), &rec.Intent); err != nil {
			return nil, fmt.Errorf("intent %s: %w", rec.Hash, err)
		}
		json.Unmarshal([]byte(dec), &d)
		if rec.Features, err = ParseFeatures([]byte(feats)); err != nil {
			return nil, fmt.Errorf("intent %s: %w", rec.Hash, err)
		}
		rec.BaseLevel, rec.Decision = d.BaseLevel, d.Decision
		out = append(out, rec)
	}
	return out, rows.Err()
}
