package orders

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/egate-bank/egate/authsvc/apierr"
	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/internal/store"
)

// Kind says what an order authorizes.
type Kind string

// Kinds of order.
const (
	KindLogin       Kind = "login"
	KindTransaction Kind = "transaction"
	KindEnrol       Kind = "enrol"
)

// State is where an order is.
type State string

// States (see the package doc).
const (
	Pending   State = "pending"
	UserSign  State = "user_sign"
	Complete  State = "complete"
	Failed    State = "failed"
	Cancelled State = "cancelled"
	Expired   State = "expired"
)

// Final reports whether nothing more happens to an order in state s.
func (s State) Final() bool { return s != Pending && s != UserSign }

// Errors. Their messages are safe to show on a page or a device.
var (
	ErrUnknown     = errors.New("no such signing order")
	ErrExpired     = errors.New("the signing order has expired; start again on the page")
	ErrCancelled   = errors.New("the signing order was cancelled; start again on the page")
	ErrDone        = errors.New("the signing order was already signed")
	ErrFailed      = errors.New("the signing order failed; start again on the page")
	ErrInUse       = errors.New("the signing order is already open on another device")
	ErrNotOpen     = errors.New("the signing order was not opened on this device")
	ErrNotComplete = errors.New("the signing order is not signed yet")
	ErrCollected   = errors.New("the signing order's result was already used")
	ErrStaleQR     = errors.New("the QR code is too old: scan the code on the page again")
	ErrBadQR       = errors.New("this is not a QR code of a signing order")
	ErrBadText     = errors.New("the order text is not printable text of at most 1024 bytes")
)

// MaxText bounds the text an order shows (as ushield.MaxTxText).
const MaxText = 1024

// Order is one signing order as stored.
type Order struct {
	Ref         string
	Kind        Kind
	PassportID  string
	Factor      string // the tool asked for
	ChallengeID string // the tool's single-use challenge
	Context     string // the caller's reference
	Text        string // what the customer must see
	Challenge   []byte
	IntentHash  []byte
	Data        []byte // exactly what the device signs
	State       State
	FailCode    string // why a failed order failed (an error code)
	Result      authn.Result
	ResultData  []byte // an enrolment's certificate, for the device
	CreatedAt   time.Time
	ExpiresAt   time.Time
	Collected   bool

	browser, autostartHash, deviceHash string
	qrSecret                           []byte
}

// SignedText is what a device signs for a text and a challenge: the text, a
// newline and "Challenge: " with the challenge in upper-case hex (the same
// bytes as ushield.SignedText).
func SignedText(text string, challenge []byte) []byte {
	return []byte(text + "\nChallenge: " + strings.ToUpper(hex.EncodeToString(challenge)))
}

// SplitSigned splits what SignedText made back into text and challenge.
func SplitSigned(data []byte) (string, []byte, bool) {
	s := string(data)
	i := strings.LastIndex(s, "\nChallenge: ")
	if i < 0 {
		return "", nil, false
	}
	ch, err := hex.DecodeString(s[i+len("\nChallenge: "):])
	if err != nil || len(ch) == 0 || strings.ToUpper(s[i+len("\nChallenge: "):]) != s[i+len("\nChallenge: "):] {
		return "", nil, false
	}
	return s[:i], ch, true
}

func validText(s string) bool {
	if s == "" || len(s) > MaxText || !isUTF8(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 && r != '\n' || r == 0x7f {
			return false
		}
	}
	return true
}

func isUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// BrowserHash is how an order keeps the creating browser's secret (the
// value of a cookie only that browser has): SHA-256, hex.
func BrowserHash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

func hashHex(s string) string { return BrowserHash(s) }

func token() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func newRef() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Verified is what a Verifier found: the tool's result and, for an
// enrolment, what goes back to the device (the certificate issued).
type Verified struct {
	authn.Result
	Data []byte
}

// Verifier checks a device's response to an order with the tool's own
// verification and consumes the tool's challenge (an enrolment: checks the
// CSR and issues the certificate). Its error wraps authn's sentinels.
type Verifier func(ctx context.Context, o *Order, response []byte, clientIP string) (Verified, error)

