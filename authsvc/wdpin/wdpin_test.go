package wdpin_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/atm"
	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/passport"
	"github.com/egate-bank/egate/authsvc/wdpin"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

func TestMain(m *testing.M) { hsmtest.Main(m) }

const pan = "6222020000000001"

// TestVerify sets a PIN, then checks blocks made as the PIN pad makes them
// (atm.EncipherPINBlock4 under the ATM's key) on both engines: the right
// PIN passes and gives its attempt back; a wrong one is counted up to the
// passport's lock; a block under another key or for another account is a
// wrong PIN; no PIN set and bad PINs to set are refused; the table holds
// no digit of the PIN.
func TestVerify(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		h := hsmtest.Open(t)
		key, other := make([]byte, 32), make([]byte, 32)
		rand.Read(key)
		rand.Read(other)
		atmID := "ATM-WDPIN-" + strings.ToUpper(t.Name()[len(t.Name())-6:])
		ref := hsm.PINKeyLabel(atmID)
		if _, err := h.ImportPINKey(ctx, ref, key); err != nil {
			t.Fatal(err)
		}
		pp, err := passport.New(db, passport.Config{AllowWeakArgon2: true, MaxFailures: 3,
			Argon2: passport.Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}},
			[]byte("0123456789abcdef0123456789abcdef"), time.Now, passport.Hooks{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := pp.Register(ctx, passport.NewCustomer{LoginName: "wdpin", Mobile: "13800138000", ReservedMessage: "red lantern", Password: "Correct-Horse-7-Battery"})
		if err != nil {
			t.Fatal(err)
		}
		s, err := wdpin.New(wdpin.Options{DB: db, HSM: h, Attempts: pp})
		if err != nil {
			t.Fatal(err)
		}
		block := func(k []byte, pin, acct string) [16]byte {
			b, err := atm.EncipherPINBlock4(k, pin, acct)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		if err := s.Verify(ctx, c.PassportID, ref, block(key, "204816", pan), pan); !errors.Is(err, wdpin.ErrNoPIN) {
			t.Fatalf("no PIN set: %v, want ErrNoPIN", err)
		}
		for _, bad := range []string{"123", "1234567890123", "12a4", ""} {
			if err := s.Set(ctx, c.PassportID, []byte(bad)); !errors.Is(err, wdpin.ErrBadPIN) {
				t.Fatalf("Set(%d chars) = %v, want ErrBadPIN", len(bad), err)
			}
		}
		if err := s.Set(ctx, c.PassportID, []byte("204816")); err != nil {
			t.Fatal(err)
		}
		var pvv []byte
		if err := db.QueryRow(ctx, `SELECT pvv FROM atm_withdrawal_pins WHERE passport_id = ?`, c.PassportID).Scan(&pvv); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(pvv, []byte("204816")) || len(pvv) != 32 {
			t.Fatalf("stored %d bytes holding the PIN?", len(pvv))
		}
		failures := func() int {
			n, err := pp.Failures(ctx, "pid:"+c.PassportID, wdpin.Factor)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		cases := []struct {
			name     string
			block    [16]byte
			want     error
			failures int
		}{
			{"right PIN", block(key, "204816", pan), nil, 0},
			{"wrong PIN", block(key, "204817", pan), wdpin.ErrWrongPIN, 1},
			{"right PIN gives its attempt back", block(key, "204816", pan), nil, 1},
			// Under another key or bound to another account the block
			// opens to a field that is not format 4 (a chance below
			// 10^-6 that it parses): nothing was compared, nothing counted.
			{"another ATM's key", block(other, "204816", pan), wdpin.ErrBlock, 1},
			{"bound to another account", block(key, "204816", "6222020000000002"), wdpin.ErrBlock, 1},
			{"wrong PIN again", block(key, "1111", pan), wdpin.ErrWrongPIN, 2},
			{"wrong PIN, the last attempt", block(key, "2222", pan), wdpin.ErrWrongPIN, 3},
			{"locked, even the right PIN", block(key, "204816", pan), authn.ErrLocked, 3},
		}
		for _, tc := range cases {
			err := s.Verify(ctx, c.PassportID, ref, tc.block, pan)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
			}
			if err != nil && strings.ContainsAny(err.Error(), "0123456789") && !errors.Is(err, authn.ErrLocked) {
				t.Fatalf("%s: the error has digits: %v", tc.name, err)
			}
			if got := failures(); got != tc.failures {
				t.Fatalf("%s: %d failures counted, want %d", tc.name, got, tc.failures)
			}
		}
		// Setting a new PIN clears the lock.
		if err := s.Set(ctx, c.PassportID, []byte("8899")); err != nil {
			t.Fatal(err)
		}
		if err := s.Verify(ctx, c.PassportID, ref, block(key, "8899", pan), pan); err != nil {
			t.Fatalf("after a new PIN: %v", err)
		}
	})
}

// TestCheckNew: the rules for a PIN a customer or the branch chooses.
func TestCheckNew(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, pin string
		want      error
	}{
		{"good", "385017", nil},
		{"good with a short run inside", "123459", nil},
		{"one digit repeated", "000000", wdpin.ErrWeakPIN},
		{"a run up", "345678", wdpin.ErrWeakPIN},
		{"a run up past 9", "789012", wdpin.ErrWeakPIN},
		{"a run down", "987654", wdpin.ErrWeakPIN},
		{"a run down past 0", "210987", wdpin.ErrWeakPIN},
		{"five digits", "38501", wdpin.ErrNewPINLength},
		{"seven digits", "3850172", wdpin.ErrNewPINLength},
		{"a letter", "38501a", wdpin.ErrNewPINLength},
		{"empty", "", wdpin.ErrNewPINLength},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := wdpin.CheckNew([]byte(tc.pin))
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("CheckNew = %v, want %v", err, tc.want)
			}
			if err != nil && tc.pin != "" && strings.Contains(err.Error(), tc.pin) {
				t.Fatalf("the error carries the PIN: %v", err)
			}
		})
	}
}
