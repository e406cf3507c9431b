package txauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/challenge"
	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/limits"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/store"
)

// Challenge begins a challenge with one of the customer's tools, at or
// above the level the intent needs, bound to the intent's hash and showing
// its text.
func (s *Service) Challenge(ctx context.Context, hash string, req txclient.ChallengeRequest) (txclient.Challenge, error) {
	dctx, err := s.dbCtx(ctx)
	if err != nil {
		return txclient.Challenge{}, err
	}
	r, err := s.mustLoadIntent(dctx, hash)
	if err != nil {
		return txclient.Challenge{}, err
	}
	if r.State != txclient.StateAllowed {
		return txclient.Challenge{}, stateErr(r.State)
	}
	lv, cerr := s.challengeLevel(req.Factor, r.Level)
	if cerr != nil {
		return txclient.Challenge{}, cerr
	}
	return s.begin(ctx, dctx, hash, r.Intent, lv, req, nil)
}

// challengeLevel is the level factor proves: refused when there is no
// such tool, or it is below the level the intent needs.
func (s *Service) challengeLevel(factor string, need int) (int, *Error) {
	lv, ok := s.tools.Level(factor)
	if !ok {
		return 0, ErrUnknownFactor.with(fmt.Sprintf("factor %q: no such authentication tool here", factor))
	}
	if lv < need {
		return 0, ErrLevelTooLow.with(fmt.Sprintf("%s proves level %d; this payment needs level %d: use %s", factor, lv, need, reachWords(need, s.counter.Table().Top())))
	}
	return lv, nil
}

// begin begins a challenge of req.Factor (proving level lv) for the
// intent in, bound to hash and showing its text, and stores which intent
// and tool it is for (tx_challenges): what POST …/challenge does, and an
// authorize that asks for a challenge. also, when not nil, runs first in
// the transaction that stores the row, given the challenge's id (the
// authorize's intent and its audit record; a repeated authorize's check
// that none is open): its error rolls the challenge back and is returned
// as it is.
func (s *Service) begin(ctx, dctx context.Context, hash string, in intent.Intent, lv int, req txclient.ChallengeRequest, also func(ctx context.Context, tx *store.Tx, id string) error) (txclient.Challenge, error) {
	sum, _ := hex.DecodeString(hash)
	text := Text(in)
	// Which intent and tool the challenge is for is stored in the tool's
	// own transaction (challenge.WithCompanion): one commit, and no crash
	// leaves a tool's challenge without it or it without the challenge.
	// A tool that keeps its challenge elsewhere gets the row after.
	// record stores the row (after also, when given) in tx; also's error
	// is kept apart, to be returned as it is.
	var alsoErr error
	record := func(ctx context.Context, tx *store.Tx, id string) error {
		if also != nil {
			if alsoErr = also(ctx, tx, id); alsoErr != nil {
				return alsoErr
			}
		}
		if _, err := tx.Exec(ctx, qInsertChallenge, id, hash, req.Factor, lv, s.now().UnixMilli()); err != nil {
			return fmt.Errorf("storing the challenge: %w", err)
		}
		return nil
	}
	var stored string
	cctx := challenge.WithCompanion(ctx, func(ctx context.Context, tx *store.Tx, c *challenge.Record) error {
		if tx.DB() != s.db {
			return nil
		}
		if err := record(ctx, tx, c.ID); err != nil {
			return err
		}
		stored = c.ID
		return nil
	})
	ch, err := s.tools.Begin(cctx, req.Factor, authn.BeginRequest{PassportID: in.Customer, Purpose: authn.PurposeTransaction, TxText: text, TxLang: in.Lang, TxHash: sum, ClientIP: req.ClientIP})
	if alsoErr != nil {
		return txclient.Challenge{}, alsoErr
	}
	if err != nil {
		return txclient.Challenge{}, factorErr(err)
	}
	if stored != ch.ID {
		err := s.db.InTx(dctx, func(tx *store.Tx) error { return record(dctx, tx, ch.ID) })
		if alsoErr != nil {
			return txclient.Challenge{}, alsoErr
		}
		if err != nil {
			return txclient.Challenge{}, unavailable(err)
		}
	}
	return txclient.Challenge{ID: ch.ID, Factor: req.Factor, Level: lv, Prompt: ch.Prompt, Data: ch.Data, Text: text, ExpiresAt: ch.ExpiresAt.UTC()}, nil
}

