// Package phone is the bank's phone app as an authentication tool: a device
// key made in the app, which never leaves it, bound to the customer once
// (password and an SMS code), then a level-3 tool (factor "phone", amr
// "swk") that answers signing orders by scanning the page's animated QR
// (authsvc/orders).
//
// The app PIN protects the key's use. The app derives a PIN key from the
// PIN (argon2id over the PIN and the binding's salt) and, with every
// signature, an HMAC under it over the signed bytes; the binding keeps the
// PIN key, so a wrong PIN is refused here and counted with the passport's
// per-factor lockout, like every other tool's wrong answer. The signature
// (ECDSA P-256 over SHA-256 of exactly the order's data) proves the device.
//
// The proof (the order's response) is "EGPH1" followed by JSON:
// {"device": id, "sig": base64 DER signature, "pin": base64 HMAC-SHA-256}.
package phone

import (
	"context"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/challenge"
	"github.com/egate-bank/egate/authsvc/ushield"
	"github.com/egate-bank/egate/internal/store"
)

// Name is the factor's name.
const Name = "phone"

// Errors beyond authn's.
var (
	ErrWrongPIN = errors.New("the app PIN is wrong")
	ErrBadKey   = errors.New("the device key is not an ECDSA P-256 public key")
)

// Service keeps phone bindings and verifies their proofs.
type Service struct {
	db  *store.DB
	ch  *challenge.Store
	now func() time.Time
	TTL time.Duration // challenge lifetime [2m]
}

// New returns the service.
func New(db *store.DB, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{db: db, ch: challenge.New(db, now), now: now, TTL: 2 * time.Minute}
}

// PINKey is what the app derives from its PIN (argon2id, 64 MiB, 1 pass).
func PINKey(pin, salt []byte) []byte {
	return argon2.IDKey(pin, salt, 1, 64*1024, 1, 32)
}

// PINMAC is the app's proof of the PIN over the signed bytes.
func PINMAC(pinKey, data []byte) []byte {
	m := hmac.New(sha256.New, pinKey)
	m.Write([]byte("egate-phone-pin\x00"))
	m.Write(data)
	return m.Sum(nil)
}

