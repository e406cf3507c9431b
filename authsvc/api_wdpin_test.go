package authsvc

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/egate-bank/egate/atm"
	"github.com/egate-bank/egate/authsvc/alerts"
	"github.com/egate-bank/egate/authsvc/wdpin"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// PUT /api/v1/self/withdrawal-pin on both engines: a level-2 token is sent
// to step up and sets nothing; weak and malformed PINs are refused; a good
// PIN is set (the PIN pad's block under an ATM key verifies in wdpin, the
// old PIN no longer does, the wrong tries are cleared), audited and
// alerted, and no row of the database holds its digits.
func TestSelfWithdrawalPIN(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		fe := newFactorEnv(t, db)
		h := hsmtest.Open(t)
		pins, err := wdpin.New(wdpin.Options{DB: db, HSM: h, Attempts: fe.srv.Passport()})
		if err != nil {
			t.Fatal(err)
		}
		fe.srv.SetSelfService(SelfService{Tools: fe.set, WithdrawalPINs: pins})
		seed := fe.enrollTOTP(t, "TOTP-0001")

		level2 := func() string {
			_, a, r := fe.loginAt(t, "2")
			return fe.exchange(a, a.codeFrom(t, r)).access
		}()
		level3 := func() string {
			b := fe.browser()
			a := newAuthz("ebank", ebankRedirect)
			a.extra.Set("acr_values", "urn:egate:loa:3")
			r := b.passwordLogin(a, "alice", testPassword)
			id := formID(t, r.body)
			if m := factorRE.FindStringSubmatch(r.body); m == nil || m[1] != "otp" {
				t.Fatalf("want the token page: %d %s", r.status, r.body)
			}
			r = b.follow(b.post("/login/factor", url.Values{"id": {id}, "response": {totp(t, seed, fe.clk.Now())}}))
			return fe.exchange(a, a.codeFrom(t, r)).access
		}()
		put := func(tok, body string) (int, string) {
			t.Helper()
			req, _ := http.NewRequest("PUT", fe.ts.URL+"/api/v1/self/withdrawal-pin", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var e struct {
				Error struct{ Code string } `json:"error"`
			}
			json.Unmarshal(b, &e)
			return resp.StatusCode, e.Error.Code
		}

		// An ATM's PIN pad key, to check the PIN as an ATM would.
		key := make([]byte, 32)
		rand.Read(key)
		ref := hsm.PINKeyLabel("ATM-SELF-" + strings.ToUpper(t.Name()[len(t.Name())-6:]))
		if _, err := h.ImportPINKey(ctx, ref, key); err != nil {
			t.Fatal(err)
		}
		const pan = "6222020000000001"
		verify := func(pin string) error {
			b, err := atm.EncipherPINBlock4(key, pin, pan)
			if err != nil {
				t.Fatal(err)
			}
			return pins.Verify(ctx, fe.pid, ref, b, pan)
		}

		cases := []struct {
			name, tok, body string
			status          int
			code            string
		}{
			{"level 2", level2, `{"pin":"385017"}`, 403, "step_up_required"},
			{"one digit repeated", level3, `{"pin":"777777"}`, 422, "weak_pin"},
			{"a run up", level3, `{"pin":"123456"}`, 422, "weak_pin"},
			{"a run up past 9", level3, `{"pin":"890123"}`, 422, "weak_pin"},
			{"a run down", level3, `{"pin":"654321"}`, 422, "weak_pin"},
			{"five digits", level3, `{"pin":"38501"}`, 400, "invalid_request"},
			{"seven digits", level3, `{"pin":"3850172"}`, 400, "invalid_request"},
			{"not digits", level3, `{"pin":"38501a"}`, 400, "invalid_request"},
			{"no JSON", level3, `pin=385017`, 400, "invalid_request"},
		}
		for _, c := range cases {
			if st, code := put(c.tok, c.body); st != c.status || code != c.code {
				t.Errorf("%s: %d %q, want %d %q", c.name, st, code, c.status, c.code)
			}
		}
		if set, err := pins.IsSet(ctx, fe.pid); err != nil || set {
			t.Fatalf("a refused PIN was set: %v %v", set, err)
		}

		// The old PIN, then a wrong try on it.
		if err := pins.Set(ctx, fe.pid, []byte("204816")); err != nil {
			t.Fatal(err)
		}
		if err := verify("204817"); !errors.Is(err, wdpin.ErrWrongPIN) {
			t.Fatalf("wrong PIN: %v", err)
		}
		if st, code := put(level3, `{"pin":"385017"}`); st != 204 {
			t.Fatalf("good PIN: %d %q", st, code)
		}
		if n, err := fe.srv.Passport().Failures(ctx, "pid:"+fe.pid, wdpin.Factor); err != nil || n != 0 {
			t.Errorf("wrong tries after the new PIN: %d %v, want 0", n, err)
		}
		if err := verify("385017"); err != nil {
			t.Errorf("the new PIN: %v", err)
		}
		if err := verify("204816"); !errors.Is(err, wdpin.ErrWrongPIN) {
			t.Errorf("the old PIN: %v, want ErrWrongPIN", err)
		}

		var audits int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM audit_log WHERE kind = 'self.withdrawal_pin'`).Scan(&audits); err != nil || audits != 1 {
			t.Errorf("audit records %d %v, want 1", audits, err)
		}
		list, err := fe.srv.Alerts().ForCustomer(ctx, fe.pid, 50)
		if err != nil {
			t.Fatal(err)
		}
		var set int
		for _, a := range list {
			var b alerts.Tool
			if a.Kind == alerts.KindTool && json.Unmarshal(a.Body, &b) == nil && b.Event == "set" && b.Tool == wdpin.Factor {
				set++
			}
		}
		if set != 1 {
			t.Errorf("withdrawal PIN alerts %d, want 1", set)
		}
		// No row of these tables holds the PIN's digits.
		for _, q := range []string{
			`SELECT pvv FROM atm_withdrawal_pins`,
			`SELECT record FROM audit_log`,
			`SELECT body FROM alerts_outbox`,
		} {
			rows, err := db.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var b []byte
				if err := rows.Scan(&b); err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(b), "385017") {
					t.Errorf("%s: a row holds the PIN", q)
				}
			}
			rows.Close()
		}
	})
}
