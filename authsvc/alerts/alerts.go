// Package alerts is the outbox of customer alerts (login, failed-login and
// lockout alerts, risk alerts about transactions and balance-change alerts). Producers post inside their own request;
// consumers (the messenger inbox, the SMS sink) read what they have not yet
// acknowledged, each on its own, so one slow consumer never holds back
// another and an alert committed late by another replica is never skipped.
package alerts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/egate-bank/egate/internal/store"
)

// Kinds of alerts.
const (
	KindLogin       = "login"
	KindLoginFailed = "login_failed" // body LoginFailed; coalesced, see PostLoginFailed
	KindLocked      = "login_locked" // body Locked
	KindBalance     = "balance"      // body Balance
	KindTxRisk      = "tx_risk"      // body TxRisk
	KindTool        = "tool"         // body Tool: a tool reported lost or bound by the customer
)

// Tool is the body of a KindTool alert: the customer changed their tools
// (self-service), so that a change they did not make is seen at once.
type Tool struct {
	Time  time.Time `json:"time"`
	Event string    `json:"event"` // "lost", "bound" or "set" (the withdrawal PIN)
	Tool  string    `json:"tool"`  // the factor: otp, gridcard, ushield, piv, phone, atm-pin
	Ref   string    `json:"ref"`   // the tool's serial, shortened
	IP    string    `json:"ip,omitempty"`
}

// Events of a TxRisk alert.
const (
	TxDenied   = "denied"   // refused when authorized
	TxStepUp   = "step_up"  // the risk rules asked for a stronger tool
	TxReview   = "review"   // held for the bank's staff
	TxApproved = "approved" // staff let it go
	TxRefused  = "refused"  // staff refused it
)

// TxRisk is the body of a risk alert about one intent (authsvc/txauth).
type TxRisk struct {
	Time    time.Time `json:"time"`
	Intent  string    `json:"intent"` // the intent's hash
	Event   string    `json:"event"`  // denied, step_up, review, approved, refused
	Amount  int64     `json:"amount"` // fen
	Text    string    `json:"text"`   // "Pay 1,234.56 yuan to 6222…0002 from 6222…0001"
	Message string    `json:"message"`
	// SMS: the customer's preferences send this alert by SMS too.
	SMS bool `json:"sms"`
}

// Balance is the body of a balance-change alert, posted by a platform after
// it executed a movement.
type Balance struct {
	Time        time.Time `json:"time"`
	Account     string    `json:"account"` // masked: 6222…0001
	Amount      int64     `json:"amount"`  // fen, negative for money out
	Balance     int64     `json:"balance"` // fen, after
	Currency    string    `json:"currency"`
	Description string    `json:"description,omitempty"`
	SMS         bool      `json:"sms"`
}

// Consumers known today.
const (
	ConsumerMessenger = "messenger"
	ConsumerSMS       = "sms"
)

// Login is the body of a login alert.
type Login struct {
	Time   time.Time `json:"time"`
	Client string    `json:"client"` // the platform: ebank, mall, messenger
	Device string    `json:"device"` // the browser's User-Agent, trimmed
	IP     string    `json:"ip"`
	Level  int       `json:"level"`
	SSO    bool      `json:"sso"` // true when no password was asked
	// StepUp: a stronger tool inside an existing passport session (the
	// password was not asked again).
	StepUp bool `json:"step_up,omitempty"`
}

// LoginFailed is the body of a failed-login alert: a wrong password (or a
// second factor's wrong answer) for a real customer. It describes the
// first failure of its coalescing window.
type LoginFailed struct {
	Time   time.Time `json:"time"`
	Client string    `json:"client"`
	Device string    `json:"device"`
	IP     string    `json:"ip"`
	Factor string    `json:"factor"` // "password" or the tool's name
	// Remaining attempts today after this failure before the tool locks.
	Remaining int `json:"remaining"`
}

// Locked is the body of a lockout alert: a tool locked after too many
// failures.
type Locked struct {
	Time   time.Time `json:"time"`
	Client string    `json:"client"`
	Device string    `json:"device"`
	IP     string    `json:"ip"`
	Factor string    `json:"factor"`
	// Until is when the lock ends by itself (zero: only the service desk).
	Until time.Time `json:"until,omitzero"`
}

// Alert is one outbox entry.
type Alert struct {
	ID         string
	PassportID string
	Kind       string
	At         time.Time
	Body       json.RawMessage
}

// Outbox posts and reads alerts.
type Outbox struct {
	db  *store.DB
	now func() time.Time
}

// New returns the outbox over db.
func New(db *store.DB, now func() time.Time) *Outbox {
	if now == nil {
		now = time.Now
	}
	return &Outbox{db: db, now: now}
}

