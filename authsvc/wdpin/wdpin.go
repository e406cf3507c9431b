// Package wdpin is the customer's withdrawal PIN: set by the customer
// (PUT /api/v1/self/withdrawal-pin, ebank's settings), at a branch (egate
// admin user withdrawal-pin) or by the demo, typed on an ATM's PIN pad after the phone approved a QR
// withdrawal, and checked from the PIN pad's ISO 9564 format 4 block.
//
// The PIN is never stored, logged or put in an error: the table
// atm_withdrawal_pins holds a verification value, HMAC-SHA-256 computed in
// the HSM (egate-hmac) over the passport id and the PIN. The block is
// opened in the HSM under the ATM's PIN pad key (hsm.DecipherPINBlock4);
// only the digits, for the time of one HMAC, are in this process's memory,
// and cleared after. Every check takes an attempt on the passport's
// counter (factor atm-pin): a wrong PIN is counted and locks like every
// other tool; a right one gives the attempt back.
package wdpin

import (
	"context"
	"crypto/hmac"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/egate-bank/egate/atm"
	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/internal/store"
)

// Factor is the name of the withdrawal PIN on the passport's counter.
const Factor = "atm-pin"

// Errors. None carries a digit.
var (
	// ErrWrongPIN is a PIN that does not match (counted). It matches
	// authn.ErrWrongAnswer.
	ErrWrongPIN = fmt.Errorf("the withdrawal PIN is wrong: %w", authn.ErrWrongAnswer)
	// ErrNoPIN: the customer has no withdrawal PIN yet (nothing counted).
	ErrNoPIN = errors.New("no withdrawal PIN is set for this customer: set one in ebank's settings or at a branch")
	// ErrBadPIN is a PIN to be set that is not 4 to 12 digits.
	ErrBadPIN = errors.New("a withdrawal PIN is 4 to 12 digits")
	// ErrNewPINLength is a new PIN chosen by the customer or the branch
	// (CheckNew) that is not exactly NewPINLength digits.
	ErrNewPINLength = fmt.Errorf("a new withdrawal PIN is exactly %d digits", NewPINLength)
	// ErrWeakPIN is a new PIN that is one digit repeated or a run of
	// digits up or down (CheckNew).
	ErrWeakPIN = errors.New("the withdrawal PIN is too easy to guess (one digit repeated, or digits in a run up or down): choose another")
	// ErrBlock is a PIN block that does not open as a format 4 block under
	// the ATM's key (nothing counted: no PIN was compared).
	ErrBlock = errors.New("the PIN pad's block does not open under the ATM's key")
)

// HSM is what the service needs of the HSM (*hsm.Service).
type HSM interface {
	HMAC(ctx context.Context, keyRef string, msg []byte) ([]byte, error)
	DecipherPINBlock4(ctx context.Context, keyRef string, block, panField [16]byte) ([16]byte, error)
}

var _ HSM = (*hsm.Service)(nil)

// Options shape a Service.
type Options struct {
	DB  *store.DB
	HSM HSM
	// Attempts is the passport's counter (*passport.Service).
	Attempts authn.Attempts
	// MACKey names the HMAC key; hsm.LabelHMAC when empty.
	MACKey string
	Now    func() time.Time
}

// Service sets and checks withdrawal PINs.
type Service struct{ o Options }

