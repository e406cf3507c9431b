package pkcs11token

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/egate-bank/egate/devices/pin"
	"github.com/miekg/pkcs11"
)

// Errors.
var (
	ErrModule        = errors.New("PKCS#11 module cannot be used")
	ErrTokenNotFound = errors.New("token not found")
	// ErrPINIncorrect and ErrPINLocked are package pin's sentinels: a
	// refused login is a *pin.Error, as on every other device.
	ErrPINIncorrect = pin.ErrIncorrect
	ErrPINLocked    = pin.ErrLocked
	ErrNotLoggedIn  = errors.New("not logged in to the token")
	ErrKeyNotFound  = errors.New("key not found on the token")
	ErrClosed       = errors.New("token closed")
	ErrUnsupported  = errors.New("unsupported by this token")
)

// PINStatus is what C_GetTokenInfo says about the user PIN's retries.
type PINStatus int

const (
	PINOK       PINStatus = iota // no flag set
	PINCountLow                  // CKF_USER_PIN_COUNT_LOW: a wrong PIN was entered
	PINFinalTry                  // CKF_USER_PIN_FINAL_TRY: one more wrong PIN locks it
	PINLocked                    // CKF_USER_PIN_LOCKED
)

func (s PINStatus) String() string {
	switch s {
	case PINCountLow:
		return "retries low"
	case PINFinalTry:
		return "final try"
	case PINLocked:
		return "locked"
	}
	return "ok"
}

func pinStatus(flags uint) PINStatus {
	switch {
	case flags&pkcs11.CKF_USER_PIN_LOCKED != 0:
		return PINLocked
	case flags&pkcs11.CKF_USER_PIN_FINAL_TRY != 0:
		return PINFinalTry
	case flags&pkcs11.CKF_USER_PIN_COUNT_LOW != 0:
		return PINCountLow
	}
	return PINOK
}

// pinError is the refused login on token label, from the status the token
// reports now.
func pinError(label string, st PINStatus, cause error) *pin.Error {
	e := &pin.Error{Device: fmt.Sprintf("token %q", label), Retries: -1, Err: cause}
	switch st {
	case PINLocked:
		e.Locked, e.Retries, e.Advice = true, 0, "the bank must unlock or replace the token"
	case PINFinalTry:
		e.Retries = 1
	case PINCountLow:
		e.Low = true
	}
	return e
}

// Module is a loaded vendor PKCS#11 library.
type Module struct {
	path  string
	p     *pkcs11.Ctx
	owned bool // we called C_Initialize, so we call C_Finalize
}

// Open loads and initialises the module at path. If another part of the
// process initialised it already (an HSM on the same library), that
// initialisation is shared and Close leaves it in place.
func Open(path string) (*Module, error) {
	p := pkcs11.New(path)
	if p == nil {
		return nil, fmt.Errorf("%w: cannot load %q (is the vendor's PKCS#11 library installed there?)", ErrModule, path)
	}
	owned := true
	if err := p.Initialize(); err != nil {
		if !isRV(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
			p.Destroy()
			return nil, fmt.Errorf("%w: C_Initialize of %q: %w", ErrModule, path, err)
		}
		owned = false
	}
	return &Module{path: path, p: p, owned: owned}, nil
}

// Path returns the library's path.
func (m *Module) Path() string { return m.path }

// Close finalises the module (when this Module initialised it).
func (m *Module) Close() error {
	if m.p == nil {
		return nil
	}
	if m.owned {
		m.p.Finalize()
	}
	m.p.Destroy()
	m.p = nil
	return nil
}

// TokenInfo describes a slot with a token present.
type TokenInfo struct {
	Slot            uint
	SlotDescription string
	Label           string
	Manufacturer    string
	Model           string
	Serial          string
	Initialized     bool
	LoginRequired   bool
	PIN             PINStatus
}

// Tokens lists the slots that hold a token.
func (m *Module) Tokens(ctx context.Context) ([]TokenInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slots, err := m.p.GetSlotList(true)
	if err != nil {
		return nil, fmt.Errorf("listing slots of %q: %w", m.path, err)
	}
	var out []TokenInfo
	for _, s := range slots {
		si, err := m.p.GetSlotInfo(s)
		if err != nil {
			return nil, fmt.Errorf("slot %d: %w", s, err)
		}
		ti, err := m.p.GetTokenInfo(s)
		if err != nil {
			return nil, fmt.Errorf("token in slot %d: %w", s, err)
		}
		out = append(out, TokenInfo{
			Slot:            s,
			SlotDescription: strings.TrimSpace(si.SlotDescription),
			Label:           strings.TrimSpace(ti.Label),
			Manufacturer:    strings.TrimSpace(ti.ManufacturerID),
			Model:           strings.TrimSpace(ti.Model),
			Serial:          strings.TrimSpace(ti.SerialNumber),
			Initialized:     ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED != 0,
			LoginRequired:   ti.Flags&pkcs11.CKF_LOGIN_REQUIRED != 0,
			PIN:             pinStatus(ti.Flags),
		})
	}
	return out, nil
}

// OpenToken opens a session on the initialised token with this label (or,
// when label is empty and the module has exactly one token, on that one).
func (m *Module) OpenToken(ctx context.Context, label string) (*Token, error) {
	toks, err := m.Tokens(ctx)
	if err != nil {
		return nil, err
	}
	var found []TokenInfo
	for _, t := range toks {
		if t.Initialized && (label == "" || t.Label == label) {
			found = append(found, t)
		}
	}
	switch {
	case len(found) == 0:
		return nil, fmt.Errorf("%w: no initialised token labelled %q in %q", ErrTokenNotFound, label, m.path)
	case len(found) > 1:
		return nil, fmt.Errorf("%w: %d tokens match %q; name one by its label", ErrTokenNotFound, len(found), label)
	}
	sh, err := m.p.OpenSession(found[0].Slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return nil, fmt.Errorf("opening a session on token %q: %w", found[0].Label, err)
	}
	return &Token{m: m, info: found[0], sh: sh}, nil
}

func isRV(err error, rv uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == rv
}