// Post stores an alert and returns its id.
func (o *Outbox) Post(ctx context.Context, passportID, kind string, body any) (string, error) {
	id, _, err := o.PostOnce(ctx, passportID, kind, "", body)
	return id, err
}

// PostOnce stores an alert unless one with the same once key was stored
// before (any replica: one unique index decides); posted reports whether
// this call stored it. An empty key is never coalesced.
func (o *Outbox) PostOnce(ctx context.Context, passportID, kind, onceKey string, body any) (id string, posted bool, err error) {
	b, err := json.Marshal(body)
	if err != nil {
		return "", false, fmt.Errorf("encoding alert: %w", err)
	}
	at := o.now()
	var rnd [6]byte
	rand.Read(rnd[:])
	// Time first so ids sort roughly by time; the random tail keeps
	// replicas apart.
	id = fmt.Sprintf("%016x", at.UnixNano()) + hex.EncodeToString(rnd[:])
	var key any
	if onceKey != "" {
		key = onceKey
	}
	res, err := o.db.Exec(ctx, `INSERT INTO alerts_outbox (id, passport_id, kind, at_ms, body, once_key) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		id, passportID, kind, at.UnixMilli(), string(b), key)
	if err != nil {
		return "", false, fmt.Errorf("posting alert: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return "", false, err
	}
	return id, true, nil
}

// PostLoginFailed posts a failed-login alert for a real customer, at most
// one per customer per clock hour (UTC): a guesser who tries many
// passwords, or many times, gets the customer one inbox entry and one SMS
// an hour, not one each. posted is false when the hour already had one.
// The lockout that may follow is posted apart (PostLocked), so it is never
// swallowed by this coalescing.
func (o *Outbox) PostLoginFailed(ctx context.Context, passportID string, f LoginFailed) (posted bool, err error) {
	_, posted, err = o.PostOnce(ctx, passportID, KindLoginFailed, FailedLoginKey(passportID, o.now()), f)
	return posted, err
}

// FailedLoginKey is the once key of a customer's failed-login alert at t.
func FailedLoginKey(passportID string, t time.Time) string {
	return KindLoginFailed + ":" + passportID + ":" + t.UTC().Format("2006-01-02T15")
}

// PostLocked posts a lockout alert. The passport reports a lock once, by
// the attempt that takes the last slot, so there is one alert per lock
// (and a new one only after an unlock or a new day let it lock again).
func (o *Outbox) PostLocked(ctx context.Context, passportID string, l Locked) error {
	_, err := o.Post(ctx, passportID, KindLocked, l)
	return err
}

func scan(rowsErr func() error, next func() bool, sc func(...any) error) ([]Alert, error) {
	var out []Alert
	for next() {
		var a Alert
		var at int64
		var body string
		if err := sc(&a.ID, &a.PassportID, &a.Kind, &at, &body); err != nil {
			return nil, err
		}
		a.At, a.Body = time.UnixMilli(at), json.RawMessage(body)
		out = append(out, a)
	}
	return out, rowsErr()
}

// Pending returns up to limit alerts consumer has not acknowledged, oldest
// first.
func (o *Outbox) Pending(ctx context.Context, consumer string, limit int) ([]Alert, error) {
	rows, err := o.db.Query(ctx, `SELECT a.id, a.passport_id, a.kind, a.at_ms, a.body FROM alerts_outbox a
		WHERE NOT EXISTS (SELECT 1 FROM alerts_delivered d WHERE d.alert_id = a.id AND d.consumer = ?)
		ORDER BY a.at_ms, a.id LIMIT ?`, consumer, limit)
	if err != nil {
		return nil, fmt.Errorf("reading alerts: %w", err)
	}
	defer rows.Close()
	return scan(rows.Err, rows.Next, rows.Scan)
}

// Ack marks an alert delivered by consumer. Acknowledging twice is harmless.
func (o *Outbox) Ack(ctx context.Context, consumer, id string) error {
	_, err := o.db.Exec(ctx, `INSERT INTO alerts_delivered (alert_id, consumer, at_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		id, consumer, o.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("acknowledging alert: %w", err)
	}
	return nil
}

// ForCustomer returns a customer's latest alerts, newest first (the
// messenger inbox shows these).
func (o *Outbox) ForCustomer(ctx context.Context, passportID string, limit int) ([]Alert, error) {
	rows, err := o.db.Query(ctx, `SELECT id, passport_id, kind, at_ms, body FROM alerts_outbox WHERE passport_id = ? ORDER BY at_ms DESC, id DESC LIMIT ?`, passportID, limit)
	if err != nil {
		return nil, fmt.Errorf("reading alerts: %w", err)
	}
	defer rows.Close()
	return scan(rows.Err, rows.Next, rows.Scan)
}
