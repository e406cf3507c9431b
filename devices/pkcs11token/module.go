package pkcs11token

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/egate-bank/egate/devices/p11"
	"github.com/egate-bank/egate/devices/pin"
	"github.com/egate-bank/egate/devices/pkcs11uri"
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
	// ErrBadURI: a pkcs11: URI naming a token or a key is malformed or
	// names something a U-shield key cannot be (package pkcs11uri's
	// sentinel).
	ErrBadURI = pkcs11uri.ErrBadURI
	// ErrRemoved: the token was pulled out (or its reader lost it) during
	// the call; nothing was signed or written. Open the token again once
	// it is back.
	ErrRemoved = errors.New("token removed")
	// ErrSessionLost: the module forgot the Token's session (the token was
	// pulled out and put back, or the module was reset). Open the token
	// again.
	ErrSessionLost = errors.New("token session lost")
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

// Module is a vendor PKCS#11 library (package p11 loads it, once per path
// in the process), or anything else that answers p11.Ctx.
type Module struct {
	path string
	mod  *p11.Module // nil for a Module made by Wrap
	c    p11.Ctx
}

// Open loads and initialises the module at path. If another part of the
// process holds it already (an HSM on the same library, another Module),
// that initialisation is shared and the last Close finalises it.
func Open(path string) (*Module, error) {
	m, err := p11.Load(path)
	if errors.Is(err, p11.ErrLoad) {
		return nil, fmt.Errorf("%w: cannot load %q (is the vendor's PKCS#11 library installed there?)", ErrModule, path)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrModule, err)
	}
	return &Module{path: path, mod: m, c: m.Ctx()}, nil
}

// Wrap returns a Module whose PKCS#11 calls go to c: a simulator of a
// vendor's module, or a test's p11test.Faulty around a real one (a
// U-shield pulled out mid-signature). name stands for the library's path
// in messages. Closing the Module leaves c alone.
func Wrap(c p11.Ctx, name string) *Module { return &Module{path: name, c: c} }

// Ctx is the module's PKCS#11 functions, to wrap (see Wrap).
func (m *Module) Ctx() p11.Ctx { return m.c }

// Path returns the library's path.
func (m *Module) Path() string { return m.path }

// Close gives the module back (the last user of the library finalises it).
func (m *Module) Close() error {
	if m.mod != nil {
		return m.mod.Close()
	}
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
	slots, err := m.c.GetSlotList(true)
	if err != nil {
		return nil, fmt.Errorf("listing slots of %q: %w", m.path, err)
	}
	var out []TokenInfo
	for _, s := range slots {
		si, err := m.c.GetSlotInfo(s)
		if err != nil {
			return nil, fmt.Errorf("slot %d: %w", s, err)
		}
		ti, err := m.c.GetTokenInfo(s)
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

// OpenToken opens a session on the initialised token named by ref: its
// label, or an RFC 7512 pkcs11: URI whose token=, serial=, manufacturer=
// and model= (each checked when present) pick it out, such as
// "pkcs11:token=ushield-a" or "pkcs11:manufacturer=Feitian;serial=0123".
// An empty ref (or a URI naming none of those) picks the module's only
// initialised token.
func (m *Module) OpenToken(ctx context.Context, ref string) (*Token, error) {
	match, err := tokenMatch(ref)
	if err != nil {
		return nil, err
	}
	toks, err := m.Tokens(ctx)
	if err != nil {
		return nil, err
	}
	var found []TokenInfo
	for _, t := range toks {
		if t.Initialized && match(t) {
			found = append(found, t)
		}
	}
	switch {
	case len(found) == 0:
		return nil, fmt.Errorf("%w: no initialised token %s in %q", ErrTokenNotFound, describeRef(ref), m.path)
	case len(found) > 1:
		return nil, fmt.Errorf("%w: %d tokens match %q; name one by its label or serial", ErrTokenNotFound, len(found), ref)
	}
	sh, err := m.c.OpenSession(found[0].Slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return nil, fmt.Errorf("opening a session on token %q: %w", found[0].Label, err)
	}
	return &Token{m: m, info: found[0], sh: sh}, nil
}

// isURI reports whether ref is a pkcs11: URI rather than a plain label.
func isURI(ref string) bool { return strings.HasPrefix(strings.ToLower(ref), pkcs11uri.Scheme) }

// tokenMatch turns a token reference (see OpenToken) into a test.
func tokenMatch(ref string) (func(TokenInfo) bool, error) {
	if !isURI(ref) {
		return func(t TokenInfo) bool { return ref == "" || t.Label == ref }, nil
	}
	u, err := pkcs11uri.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("naming a token: %w", err)
	}
	return func(t TokenInfo) bool {
		return (u.Token == "" || t.Label == u.Token) && (u.Serial == "" || t.Serial == u.Serial) &&
			(u.Manufacturer == "" || t.Manufacturer == u.Manufacturer) && (u.Model == "" || t.Model == u.Model)
	}, nil
}

func describeRef(ref string) string {
	if isURI(ref) {
		return "matching " + ref
	}
	return fmt.Sprintf("labelled %q", ref)
}
