// Package txauth is the bank's control in the path of every money
// movement: a platform posts an intent (authsvc/intent), egate decides it
// (the limit table by level, authsvc/limits, and the risk rules,
// authsvc/risk, over features read from the database), the customer proves
// it with a tool at or above the level the decision names (a challenge
// bound to the intent's hash, authsvc/factors), and the proof buys a grant:
// an opaque token, stored only as its SHA-256, bound to the intent hash,
// single use and short lived, which the platform consumes in one atomic
// UPDATE just before it executes the movement.
//
// Limits are counted when the proof succeeds, at the level proved, keyed by
// the intent hash (limits.Counter.Count: once per key, atomic across
// replicas); a cancel or a reversal releases them once. The same intent
// posted again (same hash) gets its stored decision and counts nothing;
// the same idempotency key with other fields is refused.
//
// An intent the rules hold for review waits in a queue that the bank's
// staff works through (egate admin risk review); the customer is alerted
// when an intent is denied, stepped up or held, and when staff decide.
//
// Every decision (authorize, challenge, proof, grant, execute, cancel,
// review) is appended to the audit log (authsvc/audit) through Auditor.
//
// Concurrency: a Service is safe for concurrent use and holds no state of
// its own beyond the rule set in force; every decision that must hold
// across replicas is one guarded statement in the database.
package txauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/egate-bank/egate/authsvc/alerts"
	"github.com/egate-bank/egate/authsvc/audit"
	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/jwe"
	"github.com/egate-bank/egate/authsvc/limits"
	"github.com/egate-bank/egate/authsvc/risk"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/store"
)

// Auditor appends one record to the audit log (audit.Log does).
type Auditor interface {
	Append(ctx context.Context, kind string, fields map[string]string) (int64, error)
}

// OperatorAuditor appends a record of a staff action with the operator's
// name (audit.Log does); the review verdicts use it when the Auditor has it.
type OperatorAuditor interface {
	AppendOperator(ctx context.Context, kind, operator string, fields map[string]string) (int64, error)
}

// TxAuditor is an Auditor that can also append inside a transaction of
// the service's database (audit.Log does): the record of a decision then
// commits with the decision or not at all, in one transaction.
type TxAuditor interface {
	AppendTx(ctx context.Context, tx *store.Tx, kind string, fields map[string]string) (int64, error)
	DB() *store.DB
}

// Deps are what New needs besides the config.
type Deps struct {
	DB *store.DB
	// Tools are the customers' authentication tools; nil: none (the
	// operator commands, which review and cancel but prove nothing).
	Tools    Tools
	Accounts Accounts // nil: NewMapAccounts(cfg.Accounts)
	// Risk is the rule engine; nil: one over cfg.RiskRules (the built-in
	// rules when empty).
	Risk   *risk.Engine
	Audit  Auditor        // nil: audit.New(DB)
	Alerts *alerts.Outbox // nil: alerts.New(DB)
	// Encryption opens intents and proofs sent as JWE (encryption.go)
	// with the HSM's transaction-encryption key; nil: none is accepted,
	// and transactions.require-encryption must be empty.
	Encryption *jwe.Opener
	// Orders makes and follows signing orders (orders.go); nil: the
	// signing tools prove through a challenge's answer only.
	Orders Orders
	Now    func() time.Time
}

// Service authorizes transactions.
type Service struct {
	mapAcc   *MapAccounts // the config's accounts, when Deps.Accounts was nil
	cfg      Config
	db       *store.DB
	tools    Tools
	accounts Accounts
	risk     *risk.Engine
	audit    Auditor
	txAudit  TxAuditor // the Auditor when it appends in s.db's transactions; else nil
	alerts   *alerts.Outbox
	counter  *limits.Counter
	loc      *time.Location
	now      func() time.Time
	jwe      *jwe.Opener // nil: no JWE accepted
	orders   Orders      // nil: no signing orders
	jwks     []byte      // its public key, GET /keys/encryption
}

