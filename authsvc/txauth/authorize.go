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
	return s.AuthorizeWith(ctx, in, nil)
}

// AuthorizeWith is Authorize that, given ch, also begins the challenge ch
// names when the decision is allow and its tool reaches the level: the
// challenge of POST …/challenge (begin), committed in one transaction with
// the intent and its audit record when the tool stores its challenge in
// the service's database (challenge.WithCompanion), and returned in
// Decision.Challenge. When the tool is unknown, below the level, or the
// customer's is missing or locked, the decision is returned all the same
// with Decision.ChallengeError, the refusal POST …/challenge would answer;
// review and deny begin nothing. A repeated authorize (Replayed) begins a
// challenge only when none of the intent's is still open (otherwise
// ErrChallengeOpen as the ChallengeError), so that a retried call never
// leaves the customer two codes to tell apart.
func (s *Service) AuthorizeWith(ctx context.Context, in intent.Intent, ch *txclient.ChallengeRequest) (txclient.Decision, error) {
	if err := in.Validate(); err != nil {
		return txclient.Decision{}, badIntent(err)
	}
	dctx, err := s.dbCtx(ctx)
	if err != nil {
		return txclient.Decision{}, err
	}
	owns, err := s.accounts.Owns(dctx, in.Customer, in.Payer)
	if err != nil {
		return txclient.Decision{}, unavailable(fmt.Errorf("accounts: %w", err))
	}
	if !owns {
		return txclient.Decision{}, ErrPayer
	}
	hash := in.HashHex()
	if ch != nil {
		// A repeat that asks for a challenge is looked up first (by the
		// customer's key: the same intent, or another under its key), so
		// that it is answered without a decision and without beginning the
		// tool's challenge only to roll it back: a tool may spend what a
		// rollback does not give back (an SMS send counted against the
		// customer's hourly sends). Repeats arriving at once may all miss
		// it; the insert below still finds them.
		var stored string
		err := s.db.QueryRow(dctx, `SELECT hash FROM tx_intents WHERE customer = ? AND idem_key = ?`, in.Customer, in.IdempotencyKey).Scan(&stored)
		switch {
		case err == nil:
			return s.replay(ctx, dctx, hash, ch)
		case !isNoRows(err):
			return txclient.Decision{}, unavailable(fmt.Errorf("reading intent: %w", err))
		}
	}
	// The same intent posted again, or another one under its idempotency
	// key, is found by the insert below (ON CONFLICT on the hash or on
	// customer and key: nothing stored, nothing counted) and answered from
	// what is stored. Not looking first costs a repeated post a decision
	// that is then thrown away, and saves every new intent a statement.
	d, rd, feats, err := s.decide(dctx, in)
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
	// The intent and its audit record in one transaction (with the
	// challenge's, when one is begun).
	var after func() error
	stored := false
	insert := func(ctx context.Context, tx *store.Tx) error {
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
	}
	committed := false
	if ch != nil && d.Decision != txclient.Allow {
		d.ChallengeError = challengeNote(stateErr(state))
	}
	if ch != nil && d.Decision == txclient.Allow {
		c, cerr := s.beginWithIntent(ctx, dctx, hash, in, d.Level, *ch, insert, &stored)
		switch {
		case cerr == nil:
			d.Challenge, committed = &c, true
		case errors.Is(cerr, errReplayed):
			return s.replay(ctx, dctx, hash, ch)
		default:
			var ae *Error
			if !errors.As(cerr, &ae) {
				ae = unavailable(cerr)
			}
			d.ChallengeError = challengeNote(ae)
			committed = stored // the intent's transaction committed before the tool failed (an SMS not sent)
		}
	}
	if !committed {
		stored = false
		err = s.db.InTx(dctx, func(tx *store.Tx) error { return insert(dctx, tx) })
		var ae *Error
		switch {
		case errors.As(err, &ae):
			return txclient.Decision{}, ae
		case err != nil:
			return txclient.Decision{}, unavailable(err)
		case !stored:
			return s.replay(ctx, dctx, hash, ch)
		}
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
		if err := s.riskAlert(dctx, in, hash, event, d.Message); err != nil {
			return txclient.Decision{}, err
		}
	}
	return d, nil
}

