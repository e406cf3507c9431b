package oath

import (
	"context"
	"crypto"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// TestVerifyCodeRefusals: wherever the one-statement count-and-load cannot
// take the attempt, VerifyCode answers as the general path does and counts
// an attempt only where the general path would.
func TestVerifyCodeRefusals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db, Config{MaxFailures: 3, LockFor: time.Minute})
		// D0001 holds two keys: without a key id its serial is ambiguous.
		two := []*pskc.Key{
			{ID: "1", Serial: "D0001", Params: otp.Params{Kind: otp.KindHOTP, Hash: crypto.SHA1, Digits: 6}, Secret: append([]byte(nil), seed...)},
			{ID: "2", Serial: "D0001", Params: otp.Params{Kind: otp.KindHOTP, Hash: crypto.SHA1, Digits: 6}, Secret: append([]byte(nil), seed...)},
		}
		path := filepath.Join(t.TempDir(), "two.pskc")
		writePSKC(t, path, two, pskc.WriterOptions{})
		if _, err := f.svc.ImportPSKC(ctx, opener(path), ImportOptions{}); err != nil {
			t.Fatal(err)
		}
		// A customer with two code tokens: by customer it is ambiguous.
		if err := f.svc.Assign(ctx, "D0001", "1", "P-TWO"); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.Assign(ctx, "D0001", "2", "P-TWO"); err != nil {
			t.Fatal(err)
		}
		failures := func(serial, keyID string) int {
			t.Helper()
			tok, err := f.svc.TokenBySerial(ctx, serial, keyID)
			if err != nil {
				t.Fatal(err)
			}
			return tok.Failures
		}
		set := func(q string, args ...any) {
			t.Helper()
			if _, err := db.Exec(ctx, q, args...); err != nil {
				t.Fatal(err)
			}
		}
		cases := []struct {
			name    string
			prepare func()
			l       Lookup
			code    string
			want    error
			serial  string // whose failures to watch
			keyID   string
			counted int // attempts the call must add
		}{
			{"unknown serial", nil, Lookup{Serial: "NOPE"}, "123456", ErrUnknownToken, "H0001", "", 0},
			{"unknown customer", nil, Lookup{PassportID: "nobody"}, "123456", ErrUnknownToken, "H0001", "", 0},
			{"both serial and customer", nil, Lookup{Serial: "H0001", PassportID: "P-H0001"}, "123456", ErrMalformed, "H0001", "", 0},
			{"ambiguous serial", nil, Lookup{Serial: "D0001"}, hotpCode(0), ErrAmbiguous, "D0001", "1", 0},
			{"ambiguous customer", nil, Lookup{PassportID: "P-TWO"}, hotpCode(0), ErrAmbiguous, "D0001", "2", 0},
			{"serial and key id pick one", nil, Lookup{Serial: "D0001", KeyID: "2"}, hotpCode(0), nil, "D0001", "2", 0},
			{"too few digits", nil, Lookup{Serial: "H0001"}, "12345", ErrMalformed, "H0001", "", 0},
			{"too many digits", nil, Lookup{Serial: "H0001"}, "1234567", ErrMalformed, "H0001", "", 0},
			{"not digits", nil, Lookup{Serial: "H0001"}, "12a456", ErrMalformed, "H0001", "", 0},
			{"OCRA token needs a challenge", nil, Lookup{Serial: "O0001"}, "12345678", ErrMalformed, "O0001", "", 0},
			{"wrong code counts", nil, Lookup{Serial: "H0001"}, "000000", ErrWrongCode, "H0001", "", 1},
			{"expired token", func() {
				set(`UPDATE otp_tokens SET not_after_ms = ? WHERE serial = 'T0001'`, f.clk.Now().Add(-time.Second).UnixMilli())
			}, Lookup{Serial: "T0001"}, totpCode(f.clk.Now()), ErrRevoked, "T0001", "", 0},
			{"revoked token", func() {
				if err := f.svc.Revoke(ctx, "D0001", "1"); err != nil {
					t.Fatal(err)
				}
			}, Lookup{Serial: "D0001", KeyID: "1"}, hotpCode(0), ErrRevoked, "D0001", "1", 0},
			{"locked token", func() {
				set(`UPDATE otp_tokens SET failures = 3, locked_until_ms = ? WHERE serial = 'H0001'`, f.clk.Now().Add(time.Minute).UnixMilli())
			}, Lookup{Serial: "H0001"}, hotpCode(0), authn.ErrLocked, "H0001", "", 0},
			{"lock ran out: counted and accepted", func() {
				f.clk.Add(2 * time.Minute)
			}, Lookup{Serial: "H0001"}, hotpCode(0), nil, "H0001", "", -3}, // success clears the 3
		}
		for _, tc := range cases {
			if tc.prepare != nil {
				tc.prepare()
			}
			before := failures(tc.serial, tc.keyID)
			_, err := f.svc.VerifyCode(ctx, tc.l, tc.code)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("%s: error %v, want %v", tc.name, err, tc.want)
			}
			if n := failures(tc.serial, tc.keyID) - before; n != tc.counted {
				t.Errorf("%s: %d attempts counted, want %d", tc.name, n, tc.counted)
			}
		}
	})
}

