// Package sms is the SMS one-time-code factor (level 2). Begin sends a 6-digit
// code to the customer's phone in a message that names what it authorizes
// (the transaction text: amount in yuan, payee tail; see Describe), in
// Chinese for a transaction text in Chinese (BeginRequest.TxLang); the code
// is single use, valid for TTL (5 minutes), and stored only as an HMAC keyed
// by an HSM key (bound to the challenge id), never in clear.
//
// Sending is limited per customer, per phone number and per client IP with
// fixed-window counters in the database (one INSERT … ON CONFLICT DO UPDATE
// … WHERE n < limit RETURNING n each), so replicas together never send more
// than the limits and SMS can't be used for spam or to run up costs. Requests
// without a client IP all count under one key, "ip:unknown". Wrong codes
// count toward a per-customer lockout that lifts after LockFor.
//
// Messages leave through a Gateway: HTTPGateway, an operator's HTTP API, in
// production; Sink, which keeps every message (live codes included) in clear
// in the database for `egate sim sms`, only in development. A send that
// fails retires its challenge. See README.md for the config keys.
package sms

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/challenge"
	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/internal/store"
)

// UnknownIP is the client IP that send limits count a request without one
// under (the key "ip:unknown"): such requests share one per-IP limit.
const UnknownIP = "unknown"

// Name is the factor's name.
const Name = "sms"

// HMACKeyLabel is the HSM key that hashes stored codes.
const HMACKeyLabel = "egate-hmac"

// Message is one SMS.
type Message struct {
	To   string // E.164 or national number
	Body string
}

// Gateway sends SMS (an operator's API in production, Sink in development).
type Gateway interface {
	Send(ctx context.Context, m Message) error
}

// PhoneBook finds a customer's verified mobile number ("" when none).
type PhoneBook interface {
	Phone(ctx context.Context, passportID string) (string, error)
}

// MAC computes the keyed hash of stored codes (devices/hsm.Service.HMAC).
type MAC interface {
	HMAC(ctx context.Context, keyLabel string, msg []byte) ([]byte, error)
}

// KeyMAC is a MAC over an in-memory key, for tests and single-process demos.
type KeyMAC []byte

// HMAC implements MAC.
func (k KeyMAC) HMAC(_ context.Context, _ string, msg []byte) ([]byte, error) {
	m := hmac.New(sha256.New, k)
	m.Write(msg)
	return m.Sum(nil), nil
}

// Config of the factor.
type Config struct {
	BankName    string        // "egate Bank"
	TTL         time.Duration // 5 minutes
	Window      time.Duration // send-limit window: 1 hour
	PerCustomer int           // sends per customer per window: 5
	PerPhone    int           // sends per phone number per window: 5
	PerIP       int           // sends per client IP per window: 20
	MaxAttempts int           // wrong codes before lockout: 5
	LockFor     time.Duration // lockout duration: 30 minutes
}

func (c *Config) defaults() {
	if c.BankName == "" {
		c.BankName = "egate Bank"
	}
	dur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	n := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	dur(&c.TTL, 5*time.Minute)
	dur(&c.Window, time.Hour)
	dur(&c.LockFor, 30*time.Minute)
	n(&c.PerCustomer, 5)
	n(&c.PerPhone, 5)
	n(&c.PerIP, 20)
	n(&c.MaxAttempts, 5)
}

// Service is the SMS factor.
type Service struct {
	db     *store.DB
	gw     Gateway
	phones PhoneBook
	mac    MAC
	ch     *challenge.Store
	now    func() time.Time
	cfg    Config
}

// New returns the factor.
func New(db *store.DB, gw Gateway, phones PhoneBook, mac MAC, cfg Config, now func() time.Time) *Service {
	cfg.defaults()
	if now == nil {
		now = time.Now
	}
	return &Service{db: db, gw: gw, phones: phones, mac: mac, ch: challenge.New(db, now), now: now, cfg: cfg}
}

