package oath

import (
	"context"
	"crypto"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// macCounter is the SoftHSM2 service counting the HMACs it computes and
// the calls made, on both of its ways in.
type macCounter struct {
	*hsm.Service
	macs, calls atomic.Int64
}

func (m *macCounter) HMACWrapped(ctx context.Context, label string, wrapped []byte, h crypto.Hash, msgs [][]byte) ([][]byte, error) {
	return m.HMACWrappedUntil(ctx, label, wrapped, h, msgs, nil)
}

func (m *macCounter) HMACWrappedUntil(ctx context.Context, label string, wrapped []byte, h crypto.Hash, msgs [][]byte, stop func(int, []byte) bool) ([][]byte, error) {
	m.calls.Add(1)
	out, err := m.Service.HMACWrappedUntil(ctx, label, wrapped, h, msgs, stop)
	m.macs.Add(int64(len(out)))
	return out, err
}

// TestExpectedCounterFirst: with an HSM that can stop early (devices/hsm
// over SoftHSM2), a right code at the expected counter (HOTP: the
// ledger's next; TOTP: now's step) costs one HMAC; a wrong, replayed or
// skipped-ahead code computes the whole window, as does every code of a
// token with a PIN; each verification is one HSM call, and the answers are
// those of TestHOTPVerify, TestTOTPVerifyAndDrift and TestPINUsageMode.
func TestExpectedCounterFirst(t *testing.T) {
	h := &macCounter{Service: hsmtest.Open(t)}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := &clock{t: time.Unix(1700000000, 0)}
		svc := New(db, h, Config{MaxFailures: 20}, clk.Now)
		pin := hotpKey("HPIN")
		pin.PIN = &pskc.PINPolicy{Mode: pskc.PINAppend, KeyID: "pin-a", Min: 4, Max: 6}
		keys := append(testKeys()[:2], pin)
		if _, err := svc.ImportPSKC(ctx, opener(policyFile(t, keys, map[string]string{"pin-a": "47110"})), ImportOptions{}); err != nil {
			t.Fatal(err)
		}
		// Window: HOTPLookBehind 3 (fewer near 0) + HOTPWindow 10; TOTP
		// steps now-1 … now+1.
		steps := []struct {
			name   string
			serial string
			code   func() string
			want   error
			macs   int64
		}{
			{"hotp: counter 0", "H0001", func() string { return hotpCode(0) }, nil, 1},
			{"hotp: replay of 0", "H0001", func() string { return hotpCode(0) }, ErrReplay, 11},
			{"hotp: skip ahead to 5", "H0001", func() string { return hotpCode(5) }, nil, 11},
			{"hotp: skipped 3 is used", "H0001", func() string { return hotpCode(3) }, ErrReplay, 13},
			{"hotp: wrong", "H0001", func() string { return "000000" }, ErrWrongCode, 13},
			{"hotp: beyond the window", "H0001", func() string { return hotpCode(6 + 10) }, ErrWrongCode, 13},
			{"hotp: next", "H0001", func() string { return hotpCode(6) }, nil, 1},
			{"totp: now", "T0001", func() string { return totpCode(clk.Now()) }, nil, 1},
			{"totp: now again", "T0001", func() string { return totpCode(clk.Now()) }, ErrReplay, 3},
			{"totp: next step, early", "T0001", func() string { return totpCode(clk.Now().Add(30 * time.Second)) }, nil, 3},
			{"totp: wrong", "T0001", func() string { return "00000000" }, ErrWrongCode, 3},
			{"pin: wrong PIN", "HPIN", func() string { return hotpCode(0) + "47111" }, ErrWrongCode, 1 + 10},
			{"pin: code and PIN", "HPIN", func() string { return hotpCode(0) + "47110" }, nil, 1 + 10},
			{"pin: next code and PIN", "HPIN", func() string { return hotpCode(1) + "47110" }, nil, 1 + 11},
		}
		for _, st := range steps {
			tok, err := svc.TokenBySerial(ctx, st.serial, "")
			if err != nil {
				t.Fatal(err)
			}
			macs, calls := h.macs.Load(), h.calls.Load()
			_, err = svc.Verify(ctx, tok, st.code())
			if st.want == nil && err != nil || st.want != nil && !errors.Is(err, st.want) {
				t.Fatalf("%s: error %v, want %v", st.name, err, st.want)
			}
			gotCalls := h.calls.Load() - calls
			if st.serial == "HPIN" {
				gotCalls-- // the PIN's own HMAC
			}
			if got := h.macs.Load() - macs; got != st.macs || gotCalls != 1 {
				t.Errorf("%s: %d HMACs in %d calls, want %d in 1", st.name, got, gotCalls, st.macs)
			}
		}
	})
}
