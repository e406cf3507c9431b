package main

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/egate-bank/egate/atm"
	"github.com/egate-bank/egate/authsvc"
	"github.com/egate-bank/egate/authsvc/wdpin"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/internal/config"
)

// egate admin user withdrawal-pin on both engines: without --pin-source,
// with a weak or short PIN, or for an unknown customer nothing is set and
// the PIN is never echoed; a good PIN from a file is set (a PIN pad block
// under an ATM key verifies in wdpin, the old PIN does not), audited with
// the operator, alerted, and the database holds no digit of it.
func TestAdminUserWithdrawalPIN(t *testing.T) {
	eachEngine(t, func(t *testing.T, b *opBench) {
		ctx := context.Background()
		pid := b.addCustomer(t, "alice")
		pinFile := filepath.Join(b.dir, "wd-pin")
		if err := os.WriteFile(pinFile, []byte("385017\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		b.env = append(b.env, "EGATE_TEST_WEAK=777777", "EGATE_TEST_SHORT=38501", "EGATE_TEST_OLD=204816")
		cases := []struct {
			name string
			args []string
			says string
		}{
			{"no --pin-source", []string{"alice"}, "--pin-source is required"},
			{"one digit repeated", []string{"alice", "--pin-source", "env:EGATE_TEST_WEAK"}, "too easy to guess"},
			{"five digits", []string{"alice", "--pin-source", "env:EGATE_TEST_SHORT"}, "exactly 6 digits"},
			{"unknown customer", []string{"nobody", "--pin-source", "file:" + pinFile}, "nobody"},
		}
		for _, c := range cases {
			r := b.admin(t, append([]string{"user", "withdrawal-pin"}, c.args...)...)
			if r.code == 0 || !strings.Contains(r.stderr, c.says) || strings.Contains(r.stdout+r.stderr, "777777") || strings.Contains(r.stdout+r.stderr, "385017") {
				t.Errorf("%s: %+v, want a refusal saying %q", c.name, r, c.says)
			}
		}
		db := b.open(t)
		var n int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM atm_withdrawal_pins`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("a refused PIN was stored: %d %v", n, err)
		}

		if r := b.admin(t, "user", "withdrawal-pin", "alice", "--pin-source", "env:EGATE_TEST_OLD", "--operator", "li.na"); r.code != 0 {
			t.Fatalf("old PIN: %+v", r)
		}
		r := b.admin(t, "user", "withdrawal-pin", "alice", "--pin-source", "file:"+pinFile, "--operator", "wang.fang")
		if r.code != 0 || !strings.Contains(r.stdout, "withdrawal PIN set for "+pid) || strings.Contains(r.stdout+r.stderr, "385017") {
			t.Fatalf("withdrawal-pin: %+v", r)
		}
		b.lastAudit(t, "admin.user.withdrawal-pin", map[string]string{"operator": "wang.fang", "passport_id": pid, "login_name": "alice"})

		// The PIN pad's view: a block under an ATM key, checked in the HSM.
		t.Setenv("SOFTHSM2_CONF", b.sh.ConfPath)
		hsmPIN := filepath.Join(b.dir, "hsm-pin")
		os.WriteFile(hsmPIN, []byte(benchHSMPIN), 0o600)
		h, err := hsm.Open(ctx, hsm.Config{Module: b.sh.Module, Token: benchHSMToken, PINSource: "file:" + hsmPIN})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		key := make([]byte, 32)
		rand.Read(key)
		ref := hsm.PINKeyLabel("ATM-0101")
		if _, err := h.ImportPINKey(ctx, ref, key); err != nil {
			t.Fatal(err)
		}
		pp, err := authsvc.NewPassport(ctx, db, config.Defaults().Authsvc.Passport, nil)
		if err != nil {
			t.Fatal(err)
		}
		pins, err := wdpin.New(wdpin.Options{DB: db, HSM: h, Attempts: pp})
		if err != nil {
			t.Fatal(err)
		}
		const pan = "6222020000000001"
		verify := func(pin string) error {
			blk, err := atm.EncipherPINBlock4(key, pin, pan)
			if err != nil {
				t.Fatal(err)
			}
			return pins.Verify(ctx, pid, ref, blk, pan)
		}
		if err := verify("385017"); err != nil {
			t.Errorf("the PIN set: %v", err)
		}
		if err := verify("204816"); !errors.Is(err, wdpin.ErrWrongPIN) {
			t.Errorf("the old PIN: %v, want ErrWrongPIN", err)
		}
		var alertsN int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM alerts_outbox WHERE passport_id = ? AND kind = 'tool'`, pid).Scan(&alertsN); err != nil || alertsN != 2 {
			t.Errorf("tool alerts %d %v, want 2", alertsN, err)
		}
		for _, q := range []string{`SELECT pvv FROM atm_withdrawal_pins`, `SELECT record FROM audit_log`, `SELECT body FROM alerts_outbox`} {
			rows, err := db.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var v []byte
				rows.Scan(&v)
				if strings.Contains(string(v), "385017") || strings.Contains(string(v), "204816") {
					t.Errorf("%s: a row holds the PIN", q)
				}
			}
			rows.Close()
		}
	})
}
