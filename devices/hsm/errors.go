package hsm

import (
	"errors"
	"fmt"
	"time"

	"github.com/egate-bank/egate/devices/p11"
	"github.com/egate-bank/egate/devices/pin"
	"github.com/egate-bank/egate/devices/pkcs11uri"
	"github.com/miekg/pkcs11"
)

// Sentinel errors, for errors.Is. Every error the Service returns wraps one
// of these (or a pkcs11.Error for a module failure without a better name)
// and its message says what is wrong and how to fix it.
var (
	ErrBadConfig      = errors.New("invalid HSM configuration")
	ErrModuleNotFound = errors.New("PKCS#11 module not found")
	ErrTokenNotFound  = errors.New("HSM token not found")
	// ErrPINIncorrect and ErrPINLocked are package pin's sentinels: a
	// refused login is a *pin.Error, as on every other device.
	ErrPINIncorrect = pin.ErrIncorrect
	ErrPINLocked    = pin.ErrLocked
	ErrKeyNotFound  = errors.New("HSM key not found")
	ErrKeyType      = errors.New("HSM key has another type")
	ErrBadURI       = pkcs11uri.ErrBadURI
	ErrClosed       = errors.New("HSM service is closed")
	ErrSessionLost  = errors.New("HSM session lost")
	ErrSealed       = errors.New("sealed data is invalid")
	// ErrOneWay: RewrapSecret was asked to move a secret that is already
	// under a seed-wrap key, which lets nothing out (not even to another
	// seed-wrap key).
	ErrOneWay = errors.New("secret is already under a seed-wrap key")
	// ErrUnavailable: the HSM cannot be used just now (the token was
	// removed or is unreachable, the module reports a device or general
	// error, a lost session did not come back). Nothing was computed; the
	// Service reopens the module by itself (see the package doc), so the
	// caller answers "try again" and counts nothing against anybody.
	// Errors matching it are *UnavailableError.
	ErrUnavailable = errors.New("HSM unavailable")
)

// KeyNotFoundError names the missing key.
type KeyNotFoundError struct {
	Token, Label string
}

func (e *KeyNotFoundError) Error() string {
	return fmt.Sprintf("HSM key not found: no key labelled %q on token %q; create it (egate admin hsm init) or fix the label", e.Label, e.Token)
}

func (e *KeyNotFoundError) Is(target error) bool { return target == ErrKeyNotFound }

// UnavailableError is an operation refused or failed while the HSM could
// not be used. Its message names the token and the module's return value
// for the log; it is never shown to a customer.
type UnavailableError struct {
	Token string
	// RetryAfter is how long until the Service tries to reopen the
	// module again (0: at the next call).
	RetryAfter time.Duration
	Err        error // the failure that made the HSM unavailable
}

func (e *UnavailableError) Error() string {
	msg := fmt.Sprintf("HSM unavailable: token %q", e.Token)
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (next attempt to reopen it in %v)", e.RetryAfter.Round(time.Millisecond))
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is matches ErrUnavailable.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

func (e *UnavailableError) Unwrap() error { return e.Err }

// deviceFault reports module errors that say the device, the token or the
// module itself failed (not one session): the Service reopens the module.
func deviceFault(err error) bool {
	return p11.IsRV(err, pkcs11.CKR_GENERAL_ERROR, pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_DEVICE_MEMORY,
		pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_TOKEN_NOT_RECOGNIZED, pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED)
}

// sessionLost reports module errors after which the session (or the login
// state it depended on) is gone and a fresh session may succeed.
func sessionLost(err error) bool { return p11.SessionLost(err) }

// staleHandle reports that a cached object handle is no longer valid.
func staleHandle(err error) bool {
	return p11.IsRV(err, pkcs11.CKR_OBJECT_HANDLE_INVALID, pkcs11.CKR_KEY_HANDLE_INVALID)
}
