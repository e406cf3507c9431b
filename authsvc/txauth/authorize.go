package txauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/egate-bank/egate/authsvc/alerts"
	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/limits"
	"github.com/egate-bank/egate/authsvc/risk"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/money"
	"github.com/egate-bank/egate/internal/store"
)

// badIntent turns intent's validation error into the API's.
func badIntent(err error) error {
	var ie *intent.Error
	if errors.As(err, &ie) {
		msg := ie.Msg
		if ie.Field != "" {
			msg = ie.Field + ": " + ie.Msg
		}
		return &Error{Status: http.StatusBadRequest, Code: ie.Code, Msg: msg, Err: err}
	}
	return ErrBadRequest.with(err.Error())
}

// Authorize decides an intent: allow at a level (with the customer's tools
// that reach it), review, or deny, each with reasons. The same intent
// posted again returns the stored decision (Replayed) and counts nothing;
// the same idempotency key with other fields is ErrKeyReused. Bad input
// and a payer account that is not the customer's are refused and nothing
// is stored.
func (s *Service) Authorize(ctx context.Context, in intent.Intent) (txclient.Decision, error) {
	if err := in.Validate(); err != nil {
		return txclient.Decision{}, badIntent(err)
	}
	ctx, err := s.dbCtx(ctx)
	if err != nil {
		return txclient.Decision{}, err
	}
	owns, err := s.accounts.Owns(ctx, in.Customer, in.Payer)
	if err != nil {
		return txclient.Decision{}, unavailable(fmt.Errorf("accounts: %w", err))
	}
	if !owns {
		return txclient.Decision{}, ErrPayer
	}
	hash := in.HashHex()
	// The same intent posted again, or another one under its idempotency
	// key, is found by the insert below (ON CONFLICT on the hash or on
	// customer and key: nothing stored, nothing counted) and answered from
	// what is stored. Not looking first costs a repeated post a decision
	// that is then thrown away, and saves every new intent a statement.
	d, rd, feats, err := s.decide(ctx, in)
	if err != nil {
		return txclient.Decision{}, err
	}
	d.Intent, d.Text, d.DecidedAt = hash, Text(in), s.now().UTC()
	state := map[string]string{txclient.Allow: txclient.StateAllowed, txclient.Review: txclient.StateReview, txclient.Deny: txclient.StateDenied}[d.Decision]
	d.State = state
	body, _ := json.Marshal(in)
	dec, _ := json.Marshal(d)
	now := s.now().UnixMilli()
	fired := make([]string, 0, len(rd.Fired))
	for _, f := range rd.Fired {
		fired = append(fired, f.Rule)
	}
	dry := make([]string, 0, len(rd.DryRun))
	for _, f := range rd.DryRun {
		dry = append(dry, f.Rule)
	}
	// The intent and its audit record in one transaction.
	var after func() error
	stored := false
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(ctx, qInsertIntent, hash, in.Customer, in.IdempotencyKey, string(body), in.Payee, in.Amount, in.Device, d.Decision, d.Level, string(dec), feats, state, now, now)
		if err != nil {
			return fmt.Errorf("storing intent: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // another request stored this hash or this key first
		}
		stored = true
		after, err = s.auditTx(ctx, tx, "tx.authorize", map[string]string{
			"intent": hash, "customer": in.Customer, "channel": string(in.Channel), "kind": string(in.Kind),
			"amount": itoa(in.Amount), "decision": d.Decision, "level": itoa(int64(d.Level)), "base_level": itoa(int64(d.BaseLevel)),
			"rules": strings.Join(fired, ","), "dry_run": strings.Join(dry, ","), "reasons": reasonCodes(d.Reasons),
			"rule_errors": strings.Join(rd.Errors, "; "),
		})
		return err
	})
	var ae *Error
	switch {
	case errors.As(err, &ae):
		return txclient.Decision{}, ae
	case err != nil:
		return txclient.Decision{}, unavailable(err)
	case !stored:
		return s.replay(ctx, hash)
	}
	if err := after(); err != nil {
		return txclient.Decision{}, err
	}
	event := ""
	switch {
	case d.Decision == txclient.Deny:
		event = alerts.TxDenied
	case d.Decision == txclient.Review:
		event = alerts.TxReview
	case d.Level > d.BaseLevel:
		event = alerts.TxStepUp
	}
	if event != "" {
		if err := s.riskAlert(ctx, in, hash, event, d.Message); err != nil {
			return txclient.Decision{}, err
		}
	}
	return d, nil
}

// toolsFor lists the customer's enrolled tools at or above level.
func (s *Service) toolsFor(ctx context.Context, customer string, level int) ([]txclient.Tool, error) {
	out := []txclient.Tool{}
	for _, name := range s.tools.Names() {
		lv, _ := s.tools.Level(name)
		if lv < level {
			continue
		}
		ok, err := s.tools.Enrolled(ctx, customer, name)
		if err != nil {
			return nil, unavailable(err)
		}
		if ok {
			out = append(out, txclient.Tool{Name: name, Level: lv})
		}
	}
	return out, nil
}