// Describe is the transaction text an SMS names: the amount in yuan from fen
// and the tail of the payee's account.
func Describe(kind string, amountFen int64, payeeAccount string) string {
	return fmt.Sprintf("%s of CNY %s to account ending %s", kind, Yuan(amountFen), Tail(payeeAccount, 4))
}

// Yuan formats fen as yuan with thousands separators: 123456 → "1,234.56".
func Yuan(fen int64) string {
	neg := fen < 0
	u := uint64(fen)
	if neg {
		u = uint64(-fen)
	}
	whole := strconv.FormatUint(u/100, 10)
	var b strings.Builder
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	s := fmt.Sprintf("%s.%02d", b.String(), u%100)
	if neg {
		return "-" + s
	}
	return s
}

// Tail returns the last n characters of an account number.
func Tail(acct string, n int) string {
	if len(acct) <= n {
		return acct
	}
	return acct[len(acct)-n:]
}

// MaskPhone shows a number as 138****5678.
func MaskPhone(p string) string {
	if len(p) < 8 {
		return "****"
	}
	return p[:3] + "****" + p[len(p)-4:]
}

// Factor returns the authn.Factor.
func (s *Service) Factor() authn.Factor { return factor{s} }

type factor struct{ s *Service }

func (factor) Name() string       { return Name }
func (factor) Level() authn.Level { return 2 }

// CountsOwnFailures: the SMS code's one lockout counter is its own
// (sms_attempts: max-attempts wrong codes, then lock-for), at login and
// for transactions alike (authn.Counted).
func (factor) CountsOwnFailures() bool { return true }

func (f factor) Enrolled(ctx context.Context, passportID string) (bool, error) {
	p, err := f.s.phones.Phone(ctx, passportID)
	if err != nil {
		return false, fmt.Errorf("looking up the phone number: %w", err)
	}
	return p != "", nil
}

// RateError says which send limit was hit and when it resets.
type RateError struct {
	Limit string // "customer", "phone" or "ip"
	Until time.Time
}

func (e *RateError) Error() string {
	return fmt.Sprintf("too many SMS codes requested for this %s; try again after %s", e.Limit, e.Until.UTC().Format(time.RFC3339))
}

func (e *RateError) Unwrap() error { return authn.ErrRateLimited }

// take counts one send against key's window; it fails when the limit is reached.
func (s *Service) take(ctx context.Context, kind, key string, limit int) error {
	w := s.now().Truncate(s.cfg.Window)
	var n int
	err := s.db.QueryRow(ctx, `INSERT INTO sms_rate (k, window_ms, n) VALUES (?, ?, 1)
		ON CONFLICT (k, window_ms) DO UPDATE SET n = sms_rate.n + 1 WHERE sms_rate.n < ?
		RETURNING n`, kind+":"+key, w.UnixMilli(), limit).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return &RateError{Limit: kind, Until: w.Add(s.cfg.Window)}
	}
	if err != nil {
		return fmt.Errorf("counting SMS sends: %w", err)
	}
	return nil
}

func (s *Service) lockedUntil(ctx context.Context, passportID string) (time.Time, error) {
	var n int
	var at int64
	err := s.db.QueryRow(ctx, `SELECT n, updated_ms FROM sms_attempts WHERE passport_id = ?`, passportID).Scan(&n, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("reading SMS failures: %w", err)
	}
	until := time.UnixMilli(at).Add(s.cfg.LockFor)
	if n >= s.cfg.MaxAttempts && s.now().Before(until) {
		return until, nil
	}
	return time.Time{}, nil
}

func (s *Service) codeMAC(ctx context.Context, challengeID, code string) ([]byte, error) {
	m, err := s.mac.HMAC(ctx, HMACKeyLabel, []byte("egate sms "+challengeID+" "+code))
	if err != nil {
		return nil, fmt.Errorf("hashing the SMS code: %w", err)
	}
	return m, nil
}