// TestVerifyCodeCountsBeforeComparing: the attempt is in the database when
// the HSM computes the codes, and a right code clears it afterwards.
func TestVerifyCodeCountsBeforeComparing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db, Config{})
		var seen []int
		f.svc.hsm = hookHSM{HSM: f.hsm, before: func() {
			var n int
			if err := db.QueryRow(ctx, `SELECT failures FROM otp_tokens WHERE serial = 'H0001'`).Scan(&n); err != nil {
				t.Error(err)
			}
			seen = append(seen, n)
		}}
		if _, err := f.svc.VerifyCode(ctx, Lookup{Serial: "H0001"}, "000000"); !errors.Is(err, ErrWrongCode) {
			t.Fatal(err)
		}
		if _, err := f.svc.VerifyCode(ctx, Lookup{PassportID: "P-H0001"}, hotpCode(0)); err != nil {
			t.Fatal(err)
		}
		if len(seen) != 2 || seen[0] != 1 || seen[1] != 2 {
			t.Fatalf("failures seen by the HSM call: %v, want [1 2]", seen)
		}
		f.reload(t, &f.hotp)
		if f.hotp.Failures != 0 || f.hotp.Counter != 1 {
			t.Fatalf("after success: failures %d, counter %d; want 0, 1", f.hotp.Failures, f.hotp.Counter)
		}
	})
}

type hookHSM struct {
	HSM
	before func()
}

func (h hookHSM) HMACWrapped(ctx context.Context, label string, wrapped []byte, hash crypto.Hash, msgs [][]byte) ([][]byte, error) {
	h.before()
	return h.HSM.HMACWrapped(ctx, label, wrapped, hash, msgs)
}

// TestBookkeepingSurvivesCancel: a request cancelled while the HSM computes
// (the client went away) still records its failure and the timed lockout,
// so the token is not left with the failures of a lock but no lock end.
func TestBookkeepingSurvivesCancel(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db, Config{MaxFailures: 1, LockFor: time.Minute})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		f.svc.hsm = hookHSM{HSM: f.hsm, before: cancel}
		if _, err := f.svc.VerifyCode(ctx, Lookup{Serial: "H0001"}, "000000"); !errors.Is(err, ErrWrongCode) {
			t.Fatalf("wrong code, cancelled during the HSM call: %v", err)
		}
		var failures int
		var until int64
		if err := db.QueryRow(context.Background(), `SELECT failures, locked_until_ms FROM otp_tokens WHERE serial = 'H0001'`).Scan(&failures, &until); err != nil {
			t.Fatal(err)
		}
		if want := f.clk.Now().Add(time.Minute).UnixMilli(); failures != 1 || until != want {
			t.Fatalf("failures %d, locked until %d; want 1, %d", failures, until, want)
		}
	})
}