// Service keeps orders in the database.
type Service struct {
	db     *store.DB
	now    func() time.Time
	verify Verifier
	// QRWindow is how old an animated-QR code may be when a device presents
	// it (3 s by default).
	QRWindow time.Duration
}

// New returns the service; now is the clock (time.Now when nil).
func New(db *store.DB, now func() time.Time, verify Verifier) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{db: db, now: now, verify: verify, QRWindow: 3 * time.Second}
}

// CreateRequest is a new order.
type CreateRequest struct {
	Kind        Kind
	PassportID  string
	Factor      string
	ChallengeID string
	Context     string
	Text        string
	Challenge   []byte
	IntentHash  []byte // required for a transaction
	Browser     string // BrowserHash of the creating browser's secret
	ExpiresAt   time.Time
}

// Create stores a pending order and returns it with the autostart link's
// token (kept hashed; give it to the page that made the order only).
func (s *Service) Create(ctx context.Context, req CreateRequest) (*Order, string, error) {
	now := s.now()
	switch {
	case req.Kind != KindLogin && req.Kind != KindTransaction && req.Kind != KindEnrol:
		return nil, "", fmt.Errorf("signing order: unknown kind %q", req.Kind)
	case !validText(req.Text):
		return nil, "", ErrBadText
	case len(req.Challenge) < 8:
		return nil, "", errors.New("signing order: the challenge must be at least 8 bytes")
	case req.Kind == KindTransaction && len(req.IntentHash) == 0:
		return nil, "", errors.New("signing order: a transaction order needs the intent hash")
	case req.PassportID == "" || req.Factor == "" || req.ChallengeID == "":
		return nil, "", errors.New("signing order: customer, tool and challenge are required")
	case len(req.Browser) != 64:
		return nil, "", errors.New("signing order: the browser binding is required")
	case !req.ExpiresAt.After(now):
		return nil, "", errors.New("signing order: expiry must be in the future")
	}
	auto := token()
	qr := make([]byte, 32)
	rand.Read(qr)
	o := &Order{Ref: newRef(), Kind: req.Kind, PassportID: req.PassportID, Factor: req.Factor, ChallengeID: req.ChallengeID,
		Context: req.Context, Text: req.Text, Challenge: req.Challenge, IntentHash: req.IntentHash,
		Data: SignedText(req.Text, req.Challenge), State: Pending, CreatedAt: time.UnixMilli(now.UnixMilli()),
		ExpiresAt: time.UnixMilli(req.ExpiresAt.UnixMilli()), browser: req.Browser, autostartHash: hashHex(auto), qrSecret: qr}
	_, err := s.db.Exec(ctx, `INSERT INTO sign_orders (ref, kind, passport_id, factor, challenge_id, context, text, challenge, intent_hash, data,
		browser, autostart_hash, qr_secret, state, created_ms, expires_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)`,
		o.Ref, string(o.Kind), o.PassportID, o.Factor, o.ChallengeID, o.Context, o.Text, o.Challenge, o.IntentHash, o.Data,
		o.browser, o.autostartHash, o.qrSecret, o.CreatedAt.UnixMilli(), o.ExpiresAt.UnixMilli())
	if err != nil {
		return nil, "", fmt.Errorf("storing the signing order: %w", err)
	}
	return o, auto, nil
}