// New returns the service.
func New(cfg Config, d Deps) (*Service, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.DB == nil {
		return nil, fmt.Errorf("%w: a database is required", ErrConfig)
	}
	if d.Tools == nil {
		d.Tools = noTools{}
	}
	loc, _ := time.LoadLocation(cfg.TimeZone)
	if d.Now == nil {
		d.Now = time.Now
	}
	s := &Service{cfg: cfg, db: d.DB, tools: d.Tools, accounts: d.Accounts, risk: d.Risk, audit: d.Audit, alerts: d.Alerts, loc: loc, now: d.Now, orders: d.Orders}
	if err := s.setEncryption(d.Encryption); err != nil {
		return nil, err
	}
	if s.accounts == nil {
		s.mapAcc = NewMapAccounts(cfg.Accounts)
		s.accounts = s.mapAcc
	}
	if s.risk == nil {
		e, err := risk.NewEngine(cfg.RiskRules, risk.Builtin())
		if err != nil {
			return nil, err
		}
		s.risk = e
	}
	if s.audit == nil {
		s.audit = audit.New(d.DB, d.Now)
	}
	if ta, ok := s.audit.(TxAuditor); ok && ta.DB() == d.DB {
		s.txAudit = ta
	}
	if s.alerts == nil {
		s.alerts = alerts.New(d.DB, d.Now)
	}
	var err error
	if s.counter, err = limits.NewCounter(d.DB, cfg.Limits, loc, d.Now); err != nil {
		return nil, err
	}
	return s, nil
}

// Accounts is the in-memory account map made from transactions.accounts
// (egate demo adds its customer's account); nil when Deps.Accounts was
// given.
func (s *Service) Accounts() *MapAccounts { return s.mapAcc }

// Counter is the limit counter (customers' own limits are set through it).
func (s *Service) Counter() *limits.Counter { return s.counter }

// Risk is the rule engine in force.
func (s *Service) Risk() *risk.Engine { return s.risk }

// WatchRules reloads the rule files every reload-interval until ctx ends;
// report (may be nil) hears each reload or refused set.
func (s *Service) WatchRules(ctx context.Context, report func(changed bool, err error)) {
	if len(s.cfg.RiskRules) == 0 {
		return
	}
	s.risk.Watch(ctx, s.cfg.ReloadInterval, report)
}

// row is an intent as stored.
type row struct {
	Hash, Customer, State, Action string
	Intent                        intent.Intent
	Level, ProvedLevel            int
	Decision                      txclient.Decision
	Reviewer, ReviewNote          string
	CreatedMS                     int64
}

const rowCols = `hash, customer, body, state, action, level, decision, proved_level, reviewer, review_note, created_ms`

// rowColsI is rowCols of tx_intents named i in a join.
const rowColsI = `i.hash, i.customer, i.body, i.state, i.action, i.level, i.decision, i.proved_level, i.reviewer, i.review_note, i.created_ms`

func scanRow(sc func(...any) error) (*row, error) {
	return scanRowOf(sc, true)
}

// scanRowOf reads rowCols; without withDecision the stored decision is
// not decoded (row.Decision stays empty): a challenge and a proof need
// the intent and its state only.
func scanRowOf(sc func(...any) error, withDecision bool) (*row, error) {
	var r row
	var body, dec string
	if err := sc(&r.Hash, &r.Customer, &body, &r.State, &r.Action, &r.Level, &dec, &r.ProvedLevel, &r.Reviewer, &r.ReviewNote, &r.CreatedMS); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(body), &r.Intent); err != nil {
		return nil, fmt.Errorf("stored intent %s: %w", r.Hash, err)
	}
	if !withDecision {
		return &r, nil
	}
	if err := json.Unmarshal([]byte(dec), &r.Decision); err != nil {
		return nil, fmt.Errorf("stored decision %s: %w", r.Hash, err)
	}
	r.Decision.State = r.State
	return &r, nil
}

// load reads an intent by hash; nil when there is none.
func (s *Service) load(ctx context.Context, hash string) (*row, error) {
	return s.loadOf(ctx, hash, true)
}

func (s *Service) loadOf(ctx context.Context, hash string, withDecision bool) (*row, error) {
	r, err := scanRowOf(s.db.QueryRow(ctx, `SELECT `+rowCols+` FROM tx_intents WHERE hash = ?`, hash).Scan, withDecision)
	if err != nil {
		if isNoRows(err) {
			return nil, nil
		}
		return nil, unavailable(fmt.Errorf("reading intent: %w", err))
	}
	return r, nil
}