// Proof checks the customer's answer to a challenge of the intent, counts
// the limits at the level proved, and issues the grant. A challenge of
// another intent, a tool below the level, a wrong, expired or used answer
// are refused and nothing is counted; when a concurrent intent took the
// room in the limits, the proof succeeds but no grant is issued and the
// error names the limit.
func (s *Service) Proof(ctx context.Context, hash string, req txclient.ProofRequest) (txclient.Grant, error) {
	if req.Intent != nil {
		if err := req.Intent.Validate(); err != nil {
			return txclient.Grant{}, badIntent(err)
		}
		if req.Intent.HashHex() != hash {
			return txclient.Grant{}, ErrIntentChanged
		}
	}
	dctx, err := s.dbCtx(ctx)
	if err != nil {
		return txclient.Grant{}, err
	}
	// The intent and the challenge named, in one statement; refused in
	// this order: unknown intent, its state, unknown challenge, another
	// intent's challenge, a tool below the level.
	if !validHash(hash) {
		return txclient.Grant{}, ErrUnknownIntent.with("the intent id is the 64 hex digits of its hash")
	}
	var chHash, chFactor sql.NullString
	var chLevel sql.NullInt64
	row := s.db.QueryRow(dctx, `SELECT `+rowColsI+`, c.intent_hash, c.factor, c.level FROM tx_intents i LEFT JOIN tx_challenges c ON c.id = ? WHERE i.hash = ?`, req.ChallengeID, hash)
	r, err := scanRowOf(func(dst ...any) error { return row.Scan(append(dst, &chHash, &chFactor, &chLevel)...) }, false)
	switch {
	case isNoRows(err):
		return txclient.Grant{}, ErrUnknownIntent
	case err != nil:
		return txclient.Grant{}, unavailable(fmt.Errorf("reading intent: %w", err))
	}
	if r.State != txclient.StateAllowed {
		return txclient.Grant{}, stateErr(r.State)
	}
	if req.Order != "" {
		return s.proofByOrder(ctx, r, hash, req)
	}
	if req.ChallengeID == "" || len(req.ChallengeID) > 128 || !chHash.Valid {
		return txclient.Grant{}, ErrUnknownChall
	}
	factor := chFactor.String
	if chHash.String != hash {
		return txclient.Grant{}, ErrChallengeFor
	}
	if int(chLevel.Int64) < r.Level {
		return txclient.Grant{}, ErrLevelTooLow
	}
	sum, _ := hex.DecodeString(hash)
	// The limit count, the grant and its record are committed by the tool
	// with its acceptance of the answer when it can (challenge.WithSettle:
	// the OTP token's replay ledger), else after it, below.
	var (
		settled *issued
		iss     = s.newIssue(r, hash, factor)
	)
	sctx := challenge.WithSettle(ctx, func(ctx context.Context, tx *store.Tx, res authn.Result) error {
		g, err := iss.inTx(ctx, tx, res)
		settled = g
		return err
	})
	res, err := s.tools.VerifyTransaction(sctx, factor, sum, authn.VerifyRequest{PassportID: r.Customer, ChallengeID: req.ChallengeID, Response: []byte(req.Response), ClientIP: req.ClientIP})
	var se *challenge.SettleError
	if errors.As(err, &se) {
		return iss.refused(dctx, se.Err)
	}
	if err == nil && settled != nil {
		return iss.done(settled)
	}
	if err != nil {
		fe := factorErr(err)
		if fe.Code != ErrUnavailable.Code {
			s.db.Exec(dctx, `INSERT INTO tx_failures (customer, at_ms, intent_hash, factor) VALUES (?, ?, ?, ?)`, r.Customer, s.now().UnixMilli(), hash, factor)
			if aerr := s.appendAudit(dctx, "tx.proof", map[string]string{"intent": hash, "customer": r.Customer, "factor": factor, "result": fe.Code}); aerr != nil {
				return txclient.Grant{}, aerr
			}
		}
		return txclient.Grant{}, fe
	}
	return s.issue(ctx, r, hash, factor, res)
}

// issue counts the limits at the level res proved and issues the grant
// (a proof by a challenge's answer or by a signing order) in a
// transaction of its own.
func (s *Service) issue(ctx context.Context, r *row, hash, factor string, res authn.Result) (txclient.Grant, error) {
	ctx, err := s.dbCtx(ctx)
	if err != nil {
		return txclient.Grant{}, err
	}
	iss := s.newIssue(r, hash, factor)
	var g *issued
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		g, err = iss.inTx(ctx, tx, res)
		return err
	})
	if err != nil {
		return iss.refused(ctx, err)
	}
	return iss.done(g)
}