// errReplayed rolls back a challenge begun with an intent that another
// request stored first (the same intent again, or its key).
var errReplayed = errors.New("the intent was stored by another request")

// beginWithIntent begins the challenge ch for a new intent, the intent
// stored by insert in the challenge's transaction (errReplayed, and no
// challenge, when another request stored it first). On an error it
// reports in *stored whether the intent's transaction committed all the
// same (a tool that failed after storing its challenge).
func (s *Service) beginWithIntent(ctx, dctx context.Context, hash string, in intent.Intent, level int, ch txclient.ChallengeRequest, insert func(context.Context, *store.Tx) error, stored *bool) (txclient.Challenge, error) {
	lv, cerr := s.challengeLevel(ch.Factor, level)
	if cerr != nil {
		return txclient.Challenge{}, cerr
	}
	var id string
	c, err := s.begin(ctx, dctx, hash, in, lv, ch, func(ctx context.Context, tx *store.Tx, chID string) error {
		if err := insert(ctx, tx); err != nil {
			return err
		}
		if !*stored {
			return errReplayed
		}
		id = chID
		return nil
	})
	if err == nil || errors.Is(err, errReplayed) || !*stored {
		return c, err
	}
	// Did the transaction that stored the intent commit? Its challenge's
	// row says so.
	var n int
	if qerr := s.db.QueryRow(dctx, `SELECT COUNT(*) FROM tx_challenges WHERE id = ?`, id).Scan(&n); qerr != nil {
		*stored = false // the caller's insert finds out
		return c, err
	}
	*stored = n == 1
	return c, err
}

// challengeNote is a refusal of beginning a challenge as a decision
// carries it.
func challengeNote(e *Error) *txclient.ChallengeError {
	return &txclient.ChallengeError{Status: e.Status, Code: e.Code, Message: e.Msg}
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
// key was taken by another intent. Given ch (a repeated authorize that
// asks for a challenge), it begins one when the intent is allowed and none
// of its challenges is still open; otherwise the decision carries why not.
func (s *Service) replay(ctx, dctx context.Context, hash string, ch *txclient.ChallengeRequest) (txclient.Decision, error) {
	r, err := s.load(dctx, hash)
	if err != nil {
		return txclient.Decision{}, err
	}
	if r == nil {
		return txclient.Decision{}, ErrKeyReused
	}
	d := s.view(r)
	d.Replayed = true
	if ch == nil {
		return d, nil
	}
	if r.State != txclient.StateAllowed {
		d.ChallengeError = challengeNote(stateErr(r.State))
		return d, nil
	}
	lv, cerr := s.challengeLevel(ch.Factor, r.Level)
	if cerr != nil {
		d.ChallengeError = challengeNote(cerr)
		return d, nil
	}
	c, err := s.begin(ctx, dctx, hash, r.Intent, lv, *ch, func(ctx context.Context, tx *store.Tx, _ string) error {
		return s.noneOpen(ctx, tx, hash)
	})
	var ae *Error
	switch {
	case err == nil:
		d.Challenge = &c
	case errors.As(err, &ae):
		d.ChallengeError = challengeNote(ae)
	default:
		d.ChallengeError = challengeNote(unavailable(err))
	}
	return d, nil
}

// noneOpen refuses (ErrChallengeOpen) when a challenge of the intent is
// still open: unused and unexpired. The intent's row is written first, so
// that on PostgreSQL a concurrent repeat waits for this transaction and
// then sees its challenge (on SQLite the writer is one already).
func (s *Service) noneOpen(ctx context.Context, tx *store.Tx, hash string) error {
	if _, err := tx.Exec(ctx, `UPDATE tx_intents SET updated_ms = updated_ms WHERE hash = ?`, hash); err != nil {
		return err
	}
	var n int
	err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM tx_challenges c JOIN auth_challenges a ON a.id = c.id
		WHERE c.intent_hash = ? AND a.used_ms IS NULL AND a.expires_ms > ?`, hash, s.now().UnixMilli()).Scan(&n)
	if err != nil {
		return err
	}
	if n > 0 {
		return ErrChallengeOpen
	}
	return nil
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
