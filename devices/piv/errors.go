package piv

import (
	"errors"
	"fmt"
	"strings"

	gopiv "github.com/go-piv/piv-go/v2/piv"
)

var (
	// ErrNoCard: no such reader, or no card in it.
	ErrNoCard = errors.New("piv: no card")
	// ErrCardRemoved: the card opened was removed (or replaced by another).
	ErrCardRemoved = errors.New("piv: card removed")
	// ErrPINBlocked: the PIN has no tries left; the PUK must unblock it.
	ErrPINBlocked = errors.New("piv: PIN blocked")
	// ErrInUse: the card is already open by another owner.
	ErrInUse = errors.New("piv: card already open")
	// ErrClosed: the Card was closed.
	ErrClosed = errors.New("piv: card closed")
	// ErrAttestation: the key's attestation does not chain to a trusted vendor root.
	ErrAttestation = errors.New("piv: attestation not trusted")
	// ErrPINRequired: the key needs a PIN and no prompt was given.
	ErrPINRequired = errors.New("piv: PIN required")
)

// PINError is a wrong PIN, with the tries the card has left.
type PINError struct{ Retries int }

func (e PINError) Error() string { return fmt.Sprintf("piv: wrong PIN, %d tries left", e.Retries) }

// pinErr turns piv-go's verification error into PINError or ErrPINBlocked.
func pinErr(err error) error {
	var ae gopiv.AuthErr
	if errors.As(err, &ae) {
		if ae.Retries == 0 {
			return ErrPINBlocked
		}
		return PINError{Retries: ae.Retries}
	}
	return err
}

// statusError is piv-go's error for a status word from the card.
type statusError interface{ Status() uint16 }

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