// get reads an order; ErrUnknown when there is none.
func (s *Service) get(ctx context.Context, ref string) (*Order, error) {
	if ref == "" || len(ref) > 64 {
		return nil, ErrUnknown
	}
	o := &Order{Ref: ref}
	var kind, state string
	var fail, amr, dev sql.NullString
	var level, confirmed, collected sql.NullInt64
	var created, expires int64
	err := s.db.QueryRow(ctx, `SELECT kind, passport_id, factor, challenge_id, context, text, challenge, intent_hash, data, browser,
		autostart_hash, qr_secret, device_hash, state, fail_code, result_level, result_amr, result_confirmed, result_data, created_ms, expires_ms, collected_ms
		FROM sign_orders WHERE ref = ?`, ref).Scan(&kind, &o.PassportID, &o.Factor, &o.ChallengeID, &o.Context, &o.Text, &o.Challenge,
		&o.IntentHash, &o.Data, &o.browser, &o.autostartHash, &o.qrSecret, &dev, &state, &fail, &level, &amr, &confirmed, &o.ResultData, &created, &expires, &collected)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("reading the signing order: %w", err)
	}
	o.Kind, o.State, o.FailCode, o.deviceHash = Kind(kind), State(state), fail.String, dev.String
	o.CreatedAt, o.ExpiresAt, o.Collected = time.UnixMilli(created), time.UnixMilli(expires), collected.Valid
	if o.State == Complete {
		o.Result = authn.Result{Factor: o.Factor, Level: authn.Level(level.Int64), AMR: amr.String, ConfirmedOnDevice: confirmed.Int64 == 1}
	}
	return o, nil
}

// current reads an order and expires it when its time is up.
func (s *Service) current(ctx context.Context, ref string) (*Order, error) {
	o, err := s.get(ctx, ref)
	if err != nil {
		return nil, err
	}
	now := s.now().UnixMilli()
	if !o.State.Final() && now >= o.ExpiresAt.UnixMilli() {
		if _, err := s.db.Exec(ctx, `UPDATE sign_orders SET state = 'expired', done_ms = ? WHERE ref = ? AND state IN ('pending', 'user_sign') AND expires_ms <= ?`,
			now, ref, now); err != nil {
			return nil, fmt.Errorf("expiring the signing order: %w", err)
		}
		return s.get(ctx, ref)
	}
	return o, nil
}

// stateErr is the error for an order that is not in the state wanted.
func stateErr(o *Order) error {
	switch o.State {
	case Pending:
		return ErrNotOpen
	case UserSign:
		return ErrInUse
	case Complete:
		return ErrDone
	case Failed:
		return ErrFailed
	case Cancelled:
		return ErrCancelled
	case Expired:
		return ErrExpired
	}
	return ErrUnknown
}

