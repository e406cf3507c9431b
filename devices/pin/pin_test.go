package pin

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestError(t *testing.T) {
	cause := errors.New("CKR_PIN_INCORRECT")
	cases := []struct {
		name      string
		err       *Error
		incorrect bool
		locked    bool
		finalTry  bool
		msg       string
	}{
		{"unknown tries", &Error{Device: `token "a"`, Retries: -1, Err: cause}, true, false, false, `wrong PIN for token "a"`},
		{"low", &Error{Device: `token "a"`, Retries: -1, Low: true}, true, false, false, "few tries are left"},
		{"final try", &Error{Device: `token "a"`, Retries: 1}, true, false, true, "one more wrong PIN locks it"},
		{"two left", &Error{Device: "PIV card", Retries: 2}, true, false, false, "wrong PIN for PIV card; 2 tries left"},
		{"locked", &Error{Device: `HSM token "h"`, Retries: 0, Locked: true, Advice: "the security officer unlocks it"}, false, true, false, `PIN locked on HSM token "h": the security officer unlocks it`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := fmt.Errorf("logging in: %w", tc.err)
			if got := errors.Is(err, ErrIncorrect); got != tc.incorrect {
				t.Errorf("Is(ErrIncorrect) = %v, want %v", got, tc.incorrect)
			}
			if got := errors.Is(err, ErrLocked); got != tc.locked {
				t.Errorf("Is(ErrLocked) = %v, want %v", got, tc.locked)
			}
			var pe *Error
			if !errors.As(err, &pe) || pe.FinalTry() != tc.finalTry {
				t.Errorf("As(*Error) = %v, FinalTry %v, want %v", pe, pe != nil && pe.FinalTry(), tc.finalTry)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q lacks %q", err.Error(), tc.msg)
			}
			if tc.err.Err != nil && !errors.Is(err, cause) {
				t.Errorf("the device's error is not reachable through Unwrap")
			}
		})
	}
}
