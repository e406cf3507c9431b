package piv

import (
	"errors"
	"strings"

	"github.com/egate-bank/egate/devices/pin"
	gopiv "github.com/go-piv/piv-go/v2/piv"
)

var (
	// ErrNoCard: no such reader, or no card in it.
	ErrNoCard = errors.New("piv: no card")
	// ErrCardRemoved: the card opened was removed (or replaced by another).
	ErrCardRemoved = errors.New("piv: card removed")
	// ErrPINBlocked: the PIN has no tries left; the PUK must unblock it.
	// It is package pin's ErrLocked: a refused PIN is a *pin.Error, as on
	// every other device.
	ErrPINBlocked = pin.ErrLocked
	// ErrInUse: the card is already open by another owner.
	ErrInUse = errors.New("piv: card already open")
	// ErrClosed: the Card was closed.
	ErrClosed = errors.New("piv: card closed")
	// ErrAttestation: the key's attestation does not chain to a trusted vendor root.
	ErrAttestation = errors.New("piv: attestation not trusted")
	// ErrPINRequired: the key needs a PIN and no prompt was given.
	ErrPINRequired = errors.New("piv: PIN required")
)

// pinErr turns piv-go's verification error into a *pin.Error: wrong, with
// the tries the card has left, or blocked (ErrPINBlocked).
func pinErr(err error) error {
	var ae gopiv.AuthErr
	if errors.As(err, &ae) {
		if ae.Retries == 0 {
			return blocked(err)
		}
		return &pin.Error{Device: "PIV card", Retries: ae.Retries, Err: err}
	}
	return err
}

// blocked is the error for a PIN with no tries left.
func blocked(cause error) *pin.Error {
	return &pin.Error{Device: "PIV card", Retries: 0, Locked: true, Advice: "the PUK must unblock it", Err: cause}
}

// statusError is piv-go's error for a status word from the card.
type statusError interface{ Status() uint16 }

// swSecurityStatusNotSatisfied: the card refused a command for want of a
// verified PIN (or management key).
const swSecurityStatusNotSatisfied = 0x6982

// isStatus reports whether err is the card's answer sw.
func isStatus(err error, sw uint16) bool {
	var se statusError
	return errors.As(err, &se) && se.Status() == sw
}

// isLinkError reports whether err comes from PC/SC rather than from the
// card's applet: the card went away, was reset, or the reader is gone.
func isLinkError(err error) bool {
	if err == nil {
		return false
	}
	var se statusError
	if errors.As(err, &se) {
		return false
	}
	msg := err.Error()
	for _, s := range []string{"has been reset", "has been removed", "no Smart Card", "not currently available", "not recognized", "transmitting request", "connecting to smart card", "beginning smart card transaction", "service"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