// MaxTxText bounds the transaction text an SMS names, in characters (not
// bytes: a Chinese character is three bytes of UTF-8 and one character of
// the message).
const MaxTxText = 160

// validTxText: one line of 1 to MaxTxText characters of valid UTF-8.
func validTxText(s string) bool {
	return s != "" && utf8.ValidString(s) && utf8.RuneCountInString(s) <= MaxTxText && !strings.ContainsAny(s, "\r\n")
}

func (f factor) Begin(ctx context.Context, req authn.BeginRequest) (authn.Challenge, error) {
	s := f.s
	var what string
	switch req.Purpose {
	case authn.PurposeLogin:
		what = "log in"
	case authn.PurposeTransaction:
		if !validTxText(req.TxText) || len(req.TxHash) == 0 {
			return authn.Challenge{}, fmt.Errorf("SMS challenge: the transaction text must be one line of at most %d characters", MaxTxText)
		}
		what = "authorize " + req.TxText
	default:
		return authn.Challenge{}, fmt.Errorf("SMS challenge: unknown purpose %q", req.Purpose)
	}
	phone, err := s.phones.Phone(ctx, req.PassportID)
	if err != nil {
		return authn.Challenge{}, fmt.Errorf("looking up the phone number: %w", err)
	}
	if phone == "" {
		return authn.Challenge{}, fmt.Errorf("SMS: %w", authn.ErrNotEnrolled)
	}
	if until, err := s.lockedUntil(ctx, req.PassportID); err != nil {
		return authn.Challenge{}, err
	} else if !until.IsZero() {
		return authn.Challenge{}, &authn.LockedError{Factor: "SMS code", Until: until}
	}
	if err := s.take(ctx, "customer", req.PassportID, s.cfg.PerCustomer); err != nil {
		return authn.Challenge{}, err
	}
	if err := s.take(ctx, "phone", phone, s.cfg.PerPhone); err != nil {
		return authn.Challenge{}, err
	}
	// A request without a client IP still counts: all of them share one key,
	// so a caller that forgets the IP cannot send past the cost limit.
	ip := req.ClientIP
	if ip == "" {
		ip = UnknownIP
	}
	if err := s.take(ctx, "ip", ip, s.cfg.PerIP); err != nil {
		return authn.Challenge{}, err
	}
	n, err := rand.Int(rand.Reader, big.NewInt(1000000))
	if err != nil {
		return authn.Challenge{}, err
	}
	code := fmt.Sprintf("%06d", n.Int64())
	now := s.now()
	rec := &challenge.Record{ID: challenge.NewID(), Factor: Name, PassportID: req.PassportID, Purpose: req.Purpose, TxHash: req.TxHash,
		Ref: phone, CreatedAt: now, ExpiresAt: now.Add(s.cfg.TTL)}
	if rec.Secret, err = s.codeMAC(ctx, rec.ID, code); err != nil {
		return authn.Challenge{}, err
	}
	if err := s.ch.Create(ctx, rec); err != nil {
		return authn.Challenge{}, err
	}
	body := fmt.Sprintf("[%s] %s is your code to %s. Valid %d minutes. Never tell anyone this code, not even bank staff.",
		s.cfg.BankName, code, what, int(s.cfg.TTL.Minutes()))
	if req.Purpose == authn.PurposeTransaction && req.TxLang == intent.LangZH {
		body = fmt.Sprintf("【%s】验证码 %s，用于确认：%s。%d 分钟内有效。请勿将验证码告诉任何人，包括银行工作人员。",
			s.cfg.BankName, code, req.TxText, int(s.cfg.TTL.Minutes()))
	}
	if err := s.gw.Send(ctx, Message{To: phone, Body: body}); err != nil {
		// The operator may have delivered it all the same (a timeout after it
		// took the message): mark the challenge used, so that no code of a
		// send that failed is ever accepted. The customer asks for a new one.
		if cerr := s.ch.Consume(context.WithoutCancel(ctx), Name, req.PassportID, rec.ID); cerr != nil {
			return authn.Challenge{}, fmt.Errorf("sending the SMS to %s: %w (and retiring its challenge: %v)", MaskPhone(phone), err, cerr)
		}
		return authn.Challenge{}, fmt.Errorf("sending the SMS to %s: %w", MaskPhone(phone), err)
	}
	return authn.Challenge{ID: rec.ID, Factor: Name, Prompt: "Code sent to " + MaskPhone(phone), ExpiresAt: rec.ExpiresAt}, nil
}

