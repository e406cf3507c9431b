package hsm

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// TestAskAgainAtStart: a device fault or a lost session while the service
// starts is asked again, at most openAttempts times; anything else — a
// refused PIN above all — is answered at once; a cancelled context ends
// the waiting.
func TestAskAgainAtStart(t *testing.T) {
	general := fmt.Errorf("opening token: %w", pkcs11.Error(pkcs11.CKR_GENERAL_ERROR))
	lost := fmt.Errorf("%w: opening token: %w", ErrSessionLost, pkcs11.Error(pkcs11.CKR_SESSION_HANDLE_INVALID))
	pinWrong := fmt.Errorf("login: %w", pkcs11.Error(pkcs11.CKR_PIN_INCORRECT))
	tests := []struct {
		name      string
		answers   []error
		wantCalls int
		wantErr   error
	}{
		{"ok at once", []error{nil}, 1, nil},
		{"general error then ok", []error{general, nil}, 2, nil},
		{"lost session twice then ok", []error{lost, lost, nil}, 3, nil},
		{"general error every time", []error{general, general, general, nil}, openAttempts, general},
		{"wrong PIN never asked again", []error{pinWrong, nil}, 1, pinWrong},
		{"not found never asked again", []error{ErrTokenNotFound, nil}, 1, ErrTokenNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			_, err := askAgainAtStart(context.Background(), time.Millisecond, func() (*crypto11.Context, error) {
				calls++
				return nil, tc.answers[calls-1]
			})
			if calls != tc.wantCalls {
				t.Fatalf("configured %d times, want %d", calls, tc.wantCalls)
			}
			if (tc.wantErr == nil) != (err == nil) || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
	t.Run("cancelled while waiting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		_, err := askAgainAtStart(ctx, time.Hour, func() (*crypto11.Context, error) {
			calls++
			cancel()
			return nil, general
		})
		if calls != 1 || !errors.Is(err, context.Canceled) || !errors.Is(err, general.(interface{ Unwrap() error }).Unwrap()) {
			t.Fatalf("calls %d, err %v", calls, err)
		}
	})
}