// mustLoad is load with ErrUnknownIntent for none.
func (s *Service) mustLoad(ctx context.Context, hash string) (*row, error) {
	return s.mustLoadOf(ctx, hash, true)
}

// mustLoadIntent is mustLoad without the stored decision (row.Decision
// empty).
func (s *Service) mustLoadIntent(ctx context.Context, hash string) (*row, error) {
	return s.mustLoadOf(ctx, hash, false)
}

func (s *Service) mustLoadOf(ctx context.Context, hash string, withDecision bool) (*row, error) {
	if !validHash(hash) {
		return nil, ErrUnknownIntent.with("the intent id is the 64 hex digits of its hash")
	}
	r, err := s.loadOf(ctx, hash, withDecision)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, ErrUnknownIntent
	}
	return r, nil
}

func validHash(h string) bool {
	b, err := hex.DecodeString(h)
	return err == nil && len(b) == sha256.Size && hex.EncodeToString(b) == h
}

// Get returns an intent's decision and its state now.
func (s *Service) Get(ctx context.Context, hash string) (txclient.Decision, error) {
	r, err := s.mustLoad(ctx, hash)
	if err != nil {
		return txclient.Decision{}, err
	}
	d := s.view(r)
	if r.State == txclient.StateAllowed && r.Action == txclient.Review {
		// Approved after review: the tools were not listed when it was held.
		if d.Tools, err = s.toolsFor(ctx, r.Customer, r.Level); err != nil {
			return d, err
		}
	}
	return d, nil
}

// view is the stored decision with the state and what staff decided.
func (s *Service) view(r *row) txclient.Decision {
	d := r.Decision
	d.State = r.State
	switch r.State {
	case txclient.StateAllowed:
		if r.Action == txclient.Review {
			d.Message = fmt.Sprintf("The bank's staff approved this payment: confirm it with %s.", reachWords(r.Level, s.counter.Table().Top()))
			d.Reasons = append(d.Reasons, txclient.Reason{Code: "review", Action: "approve", Text: "Approved by the bank's staff."})
		}
	case txclient.StateRefused:
		d.Message = "The bank's staff refused this payment. Call the bank if you have questions."
		d.Reasons = append(d.Reasons, txclient.Reason{Code: "review", Action: "deny", Text: "Refused by the bank's staff."})
	}
	return d
}

func (s *Service) appendAudit(ctx context.Context, kind string, fields map[string]string) error {
	if _, err := s.audit.Append(ctx, kind, fields); err != nil {
		return unavailable(fmt.Errorf("audit: %w", err))
	}
	return nil
}

// auditTx appends a record inside tx when the Auditor can (the record
// commits with the state change); otherwise it returns a function that
// appends it after the transaction commits.
func (s *Service) auditTx(ctx context.Context, tx *store.Tx, kind string, fields map[string]string) (after func() error, err error) {
	if s.txAudit == nil {
		return func() error { return s.appendAudit(ctx, kind, fields) }, nil
	}
	if _, err := s.txAudit.AppendTx(ctx, tx, kind, fields); err != nil {
		return nil, unavailable(fmt.Errorf("audit: %w", err))
	}
	return func() error { return nil }, nil
}

// dbCtx is the context of the service's own statements. On SQLite a
// request already over is refused, and otherwise its statements run to
// their end (each is short, on a local file, and bounded by busy_timeout):
// watching a cancellable context costs the SQLite driver and database/sql
// a goroutine each per statement and per transaction, a measurable share of
// a round trip (BenchmarkTxRoundTrip), as authsvc/oath's count-and-load
// found. On PostgreSQL the statements follow the request. The tools (the
// HSM, the SMS gateway) always get the request's own context.
func (s *Service) dbCtx(ctx context.Context) (context.Context, error) {
	if err := ctx.Err(); err != nil {
		return nil, unavailable(err)
	}
	if s.db.Driver() == store.SQLite {
		return context.WithoutCancel(ctx), nil
	}
	return ctx, nil
}

func isNoRows(err error) bool { return errors.Is(err, errNoRows) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