// Device is a bound phone.
type Device struct {
	ID, PassportID, Label string
	PublicKey             *ecdsa.PublicKey
	Revoked               bool
	BoundAt               time.Time
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Bind records a phone for passportID: its device key (PKIX DER) and its
// PIN key (the app sent PINKey(pin, salt) once, at binding).
func (s *Service) Bind(ctx context.Context, passportID string, pubDER, pinSalt, pinKey []byte, label string) (*Device, error) {
	pub, err := x509.ParsePKIXPublicKey(pubDER)
	k, ok := pub.(*ecdsa.PublicKey)
	if err != nil || !ok || k.Curve.Params().Name != "P-256" {
		return nil, ErrBadKey
	}
	if len(pinKey) != 32 || len(pinSalt) < 16 {
		return nil, errors.New("phone binding: PIN key of 32 bytes and salt of at least 16 required")
	}
	if label == "" || len(label) > 64 {
		label = "phone"
	}
	d := &Device{ID: newID(), PassportID: passportID, Label: label, PublicKey: k}
	_, err = s.db.Exec(ctx, `INSERT INTO phone_devices (device_id, passport_id, public_key, pin_salt, pin_key, label, status, bound_ms)
		VALUES (?, ?, ?, ?, ?, ?, 'active', ?)`, d.ID, passportID, pubDER, pinSalt, pinKey, label, s.now().UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("binding the phone: %w", err)
	}
	return d, nil
}

// Revoke ends a binding; the device's next proof is refused.
func (s *Service) Revoke(ctx context.Context, passportID, deviceID string) error {
	res, err := s.db.Exec(ctx, `UPDATE phone_devices SET status = 'revoked', revoked_ms = ? WHERE device_id = ? AND passport_id = ? AND status = 'active'`,
		s.now().UnixMilli(), deviceID, passportID)
	if err != nil {
		return fmt.Errorf("revoking the phone: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("phone %s: %w", deviceID, authn.ErrNotEnrolled)
	}
	return nil
}

// Devices lists the customer's phones.
func (s *Service) Devices(ctx context.Context, passportID string) ([]Device, error) {
	rows, err := s.db.Query(ctx, `SELECT device_id, label, status, bound_ms FROM phone_devices WHERE passport_id = ? ORDER BY bound_ms`, passportID)
	if err != nil {
		return nil, fmt.Errorf("listing phones: %w", err)
	}
	defer rows.Close()
	var out []Device
	for rows.Next() {
		d := Device{PassportID: passportID}
		var st string
		var bound int64
		if err := rows.Scan(&d.ID, &d.Label, &st, &bound); err != nil {
			return nil, err
		}
		d.Revoked, d.BoundAt = st != "active", time.UnixMilli(bound)
		out = append(out, d)
	}
	return out, rows.Err()
}

// Proof is a phone's answer.
type Proof struct {
	Device string `json:"device"`
	Sig    []byte `json:"sig"`
	PIN    []byte `json:"pin"`
}

const proofMagic = "EGPH1"

// Encode returns the proof's bytes.
func (p Proof) Encode() []byte {
	b, _ := json.Marshal(p)
	return append([]byte(proofMagic), b...)
}

// DecodeProof parses a proof strictly.
func DecodeProof(b []byte) (Proof, error) {
	var p Proof
	if len(b) > 4096 || !strings.HasPrefix(string(b), proofMagic) {
		return p, errors.New("not an EGPH1 phone proof")
	}
	dec := json.NewDecoder(strings.NewReader(string(b[len(proofMagic):])))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || p.Device == "" || len(p.Sig) == 0 || len(p.PIN) != 32 {
		return Proof{}, errors.New("malformed EGPH1 phone proof")
	}
	return p, nil
}

// Factor is the level-3 tool.
func (s *Service) Factor() authn.Factor { return factor{s} }

type factor struct{ s *Service }

func (factor) Name() string       { return Name }
func (factor) Level() authn.Level { return 3 }

// Label, AnswerIsProof and AnswersByQR tell the login pages how to ask:
// through a signing order the app reaches by the animated QR.
func (factor) Label() string       { return "phone app" }
func (factor) AnswerIsProof() bool { return true }
func (factor) AnswersByQR() bool   { return true }

func (f factor) Enrolled(ctx context.Context, pid string) (bool, error) {
	var n int
	if err := f.s.db.QueryRow(ctx, `SELECT COUNT(*) FROM phone_devices WHERE passport_id = ? AND status = 'active'`, pid).Scan(&n); err != nil {
		return false, fmt.Errorf("checking phone binding: %w", err)
	}
	return n > 0, nil
}

func (f factor) Begin(ctx context.Context, req authn.BeginRequest) (authn.Challenge, error) {
	text, err := ushield.ChallengeText(req, "phone")
	if err != nil {
		return authn.Challenge{}, err
	}
	ok, err := f.Enrolled(ctx, req.PassportID)
	if err != nil {
		return authn.Challenge{}, err
	}
	if !ok {
		return authn.Challenge{}, fmt.Errorf("phone: %w", authn.ErrNotEnrolled)
	}
	nonce := make([]byte, 16)
	rand.Read(nonce)
	now := f.s.now()
	rec := &challenge.Record{Factor: Name, PassportID: req.PassportID, Purpose: req.Purpose, TxHash: req.TxHash,
		Data: ushield.SignedText(text, nonce), ExpiresAt: now.Add(f.s.TTL), CreatedAt: now}
	if err := f.s.ch.Create(ctx, rec); err != nil {
		return authn.Challenge{}, err
	}
	return authn.Challenge{ID: rec.ID, Factor: Name, Prompt: "Open the bank's app on your phone and scan the code", Data: rec.Data, ExpiresAt: rec.ExpiresAt}, nil
}

// Verify checks the device (bound to this customer, not revoked), the app
// PIN's MAC and the signature over the challenge's data, then consumes the
// challenge. A wrong PIN is ErrWrongAnswer wrapping ErrWrongPIN (the caller
// counts it toward the lockout).
func (f factor) Verify(ctx context.Context, req authn.VerifyRequest) (authn.Result, error) {
	p, err := DecodeProof(req.Response)
	if err != nil {
		return authn.Result{}, fmt.Errorf("%w: %w", authn.ErrBadResponse, err)
	}
	rec, err := f.s.ch.Get(ctx, Name, req.PassportID, req.ChallengeID)
	if err != nil {
		return authn.Result{}, err
	}
	var owner, status string
	var pubDER, pinKey []byte
	err = f.s.db.QueryRow(ctx, `SELECT passport_id, public_key, pin_key, status FROM phone_devices WHERE device_id = ?`, p.Device).Scan(&owner, &pubDER, &pinKey, &status)
	if errors.Is(err, sql.ErrNoRows) {
		return authn.Result{}, fmt.Errorf("%w: the phone is not bound", authn.ErrNotEnrolled)
	}
	if err != nil {
		return authn.Result{}, fmt.Errorf("reading the phone binding: %w", err)
	}
	if owner != req.PassportID {
		return authn.Result{}, fmt.Errorf("%w: the phone is bound to another customer", authn.ErrWrongAnswer)
	}
	if status != "active" {
		return authn.Result{}, fmt.Errorf("%w: the phone's binding was revoked", authn.ErrRevoked)
	}
	if !hmac.Equal(p.PIN, PINMAC(pinKey, rec.Data)) {
		return authn.Result{}, fmt.Errorf("%w: %w", authn.ErrWrongAnswer, ErrWrongPIN)
	}
	pub, err := x509.ParsePKIXPublicKey(pubDER)
	k, ok := pub.(*ecdsa.PublicKey)
	if err != nil || !ok {
		return authn.Result{}, fmt.Errorf("reading the phone's key: %w", ErrBadKey)
	}
	h := sha256.Sum256(rec.Data)
	if !ecdsa.VerifyASN1(k, h[:], p.Sig) {
		return authn.Result{}, fmt.Errorf("%w: the signature does not verify", authn.ErrWrongAnswer)
	}
	if err := f.s.ch.Consume(ctx, Name, req.PassportID, req.ChallengeID); err != nil {
		return authn.Result{}, err
	}
	return authn.Result{Factor: Name, Level: 3, AMR: "swk"}, nil
}

// Sign is the app's side: the proof over data with the device key and the
// PIN key (simulators/phone uses it).
func Sign(deviceID string, key *ecdsa.PrivateKey, pinKey, data []byte) ([]byte, error) {
	h := sha256.Sum256(data)
	sig, err := ecdsa.SignASN1(rand.Reader, key, h[:])
	if err != nil {
		return nil, err
	}
	return Proof{Device: deviceID, Sig: sig, PIN: PINMAC(pinKey, data)}.Encode(), nil
}

// Bind on the factor lets the passport's binding endpoint reach the service.
func (f factor) Bind(ctx context.Context, passportID string, pubDER, pinSalt, pinKey []byte, label string) (*Device, error) {
	return f.s.Bind(ctx, passportID, pubDER, pinSalt, pinKey, label)
}

// ErrDeviceRefused refuses a device signature outside a challenge (the
// first post of an ATM withdrawal's approval): the device is not bound to
// the customer, its binding was revoked, or the signature does not verify.
// It counts nothing: no challenge was answered, no PIN was checked.
var ErrDeviceRefused = errors.New("the request is not signed by a phone bound to this customer")

// WithdrawalRequestData is what the app signs with its device key to ask
// for an ATM withdrawal's challenge: the customer, the session of the
// ATM's QR, the account, the amount and the time (Unix ms), so that only
// the bound phone can make the bank issue a challenge to it.
func WithdrawalRequestData(customer, session, account string, amountFen, tsMS int64) []byte {
	return fmt.Appendf(nil, "egate-atm-wd-request\x00%s\x00%s\x00%s\x00%d\x00%d", customer, session, account, amountFen, tsMS)
}

// SignDevice is the app's signature with its device key alone (ECDSA P-256
// over SHA-256 of data, DER).
func SignDevice(key *ecdsa.PrivateKey, data []byte) ([]byte, error) {
	h := sha256.Sum256(data)
	return ecdsa.SignASN1(rand.Reader, key, h[:])
}

// VerifyDevice checks that sig is deviceID's signature over data and that
// the device is actively bound to passportID; anything else is
// ErrDeviceRefused (the reason in its text, no secret). It reads the
// binding only: nothing is counted, no challenge is touched.
func (s *Service) VerifyDevice(ctx context.Context, passportID, deviceID string, data, sig []byte) error {
	var owner, status string
	var pubDER []byte
	err := s.db.QueryRow(ctx, `SELECT passport_id, public_key, status FROM phone_devices WHERE device_id = ?`, deviceID).Scan(&owner, &pubDER, &status)
	if errors.Is(err, sql.ErrNoRows) || err == nil && owner != passportID {
		return fmt.Errorf("%w: no such phone is bound to the customer", ErrDeviceRefused)
	}
	if err != nil {
		return fmt.Errorf("reading the phone binding: %w", err)
	}
	if status != "active" {
		return fmt.Errorf("%w: the phone's binding was revoked", ErrDeviceRefused)
	}
	pub, err := x509.ParsePKIXPublicKey(pubDER)
	k, ok := pub.(*ecdsa.PublicKey)
	if err != nil || !ok {
		return fmt.Errorf("reading the phone's key: %w", ErrBadKey)
	}
	h := sha256.Sum256(data)
	if !ecdsa.VerifyASN1(k, h[:], sig) {
		return fmt.Errorf("%w: the signature does not verify", ErrDeviceRefused)
	}
	return nil
}