func (f factor) Verify(ctx context.Context, req authn.VerifyRequest) (authn.Result, error) {
	s := f.s
	code := strings.TrimSpace(string(req.Response))
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		return authn.Result{}, fmt.Errorf("%w: the SMS code has 6 digits", authn.ErrBadResponse)
	}
	rec, err := s.ch.Open(ctx, Name, req)
	if err != nil {
		return authn.Result{}, err
	}
	// Claim the challenge, compare, then settle the outcome on the
	// customer's counter in one statement that first checks the lock. An
	// answer's outcome is told only after it is settled, and no answer
	// settles once the counter is at MaxAttempts, so answers in flight at
	// once (on separate challenges) still get at most MaxAttempts wrong
	// tries between them; and right answers in flight at once are not
	// refused for the others' sake, as they were when an attempt was
	// reserved before the compare.
	if err := s.ch.Consume(ctx, Name, req.PassportID, req.ChallengeID); err != nil {
		return authn.Result{}, err
	}
	release := func() { s.ch.Release(context.WithoutCancel(ctx), Name, req.PassportID, req.ChallengeID) }
	want, err := s.codeMAC(ctx, rec.ID, code)
	if err != nil {
		// The HSM failed: nothing was checked, so nothing is counted and
		// the challenge stays open for the customer to try again.
		release()
		return authn.Result{}, fmt.Errorf("%w: %w", authn.ErrUnavailable, err)
	}
	right := hmac.Equal(want, rec.Secret)
	now := s.now().UnixMilli()
	stale := s.now().Add(-s.cfg.LockFor).UnixMilli()
	// A right answer clears the counter, a wrong one counts (from 1 again
	// once the last failure is older than LockFor).
	first := 1
	if right {
		first = 0
	}
	var n int
	err = s.db.QueryRow(ctx, `INSERT INTO sms_attempts (passport_id, n, updated_ms) VALUES (?, ?, ?)
		ON CONFLICT (passport_id) DO UPDATE SET
		  n = CASE WHEN ? = 0 THEN 0 WHEN sms_attempts.updated_ms < ? THEN 1 ELSE sms_attempts.n + 1 END, updated_ms = ?
		WHERE sms_attempts.n < ? OR sms_attempts.updated_ms < ?
		RETURNING n`, req.PassportID, first, now, first, stale, now, s.cfg.MaxAttempts, stale).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		release()
		until, _ := s.lockedUntil(ctx, req.PassportID)
		return authn.Result{}, &authn.LockedError{Factor: "SMS code", Until: until}
	}
	if err != nil {
		release()
		return authn.Result{}, fmt.Errorf("%w: counting the SMS attempt: %w", authn.ErrUnavailable, err)
	}
	if !right {
		release()
		if n >= s.cfg.MaxAttempts {
			return authn.Result{}, fmt.Errorf("%w; %w", authn.ErrWrongAnswer, &authn.LockedError{Factor: "SMS code", Until: s.now().Add(s.cfg.LockFor)})
		}
		return authn.Result{}, &authn.WrongAnswerError{Tool: "SMS code", Left: s.cfg.MaxAttempts - n}
	}
	return authn.Result{Factor: Name, Level: 2, AMR: "sms"}, nil
}
