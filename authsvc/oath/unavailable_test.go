package oath

import (
	"context"
	"crypto"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// downHSM fails every HMAC while down is set, as devices/hsm does while the
// HSM is unreachable.
type downHSM struct {
	HSM
	down atomic.Bool
}

var errHSMDown = errors.New(`HSM unavailable: token "egate": pkcs11: 0x32: CKR_DEVICE_REMOVED`)

func (h *downHSM) HMACWrapped(ctx context.Context, label string, wrapped []byte, hash crypto.Hash, msgs [][]byte) ([][]byte, error) {
	if h.down.Load() {
		return nil, errHSMDown
	}
	return h.HSM.HMACWrapped(ctx, label, wrapped, hash, msgs)
}

// TestHSMErrorsCountNothing: an HSM error during a check, on every way in,
// is ErrUnavailable (503 on the HTTP API), counts no failure and leaves no
// lock, however often it happens; the challenge of a factor stays open, and
// once the HSM is back the right code is accepted.
func TestHSMErrorsCountNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db, Config{MaxFailures: 3, LockFor: time.Minute})
		h := &downHSM{HSM: f.hsm}
		f.svc.hsm = h
		srv := httptest.NewServer(f.svc.Handler())
		defer srv.Close()
		fac := Factor{S: f.svc}
		su, _ := otp.ParseSuite("OCRA-1:HOTP-SHA256-8:C-QN16")
		ocraKey := otp.SoftwareMAC{Key: []byte("12345678901234567890123456789012")}
		hotpNext := uint64(0)
		cases := []struct {
			name   string
			serial string
			// try answers rightly; it runs while the HSM is down and once after.
			try func(t *testing.T) error
		}{
			{"Verify", "H0001", func(t *testing.T) error {
				f.reload(t, &f.hotp)
				_, err := f.svc.Verify(ctx, f.hotp, hotpCode(hotpNext))
				return err
			}},
			{"VerifyCode by serial", "H0001", func(t *testing.T) error {
				_, err := f.svc.VerifyCode(ctx, Lookup{Serial: "H0001"}, hotpCode(hotpNext))
				return err
			}},
			{"VerifyCode by customer", "H0001", func(t *testing.T) error {
				_, err := f.svc.VerifyCode(ctx, Lookup{PassportID: "P-H0001"}, hotpCode(hotpNext))
				return err
			}},
			{"Resync", "T0001", func(t *testing.T) error {
				f.reload(t, &f.totp)
				at := f.clk.Now().Add(20 * time.Minute)
				_, err := f.svc.Resync(ctx, f.totp, totpCode(at), totpCode(at.Add(30*time.Second)))
				return err
			}},
			{"HTTP verify", "H0001", func(t *testing.T) error {
				resp, err := http.Post(srv.URL+"/v1/otp/verify", "application/json", strings.NewReader(`{"serial":"H0001","code":"`+hotpCode(hotpNext)+`"}`))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				switch {
				case resp.StatusCode == http.StatusOK:
					return nil
				case resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(b), `"unavailable"`):
					if strings.Contains(string(b), "CKR_") || strings.Contains(string(b), "egate") {
						t.Fatalf("503 body carries internals: %s", b)
					}
					return ErrUnavailable
				}
				t.Fatalf("HTTP verify: %d %s", resp.StatusCode, b)
				return nil
			}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h.down.Store(true)
				for i := range 5 { // more than MaxFailures
					if err := tc.try(t); !errors.Is(err, ErrUnavailable) {
						t.Fatalf("attempt %d with the HSM down: %v, want ErrUnavailable", i, err)
					}
				}
				checkClean(t, db, tc.serial)
				h.down.Store(false)
				if err := tc.try(t); err != nil {
					t.Fatalf("right code with the HSM back: %v", err)
				}
				if tc.serial == "H0001" {
					hotpNext++
				}
				checkClean(t, db, tc.serial)
			})
		}
		t.Run("login factor, HOTP", func(t *testing.T) {
			ch, err := fac.Begin(ctx, authn.BeginRequest{PassportID: "P-H0001", Purpose: authn.PurposeLogin})
			if err != nil {
				t.Fatal(err)
			}
			req := authn.VerifyRequest{PassportID: "P-H0001", ChallengeID: ch.ID, Response: []byte(hotpCode(hotpNext))}
			h.down.Store(true)
			for i := range 5 {
				if _, err := fac.Verify(ctx, req); !errors.Is(err, authn.ErrUnavailable) {
					t.Fatalf("attempt %d with the HSM down: %v, want authn.ErrUnavailable", i, err)
				}
			}
			checkClean(t, db, "H0001")
			h.down.Store(false)
			if _, err := fac.Verify(ctx, req); err != nil {
				t.Fatalf("the same challenge and code with the HSM back: %v", err)
			}
			hotpNext++
			checkClean(t, db, "H0001")
		})
		t.Run("transaction, OCRA", func(t *testing.T) {
			txHash := []byte("intent-hash")
			oc, err := f.svc.BeginOCRA(ctx, "P-O0001", authn.PurposeTransaction, txHash, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, _ := su.Compute(ctx, ocraKey, otp.OCRAInput{Question: oc.Question})
			h.down.Store(true)
			for i := range 5 {
				if _, err := f.svc.VerifyOCRA(ctx, "P-O0001", oc.ID, txHash, resp); !errors.Is(err, ErrUnavailable) {
					t.Fatalf("attempt %d with the HSM down: %v, want ErrUnavailable", i, err)
				}
			}
			checkClean(t, db, "O0001")
			h.down.Store(false)
			if _, err := f.svc.VerifyOCRA(ctx, "P-O0001", oc.ID, txHash, resp); err != nil {
				t.Fatalf("the same challenge with the HSM back: %v", err)
			}
			checkClean(t, db, "O0001")
		})
	})
}