// replay returns the stored decision of hash; none means the idempotency
// key was taken by another intent.
func (s *Service) replay(ctx context.Context, hash string) (txclient.Decision, error) {
	r, err := s.load(ctx, hash)
	if err != nil {
		return txclient.Decision{}, err
	}
	if r == nil {
		return txclient.Decision{}, ErrKeyReused
	}
	d := s.view(r)
	d.Replayed = true
	return d, nil
}

func reasonCodes(rs []txclient.Reason) string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		switch r.Code {
		case "rule":
			out = append(out, "rule:"+r.Rule)
		default:
			out = append(out, r.Code+":"+r.Limit+":"+itoa(int64(r.Level)))
		}
	}
	return strings.Join(out, ",")
}

// decide applies the limits and the rules.
func (s *Service) decide(ctx context.Context, in intent.Intent) (txclient.Decision, risk.Decision, string, error) {
	d, rd, f, err := s.decideFeatures(ctx, in)
	feats := "{}"
	if f != nil {
		feats = string(FeaturesJSON(*f))
	}
	return d, rd, feats, err
}

func (s *Service) decideFeatures(ctx context.Context, in intent.Intent) (txclient.Decision, risk.Decision, *risk.Features, error) {
	d := txclient.Decision{Tools: []txclient.Tool{}, Reasons: []txclient.Reason{}}
	table, usage, err := s.counter.State(ctx, in.Customer)
	if err != nil {
		return d, risk.Decision{}, nil, unavailable(err)
	}
	top := table.Top()
	base, err := table.Need(in.Amount, usage)
	var ex *limits.ExceededError
	if errors.As(err, &ex) {
		// No level fits: is it the customer's own lower limit?
		_, bankErr := s.counter.Table().Need(in.Amount, usage)
		own := bankErr == nil
		code := "limit"
		if own {
			code = "own_limit"
		}
		text := limitSentence(ex, own)
		d.Decision = txclient.Deny
		d.Reasons = append(d.Reasons, txclient.Reason{Code: code, Limit: string(ex.Period), Level: ex.Level, Max: ex.Max, Used: ex.Used, Text: text})
		if own {
			d.Message = text + " Raise your own limit (up to the bank's) in your limit settings, or pay a smaller amount."
		} else {
			d.Message = text + " No tool can allow more: pay a smaller amount, or try again " + map[limits.Period]string{limits.PerTransaction: "in several payments", limits.PerDay: "tomorrow", limits.PerYear: "next year"}[ex.Period] + "."
		}
		return d, risk.Decision{}, nil, nil
	}
	if err != nil {
		return d, risk.Decision{}, nil, unavailable(err)
	}
	d.BaseLevel = base
	var limitText string
	if base > 1 {
		var lx *limits.ExceededError
		if errors.As(table.Check(base-1, in.Amount, usage), &lx) && lx.Max > 0 {
			bankRow, _ := s.counter.Table().Of(base - 1)
			own := table[base-2] != bankRow
			code := "limit"
			if own {
				code = "own_limit"
			}
			limitText = limitSentence(lx, own)
			d.Reasons = append(d.Reasons, txclient.Reason{Code: code, Limit: string(lx.Period), Level: lx.Level, Max: lx.Max, Used: lx.Used, Text: limitText})
		}
	}
	f, err := s.Features(ctx, in)
	if err != nil {
		return d, risk.Decision{}, nil, unavailable(err)
	}
	rd := s.risk.Decide(&f, base)
	var ruleTexts []string
	for _, fr := range rd.Fired {
		d.Reasons = append(d.Reasons, txclient.Reason{Code: "rule", Rule: fr.Rule, Action: string(fr.Action), Level: fr.Level, Text: fr.Reason})
		ruleTexts = append(ruleTexts, fr.Reason)
	}
	if len(rd.Errors) > 0 { // the rules' errors themselves go to the audit log
		d.Reasons = append(d.Reasons, txclient.Reason{Code: "rule_error", Text: "A risk rule could not be evaluated; a member of staff checks this payment."})
	}
	switch rd.Action {
	case risk.Deny:
		d.Decision = txclient.Deny
		d.Message = "This payment is refused: " + strings.Join(ruleTexts, " ") + " Call the bank if you have questions."
		return d, rd, &f, nil
	case risk.Review:
		d.Decision, d.Level = txclient.Review, min(rd.Level, top)
		d.Message = "A member of the bank's staff checks this payment before it goes: " + strings.Join(ruleTexts, " ") + " You will be told when it is decided."
		return d, rd, &f, nil
	}
	d.Decision, d.Level = txclient.Allow, min(rd.Level, top)
	if d.Tools, err = s.toolsFor(ctx, in.Customer, d.Level); err != nil {
		return d, rd, &f, err
	}
	var b strings.Builder
	if limitText != "" {
		b.WriteString(limitText + " ")
	}
	for _, t := range ruleTexts {
		b.WriteString(t + " ")
	}
	if len(d.Tools) == 0 {
		fmt.Fprintf(&b, "%s yuan needs %s, and you have none: get one at a branch, or pay a smaller amount.", money.Yuan(in.Amount), reachWords(d.Level, top))
	} else {
		words := make([]string, len(d.Tools))
		for i, t := range d.Tools {
			words[i] = toolWord(t.Name)
		}
		fmt.Fprintf(&b, "Confirm with %s.", orList(words))
	}
	d.Message = b.String()
	return d, rd, &f, nil
}