func same(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// Collect returns the order for the browser that created it; any other
// browser gets ErrUnknown, as for an order that does not exist.
func (s *Service) Collect(ctx context.Context, ref, browser string) (*Order, error) {
	o, err := s.current(ctx, ref)
	if err != nil {
		return nil, err
	}
	if !same(o.browser, browser) {
		return nil, ErrUnknown
	}
	return o, nil
}

// Finish marks a complete order's result used by its browser, once: the
// login or the transaction goes on only with the first Finish.
func (s *Service) Finish(ctx context.Context, ref, browser string) (*Order, error) {
	o, err := s.Collect(ctx, ref, browser)
	if err != nil {
		return nil, err
	}
	if o.State != Complete {
		if o.State.Final() {
			return o, stateErr(o)
		}
		return o, ErrNotComplete
	}
	res, err := s.db.Exec(ctx, `UPDATE sign_orders SET collected_ms = ? WHERE ref = ? AND browser = ? AND state = 'complete' AND collected_ms IS NULL`,
		s.now().UnixMilli(), ref, browser)
	if err != nil {
		return nil, fmt.Errorf("finishing the signing order: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return o, ErrCollected
	}
	o.Collected = true
	return o, nil
}

// CancelByBrowser cancels a pending or open order for the browser that
// created it.
func (s *Service) CancelByBrowser(ctx context.Context, ref, browser string) error {
	o, err := s.Collect(ctx, ref, browser)
	if err != nil {
		return err
	}
	return s.cancel(ctx, o, "", `browser = ?`, browser)
}

// Reasons a device gives when it cancels an order (kept as the order's
// fail_code; the page shows them).
var DeviceReasons = map[string]string{
	"declined":      "You declined on your device.",
	"token_removed": "The token was removed during the signature.",
	"pin_blocked":   "The token's PIN is blocked.",
	"wrong_pin":     "The token's PIN was wrong.",
	"no_token":      "No token that can answer this order was found.",
}

// CancelByDevice cancels an order opened on the device holding devToken
// (the customer declined, or the token failed); reason is one of
// DeviceReasons ("declined" when empty or unknown).
func (s *Service) CancelByDevice(ctx context.Context, ref, devToken, reason string) error {
	o, err := s.current(ctx, ref)
	if err != nil {
		return err
	}
	if o.deviceHash == "" || !same(o.deviceHash, hashHex(devToken)) {
		return ErrNotOpen
	}
	if _, ok := DeviceReasons[reason]; !ok {
		reason = "declined"
	}
	return s.cancel(ctx, o, reason, `device_hash = ?`, o.deviceHash)
}

func (s *Service) cancel(ctx context.Context, o *Order, reason, cond string, arg string) error {
	if o.State.Final() {
		return stateErr(o)
	}
	res, err := s.db.Exec(ctx, `UPDATE sign_orders SET state = 'cancelled', fail_code = ?, done_ms = ? WHERE ref = ? AND state IN ('pending', 'user_sign') AND `+cond,
		reason, s.now().UnixMilli(), o.Ref, arg)
	if err != nil {
		return fmt.Errorf("cancelling the signing order: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		o2, err := s.get(ctx, o.Ref)
		if err != nil {
			return err
		}
		return stateErr(o2)
	}
	return nil
}

// OpenRequest is how a device reaches an order: by reference with the
// autostart link's token, or by an animated-QR code.
type OpenRequest struct {
	Ref            string
	AutostartToken string
	QR             string
}

// Open moves a pending order to user_sign for one device and returns the
// order with the device's token (for Sign and CancelByDevice).
func (s *Service) Open(ctx context.Context, req OpenRequest) (*Order, string, error) {
	ref := req.Ref
	var qr qrCode
	if req.QR != "" {
		var err error
		if qr, err = parseQR(req.QR); err != nil {
			return nil, "", err
		}
		if ref != "" && ref != qr.ref {
			return nil, "", ErrBadQR
		}
		ref = qr.ref
	}
	o, err := s.current(ctx, ref)
	if err != nil {
		return nil, "", err
	}
	if req.QR != "" {
		if err := s.checkQR(o, qr); err != nil {
			return nil, "", err
		}
	} else if req.AutostartToken == "" || !same(o.autostartHash, hashHex(req.AutostartToken)) {
		// A wrong token tells nothing about the order.
		return nil, "", ErrUnknown
	}
	if o.State != Pending {
		return nil, "", stateErr(o)
	}
	dev := token()
	now := s.now().UnixMilli()
	res, err := s.db.Exec(ctx, `UPDATE sign_orders SET state = 'user_sign', device_hash = ?, opened_ms = ? WHERE ref = ? AND state = 'pending' AND expires_ms > ?`,
		hashHex(dev), now, ref, now)
	if err != nil {
		return nil, "", fmt.Errorf("opening the signing order: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		o, err := s.current(ctx, ref)
		if err != nil {
			return nil, "", err
		}
		return nil, "", stateErr(o)
	}
	o.State, o.deviceHash = UserSign, hashHex(dev)
	return o, dev, nil
}

// Sign checks the device's response with the Verifier and completes the
// order; a refused response fails it (the page then offers a new order).
// Only the device that opened the order may sign, once.
func (s *Service) Sign(ctx context.Context, ref, devToken string, response []byte, clientIP string) (*Order, error) {
	o, err := s.current(ctx, ref)
	if err != nil {
		return nil, err
	}
	if o.deviceHash == "" || !same(o.deviceHash, hashHex(devToken)) {
		if o.State == Pending {
			return nil, ErrNotOpen
		}
		if !o.State.Final() {
			return nil, ErrInUse
		}
		return nil, stateErr(o)
	}
	if o.State != UserSign {
		return nil, stateErr(o)
	}
	res, verr := s.verify(ctx, o, response, clientIP)
	now := s.now().UnixMilli()
	if errors.Is(verr, authn.ErrUnavailable) {
		// Nothing was checked (the HSM or the database failed): the order
		// stays open for the device to try again.
		return nil, verr
	}
	if verr != nil {
		if _, err := s.db.Exec(ctx, `UPDATE sign_orders SET state = 'failed', fail_code = ?, done_ms = ? WHERE ref = ? AND state = 'user_sign' AND device_hash = ?`,
			Code(verr), now, ref, o.deviceHash); err != nil {
			return nil, fmt.Errorf("failing the signing order: %w", err)
		}
		return nil, verr
	}
	confirmed := 0
	if res.ConfirmedOnDevice {
		confirmed = 1
	}
	r, err := s.db.Exec(ctx, `UPDATE sign_orders SET state = 'complete', result_level = ?, result_amr = ?, result_confirmed = ?, result_data = ?, done_ms = ?
		WHERE ref = ? AND state = 'user_sign' AND device_hash = ?`, int(res.Level), res.AMR, confirmed, res.Data, now, ref, o.deviceHash)
	if err != nil {
		return nil, fmt.Errorf("completing the signing order: %w", err)
	}
	if n, _ := r.RowsAffected(); n != 1 {
		o2, err := s.get(ctx, ref)
		if err != nil {
			return nil, err
		}
		return nil, stateErr(o2)
	}
	o.State, o.Result, o.ResultData = Complete, res.Result, res.Data
	o.Result.Factor = o.Factor
	return o, nil
}

// Purge deletes orders that expired before cutoff.
func (s *Service) Purge(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.db.Exec(ctx, `DELETE FROM sign_orders WHERE expires_ms < ?`, cutoff.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("purging signing orders: %w", err)
	}
	return res.RowsAffected()
}

// ownErrors are the orders' own refusals and their codes; a tool's error
// takes its code from the one table (authsvc/apierr).
var ownErrors = []struct {
	e    error
	code string
}{
	{ErrUnknown, "unknown_order"}, {ErrExpired, "order_expired"}, {ErrCancelled, "order_cancelled"}, {ErrDone, "order_done"},
	{ErrFailed, "order_failed"}, {ErrInUse, "order_in_use"}, {ErrNotOpen, "order_not_open"}, {ErrNotComplete, "order_pending"},
	{ErrCollected, "order_collected"}, {ErrStaleQR, "qr_stale"}, {ErrBadQR, "qr_malformed"}, {ErrBadText, "bad_text"},
	{authn.ErrOtherTransaction, "other_transaction"},
}

// Code is the stable error code of an order or tool error.
func Code(err error) string {
	for _, c := range ownErrors {
		if errors.Is(err, c.e) {
			return c.code
		}
	}
	return apierr.Of(err).Name
}

// Message is a message safe to show for err: an order's own sentinel's,
// else the one table's for a tool's error (a lock says until when), never
// a wrapped detail.
func Message(err error) string {
	for _, c := range ownErrors {
		if errors.Is(err, c.e) {
			return c.e.Error()
		}
	}
	if c := apierr.Of(err); c != apierr.Locked {
		return c.Message
	}
	return apierr.Message(err)
}

// MessageForCode is the message of a stored error code (a failed order's
// fail_code).
func MessageForCode(code string) string {
	for _, e := range []error{ErrUnknown, ErrExpired, ErrCancelled, ErrDone, ErrFailed, ErrInUse, ErrNotOpen, ErrNotComplete, ErrCollected,
		ErrStaleQR, ErrBadQR, ErrBadText, authn.ErrWrongAnswer, authn.ErrLocked, authn.ErrExpired, authn.ErrUsed, authn.ErrUnknown,
		authn.ErrNotEnrolled, authn.ErrRevoked, authn.ErrRateLimited, authn.ErrReplay, authn.ErrBadResponse, authn.ErrOtherTransaction, authn.ErrUnavailable,
		apierr.Wrap(apierr.BadAttestation, nil)} {
		if Code(e) == code {
			return e.Error() + "."
		}
	}
	if m, ok := DeviceReasons[code]; ok {
		return m
	}
	return "the signature could not be checked."
}
