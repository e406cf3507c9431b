package txauth

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/egate-bank/egate/authsvc/alerts"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// TestBalanceAlertsAndPreferences: a platform's balance alert reaches the
// customer's inbox once per movement id, by SMS only from the customer's
// minimum amount on; a customer who turned a kind off gets none; bad
// alerts are refused and post nothing. Risk alerts follow the same
// preferences.
func TestBalanceAlertsAndPreferences(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db, rigOpt{})
		ctx := context.Background()
		c := r.customer(t, "gridcard")
		box := alerts.New(db, nil)
		balances := func() []alerts.Balance {
			all, err := box.ForCustomer(ctx, c.pid, 100)
			if err != nil {
				t.Fatal(err)
			}
			var out []alerts.Balance
			for _, a := range all {
				if a.Kind == alerts.KindBalance {
					var b alerts.Balance
					json.Unmarshal(a.Body, &b)
					out = append(out, b)
				}
			}
			return out
		}
		p, err := r.c.SetPreferences(ctx, txclient.Preferences{Customer: c.pid, Risk: true, Balance: true, SMSMinAmount: 1_000 * yuan})
		if err != nil || p.SMSMinAmount != 1_000*yuan {
			t.Fatalf("%+v %v", p, err)
		}
		mv := txclient.BalanceAlert{ID: "mv-1", Customer: c.pid, Account: c.payer, Amount: -2_000 * yuan, Balance: 8_000 * yuan, Currency: "CNY", Description: "transfer"}
		for i, want := range []bool{true, false} {
			res, err := r.c.Balance(ctx, mv)
			if err != nil || res.Posted != want {
				t.Fatalf("post %d: %+v %v", i, res, err)
			}
		}
		small := mv
		small.ID, small.Amount = "mv-2", -50*yuan
		if res, err := r.c.Balance(ctx, small); err != nil || !res.Posted {
			t.Fatalf("%+v %v", res, err)
		}
		bs := balances()
		if len(bs) != 2 {
			t.Fatalf("%d balance alerts, want 2", len(bs))
		}
		sms := map[int64]bool{}
		for _, b := range bs {
			sms[b.Amount] = b.SMS
			if b.Account != Mask(c.payer) {
				t.Fatalf("account %q not masked", b.Account)
			}
		}
		if !sms[-2_000*yuan] || sms[-50*yuan] {
			t.Fatalf("SMS flags %v: want SMS from 1,000 yuan on only", sms)
		}
		for _, tc := range []struct {
			name string
			edit func(*txclient.BalanceAlert)
			code string
		}{
			{"zero", func(a *txclient.BalanceAlert) { a.Amount = 0 }, "bad_amount"},
			{"overflowing", func(a *txclient.BalanceAlert) { a.Amount = 1 << 62 }, "bad_amount"},
			{"currency", func(a *txclient.BalanceAlert) { a.Currency = "USD" }, "bad_currency"},
			{"no id", func(a *txclient.BalanceAlert) { a.ID = "" }, "missing_field"},
			{"someone else's account", func(a *txclient.BalanceAlert) { a.Account = "6222000000000777" }, "payer_not_customers"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a := mv
				a.ID = "bad-" + tc.name
				tc.edit(&a)
				_, err := r.c.Balance(ctx, a)
				wantCode(t, err, tc.code)
			})
		}
		if len(balances()) != 2 {
			t.Fatal("a refused alert was posted")
		}
		if _, err := r.c.SetPreferences(ctx, txclient.Preferences{Customer: c.pid, SMSMinAmount: -1}); txclient.Code(err) != "bad_amount" {
			t.Fatalf("negative minimum: %v", err)
		}
		// Everything off: no balance alert, no risk alert.
		if _, err := r.c.SetPreferences(ctx, txclient.Preferences{Customer: c.pid}); err != nil {
			t.Fatal(err)
		}
		off := mv
		off.ID = "mv-3"
		if res, err := r.c.Balance(ctx, off); err != nil || res.Posted {
			t.Fatalf("%+v %v", res, err)
		}
		in := c.intent(10*yuan, "blocked")
		in.Payee = "6222000000009999"
		if d, err := r.c.Authorize(ctx, in); err != nil || d.Decision != txclient.Deny {
			t.Fatalf("%+v %v", d, err)
		}
		if n := len(r.riskAlerts(t, c.pid)); n != 0 {
			t.Fatalf("%d risk alerts with risk alerts off", n)
		}
	})
}

// TestReviewReleasesTheIntent: an intent held for review refuses a
// challenge until staff approve it; then it is proved at its level like
// any other; a refused one stays refused.
func TestReviewReleasesTheIntent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db, rigOpt{})
		ctx := context.Background()
		c := r.customer(t, "gridcard", "otp")
		in := c.intent(123400, "held")
		d, err := r.c.Authorize(ctx, in)
		if err != nil || d.Decision != txclient.Review || d.State != txclient.StateReview {
			t.Fatalf("%+v %v", d, err)
		}
		_, err = r.c.Challenge(ctx, d.Intent, txclient.ChallengeRequest{Factor: "otp"})
		wantCode(t, err, "under_review")
		if _, err := r.svc.Review(ctx, d.Intent, true, "alice", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := r.svc.Review(ctx, d.Intent, true, "alice", ""); err == nil {
			t.Fatal("approved twice")
		}
		got, _ := r.c.Get(ctx, d.Intent)
		if got.State != txclient.StateAllowed || got.Level != 3 || len(got.Tools) != 1 || got.Tools[0].Name != "otp" {
			t.Fatalf("%+v", got)
		}
		_, err = r.prove(t, c, in, "gridcard")
		wantCode(t, err, "level_too_low")
		g, err := r.prove(t, c, in, "otp")
		if err != nil || g.Level != 3 {
			t.Fatalf("%+v %v", g, err)
		}
		in2 := c.intent(123400, "held-2")
		d2, _ := r.c.Authorize(ctx, in2)
		if _, err := r.svc.Review(ctx, d2.Intent, false, "bob", "fraud call"); err != nil {
			t.Fatal(err)
		}
		_, err = r.c.Challenge(ctx, d2.Intent, txclient.ChallengeRequest{Factor: "otp"})
		wantCode(t, err, "refused")
	})
}