// New makes a Service.
func New(o Options) (*Service, error) {
	if o.DB == nil || o.HSM == nil || o.Attempts == nil {
		return nil, errors.New("wdpin: DB, HSM and Attempts are required")
	}
	if o.MACKey == "" {
		o.MACKey = hsm.LabelHMAC
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{o}, nil
}

func (s *Service) pvv(ctx context.Context, passportID string, pin []byte) ([]byte, error) {
	msg := make([]byte, 0, 64)
	msg = append(msg, "egate-wd-pin:v1\x00"...)
	msg = append(msg, passportID...)
	msg = append(msg, 0)
	msg = append(msg, pin...)
	defer clear(msg)
	return s.o.HSM.HMAC(ctx, s.o.MACKey, msg)
}

func digits(pin []byte) bool {
	if len(pin) < 4 || len(pin) > 12 {
		return false
	}
	for _, c := range pin {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// NewPINLength is the length of a PIN a customer or the branch chooses.
const NewPINLength = 6

// CheckNew says whether pin may be chosen as a new withdrawal PIN: exactly
// NewPINLength digits (ErrNewPINLength), not one digit repeated nor a run
// up or down, wrapping past 9 or 0 (ErrWeakPIN). Neither error carries a
// digit.
func CheckNew(pin []byte) error {
	if len(pin) != NewPINLength || !digits(pin) {
		return ErrNewPINLength
	}
	same, up, down := true, true, true
	for i := 1; i < len(pin); i++ {
		d := (int(pin[i]) - int(pin[i-1]) + 10) % 10
		same = same && d == 0
		up = up && d == 1
		down = down && d == 9
	}
	if same || up || down {
		return ErrWeakPIN
	}
	return nil
}

// Set sets (or replaces) the customer's withdrawal PIN and clears today's
// wrong PINs. The caller clears pin.
func (s *Service) Set(ctx context.Context, passportID string, pin []byte) error {
	if passportID == "" {
		return errors.New("wdpin: no customer")
	}
	if !digits(pin) {
		return ErrBadPIN
	}
	v, err := s.pvv(ctx, passportID, pin)
	if err != nil {
		return fmt.Errorf("computing the withdrawal PIN's verification value: %w", err)
	}
	return s.o.DB.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO atm_withdrawal_pins (passport_id, pvv, set_ms) VALUES (?, ?, ?)
			ON CONFLICT (passport_id) DO UPDATE SET pvv = excluded.pvv, set_ms = excluded.set_ms`, passportID, v, s.o.Now().UnixMilli()); err != nil {
			return fmt.Errorf("storing the withdrawal PIN: %w", err)
		}
		_, err := tx.Exec(ctx, `DELETE FROM auth_failures WHERE subject = ? AND factor = ?`, "pid:"+passportID, Factor)
		return err
	})
}

// IsSet says whether the customer has a withdrawal PIN.
func (s *Service) IsSet(ctx context.Context, passportID string) (bool, error) {
	var n int
	err := s.o.DB.QueryRow(ctx, `SELECT COUNT(*) FROM atm_withdrawal_pins WHERE passport_id = ?`, passportID).Scan(&n)
	return n > 0, err
}

// Verify checks the PIN in block (format 4, bound to pan, under the ATM's
// PIN pad key keyRef) against the customer's withdrawal PIN, on the
// passport's counter: ErrWrongPIN (counted), an *authn.LockedError when
// no attempt is left today, ErrNoPIN or ErrBlock (not counted).
func (s *Service) Verify(ctx context.Context, passportID, keyRef string, block [16]byte, pan string) error {
	var want []byte
	err := s.o.DB.QueryRow(ctx, `SELECT pvv FROM atm_withdrawal_pins WHERE passport_id = ?`, passportID).Scan(&want)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNoPIN
	}
	if err != nil {
		return fmt.Errorf("reading the withdrawal PIN: %w", err)
	}
	panField, err := atm.PANField4(pan)
	if err != nil {
		return fmt.Errorf("%w: the account number is not 12 to 19 digits", ErrBlock)
	}
	done, err := s.o.Attempts.BeginFactor(ctx, passportID, Factor)
	if err != nil {
		return err
	}
	ok, err := s.check(ctx, passportID, keyRef, block, panField, want)
	if err != nil {
		// Nothing was compared: the attempt goes back.
		if derr := done(context.WithoutCancel(ctx), true, ""); derr != nil {
			return derr
		}
		return err
	}
	if derr := done(context.WithoutCancel(ctx), ok, ""); derr != nil {
		return derr
	}
	if !ok {
		return ErrWrongPIN
	}
	return nil
}

func (s *Service) check(ctx context.Context, passportID, keyRef string, block, panField [16]byte, want []byte) (bool, error) {
	f, err := s.o.HSM.DecipherPINBlock4(ctx, keyRef, block, panField)
	if err != nil {
		return false, err
	}
	pin, err := atm.ParsePINField4(f)
	clear(f[:])
	if err != nil {
		return false, ErrBlock
	}
	got, err := s.pvv(ctx, passportID, pin)
	clear(pin)
	if err != nil {
		return false, err
	}
	return hmac.Equal(got, want), nil
}
