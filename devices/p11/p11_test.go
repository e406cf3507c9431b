package p11_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/egate-bank/egate/devices/p11"
	"github.com/egate-bank/egate/simulators/softhsm/softhsmtest"
	"github.com/miekg/pkcs11"
)

var softHSM = softhsmtest.Tokens{Labels: []string{"p11-test"}, SOPIN: "5678", PIN: "1234"}

func TestMain(m *testing.M) { softhsmtest.Main(m, &softHSM) }

func TestIsRV(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		err         error
		rvs         []uint
		want        bool
		removed     bool
		sessionLost bool
	}{
		{"wrapped device removed", fmt.Errorf("signing: %w", pkcs11.Error(pkcs11.CKR_DEVICE_REMOVED)), []uint{pkcs11.CKR_DEVICE_REMOVED}, true, true, true},
		{"session handle invalid", pkcs11.Error(pkcs11.CKR_SESSION_HANDLE_INVALID), []uint{pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_SESSION_HANDLE_INVALID}, true, false, true},
		{"another value", pkcs11.Error(pkcs11.CKR_PIN_INCORRECT), []uint{pkcs11.CKR_PIN_LOCKED}, false, false, false},
		{"not a module error", errors.New("CKR_DEVICE_REMOVED"), []uint{pkcs11.CKR_DEVICE_REMOVED}, false, false, false},
		{"nil", nil, []uint{pkcs11.CKR_OK}, false, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := p11.IsRV(tc.err, tc.rvs...); got != tc.want {
				t.Errorf("IsRV = %v, want %v", got, tc.want)
			}
			if got := p11.Removed(tc.err); got != tc.removed {
				t.Errorf("Removed = %v, want %v", got, tc.removed)
			}
			if got := p11.SessionLost(tc.err); got != tc.sessionLost {
				t.Errorf("SessionLost = %v, want %v", got, tc.sessionLost)
			}
		})
	}
}

// TestLoadShared: two Modules on one library share it; closing the first
// leaves the second working (PKCS#11 state is per process, so finalising
// on the first Close would break the second), and the last Close finalises.
func TestLoadShared(t *testing.T) {
	d := softHSM.Need(t)
	a, err := p11.Load(d.Module)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p11.Load(d.Module)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	a.Close() // idempotent: must not drop b's hold
	if _, _, err := p11.FindToken(b.Ctx(), "p11-test"); err != nil {
		t.Fatalf("after the first Close: %v", err)
	}
	if _, _, err := p11.FindToken(b.Ctx(), "no-such"); !errors.Is(err, p11.ErrTokenNotFound) {
		t.Fatalf("FindToken(no-such) = %v, want ErrTokenNotFound", err)
	}
	b.Close()
	if _, err := p11.Load("/nonexistent/libnothing.so"); !errors.Is(err, p11.ErrLoad) {
		t.Fatalf("Load of a missing file = %v, want ErrLoad", err)
	}
}