func checkClean(t *testing.T, db *store.DB, serial string) {
	t.Helper()
	var failures int
	var until int64
	if err := db.QueryRow(context.Background(), `SELECT failures, locked_until_ms FROM otp_tokens WHERE serial = ?`, serial).Scan(&failures, &until); err != nil {
		t.Fatal(err)
	}
	if failures != 0 || until != 0 {
		t.Fatalf("token %s: failures %d, locked until %d; want 0, 0", serial, failures, until)
	}
}

// TestStuckCountLocksForLockFor: a token left at MaxFailures without a
// lockout end (as HSM errors used to leave it, for good) gets the
// configured lockout at the next attempt, and it runs out.
func TestStuckCountLocksForLockFor(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db, Config{MaxFailures: 5, LockFor: time.Minute})
		if _, err := db.Exec(ctx, `UPDATE otp_tokens SET failures = 5, locked_until_ms = 0 WHERE serial = 'H0001'`); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.VerifyCode(ctx, Lookup{Serial: "H0001"}, hotpCode(0))
		var le *authn.LockedError
		if !errors.As(err, &le) || le.Until.IsZero() {
			t.Fatalf("right code on a stuck token: %v, want a lockout with an end", err)
		}
		var until int64
		if err := db.QueryRow(ctx, `SELECT locked_until_ms FROM otp_tokens WHERE serial = 'H0001'`).Scan(&until); err != nil {
			t.Fatal(err)
		}
		if want := f.clk.Now().Add(time.Minute).UnixMilli(); until != want {
			t.Fatalf("locked until %d, want %d", until, want)
		}
		f.clk.Add(61 * time.Second)
		if _, err := f.svc.VerifyCode(ctx, Lookup{Serial: "H0001"}, hotpCode(0)); err != nil {
			t.Fatalf("right code after the lockout ran out: %v", err)
		}
		checkClean(t, db, "H0001")
	})
}