// issuing is one grant being issued for an intent.
type issuing struct {
	s            *Service
	r            *row
	hash, factor string
}

// issued is a grant whose transaction was committed, and the audit append
// left for after it (when the Auditor cannot append in it).
type issued struct {
	grant txclient.Grant
	after func() error
}

func (s *Service) newIssue(r *row, hash, factor string) *issuing {
	return &issuing{s: s, r: r, hash: hash, factor: factor}
}

// inTx counts the limits at the level res proved, moves the intent to
// granted with its grant (one UPDATE of its row) and appends its record,
// in tx: over a limit,
// or on any error, the caller rolls tx back and nothing of it stays.
func (i *issuing) inTx(ctx context.Context, tx *store.Tx, res authn.Result) (*issued, error) {
	s, r, hash, factor := i.s, i.r, i.hash, i.factor
	level := int(res.Level)
	if level < r.Level {
		return nil, ErrLevelTooLow
	}
	var raw [32]byte
	rand.Read(raw[:])
	token := base64.RawURLEncoding.EncodeToString(raw[:])
	now := s.now()
	exp := now.Add(s.cfg.GrantTTL)
	if _, err := s.counter.CountTx(ctx, tx, r.Customer, hash, r.Intent.Amount, level); err != nil {
		return nil, err
	}
	ur, err := tx.Exec(ctx, qGranted, level, factor, tokenHash(token), exp.UnixMilli(), now.UnixMilli(), hash)
	if err != nil {
		return nil, err
	}
	if n, _ := ur.RowsAffected(); n != 1 {
		var st string
		tx.QueryRow(ctx, `SELECT state FROM tx_intents WHERE hash = ?`, hash).Scan(&st)
		return nil, stateErr(st)
	}
	after, err := s.auditTx(ctx, tx, "tx.grant", map[string]string{"intent": hash, "customer": r.Customer, "factor": factor, "level": itoa(int64(level)),
		"amr": res.AMR, "confirmed_on_device": fmt.Sprint(res.ConfirmedOnDevice), "expires_ms": itoa(exp.UnixMilli())})
	if err != nil {
		return nil, err
	}
	return &issued{grant: txclient.Grant{Token: token, Intent: hash, Level: level, Factor: factor, ExpiresAt: exp.UTC()}, after: after}, nil
}

// done is the grant once its transaction is committed.
func (i *issuing) done(g *issued) (txclient.Grant, error) {
	if err := g.after(); err != nil {
		return txclient.Grant{}, err
	}
	return g.grant, nil
}

// refused answers an error of inTx (its transaction rolled back): over a
// limit, the limit's sentence (and the refusal's audit record); a refusal
// of the service as it is; anything else unavailable.
func (i *issuing) refused(ctx context.Context, err error) (txclient.Grant, error) {
	s, r, hash, factor := i.s, i.r, i.hash, i.factor
	var ex *limits.ExceededError
	if errors.As(err, &ex) {
		own := false
		if bank, ok := s.counter.Table().Of(ex.Level); ok {
			own = (ex.Period == limits.PerTransaction && ex.Max < bank.PerTxn) || (ex.Period == limits.PerDay && ex.Max < bank.PerDay) || (ex.Period == limits.PerYear && ex.Max < bank.PerYear)
		}
		msg := limitSentence(ex, own) + " Another payment used the room; nothing was granted."
		if aerr := s.appendAudit(ctx, "tx.proof", map[string]string{"intent": hash, "customer": r.Customer, "factor": factor, "level": itoa(int64(ex.Level)), "result": "limit_exceeded", "limit": string(ex.Period)}); aerr != nil {
			return txclient.Grant{}, aerr
		}
		return txclient.Grant{}, &Error{Status: ErrLimit.Status, Code: ErrLimit.Code, Msg: msg, Err: ex}
	}
	var ae *Error
	if errors.As(err, &ae) {
		return txclient.Grant{}, ae
	}
	return txclient.Grant{}, unavailable(err)
}

const qInsertChallenge = `INSERT INTO tx_challenges (id, intent_hash, factor, level, created_ms) VALUES (?, ?, ?, ?, ?)`

func tokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}
