// Package pin is the one error for a PIN a device refused: an HSM token
// (devices/hsm), a customer's U-shield (devices/pkcs11token) or a PIV card
// (devices/piv) all return a *Error, so a caller (authsvc, egate admin)
// tells "wrong PIN, n tries left" from "locked" the same way for every
// device, with errors.Is(err, ErrIncorrect) or errors.Is(err, ErrLocked)
// and errors.As for the tries left.
//
// It imports nothing but the standard library, so packages built without
// PKCS#11 or PC/SC can match it. The PIN itself is never part of an Error.
package pin

import (
	"errors"
	"fmt"
)

// Sentinels, for errors.Is. Every *Error matches exactly one of them.
var (
	ErrIncorrect = errors.New("PIN incorrect")
	ErrLocked    = errors.New("PIN locked")
)

// Error is a PIN the device refused. egate never retries it: the person
// holding the device (or the operator, for an HSM) decides whether to
// enter a PIN again.
type Error struct {
	// Device names what refused the PIN, for people: `HSM token "egate"`,
	// `token "ushield-a"`, "PIV card".
	Device string
	// Retries is how many tries the device says are left; -1 when it does
	// not say (PKCS#11 gives only flags: see Low and FinalTry).
	Retries int
	// Low: the device says few tries are left without a count (PKCS#11
	// CKF_USER_PIN_COUNT_LOW).
	Low bool
	// Locked: no tries are left; the device refuses every PIN until it is
	// unblocked (a PUK, the security officer, the bank).
	Locked bool
	// Advice is what a person does next, appended to the message.
	Advice string
	// Err is the device's own error (a pkcs11.Error, piv-go's AuthErr),
	// for errors.As; nil when there is none.
	Err error
}

// FinalTry reports whether the device says one more wrong PIN locks it.
func (e *Error) FinalTry() bool { return !e.Locked && e.Retries == 1 }

func (e *Error) Error() string {
	var msg string
	switch {
	case e.Locked:
		msg = "PIN locked on " + e.Device
	case e.Retries == 1:
		msg = "wrong PIN for " + e.Device + "; one more wrong PIN locks it"
	case e.Retries > 1:
		msg = fmt.Sprintf("wrong PIN for %s; %d tries left", e.Device, e.Retries)
	case e.Low:
		msg = "wrong PIN for " + e.Device + "; few tries are left"
	default:
		msg = "wrong PIN for " + e.Device
	}
	if e.Advice != "" {
		msg += ": " + e.Advice
	}
	return msg
}

// Is matches ErrLocked when the PIN is locked and ErrIncorrect otherwise.
func (e *Error) Is(target error) bool {
	return (target == ErrLocked && e.Locked) || (target == ErrIncorrect && !e.Locked)
}

func (e *Error) Unwrap() error { return e.Err }
