package piv

import (
	"errors"
	"fmt"
	"testing"

	"github.com/egate-bank/egate/devices/pin"
	gopiv "github.com/go-piv/piv-go/v2/piv"
)

func TestPINErr(t *testing.T) {
	cases := []struct {
		name    string
		in      error
		blocked bool
		retries int // -1: not a wrong-PIN *pin.Error
	}{
		{"two left", fmt.Errorf("verify pin: %w", gopiv.AuthErr{Retries: 2}), false, 2},
		{"none left", gopiv.AuthErr{Retries: 0}, true, -1},
		{"other error", errors.New("boom"), false, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := pinErr(tc.in)
			if got := errors.Is(err, ErrPINBlocked); got != tc.blocked {
				t.Errorf("Is(ErrPINBlocked) = %v, want %v", got, tc.blocked)
			}
			var pe *pin.Error
			if ok := errors.As(err, &pe) && !pe.Locked; ok != (tc.retries >= 0) || (ok && pe.Retries != tc.retries) {
				t.Errorf("*pin.Error = %v (%v), want retries %d", pe, ok, tc.retries)
			}
		})
	}
}

func TestIsLinkError(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"removed", errors.New("transmitting request: the smart card has been removed, so further communication is not possible"), true},
		{"reset", errors.New("the smart card has been reset, so any shared state information is invalid"), true},
		{"auth", gopiv.AuthErr{Retries: 1}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := isLinkError(tc.err); got != tc.want {
				t.Errorf("isLinkError(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
