package alerts

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

func TestPostPendingAck(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
		o := New(db, func() time.Time { now = now.Add(time.Second); return now })
		id1, err := o.Post(ctx, "P1", KindLogin, Login{Client: "ebank", IP: "10.1.1.1", Device: "Firefox", Level: 1})
		if err != nil {
			t.Fatal(err)
		}
		id2, _ := o.Post(ctx, "P2", KindLogin, Login{Client: "mall", IP: "10.1.1.2"})
		for _, tc := range []struct {
			consumer string
			ack      []string
			want     []string
		}{
			{ConsumerSMS, nil, []string{id1, id2}},
			{ConsumerMessenger, []string{id1, id1}, []string{id2}},
			{ConsumerSMS, []string{id2}, []string{id1}},
		} {
			for _, id := range tc.ack {
				if err := o.Ack(ctx, tc.consumer, id); err != nil {
					t.Fatal(err)
				}
			}
			got, err := o.Pending(ctx, tc.consumer, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%s: got %d alerts, want %v", tc.consumer, len(got), tc.want)
			}
			for i := range got {
				if got[i].ID != tc.want[i] {
					t.Fatalf("%s: got %s want %s", tc.consumer, got[i].ID, tc.want[i])
				}
			}
		}
		inbox, _ := o.ForCustomer(ctx, "P1", 5)
		var l Login
		if len(inbox) != 1 || json.Unmarshal(inbox[0].Body, &l) != nil || l.Client != "ebank" || l.IP != "10.1.1.1" {
			t.Fatalf("inbox: %+v", inbox)
		}
	})
}

// TestPostLoginFailedCoalesces: failed-login alerts are one per customer
// per clock hour, whatever the number of failures or replicas; lockouts are
// never coalesced with them.
func TestPostLoginFailedCoalesces(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 8, 10, 0, 0, time.UTC)
		clock := func() time.Time { return now }
		a, b := New(db, clock), New(db, clock) // two replicas
		for _, tc := range []struct {
			name    string
			at      time.Time
			o       *Outbox
			pid     string
			posted  bool
			pending int // alerts of all customers so far
		}{
			{"first failure", now, a, "P1", true, 1},
			{"same hour", now.Add(20 * time.Minute), a, "P1", false, 1},
			{"same hour, other replica", now.Add(40 * time.Minute), b, "P1", false, 1},
			{"other customer", now.Add(40 * time.Minute), b, "P2", true, 2},
			{"next hour", now.Add(55 * time.Minute), a, "P1", true, 3},
		} {
			now = tc.at
			posted, err := tc.o.PostLoginFailed(ctx, tc.pid, LoginFailed{Time: now, Client: "ebank", IP: "10.0.0.1", Factor: "password", Remaining: 4})
			if err != nil || posted != tc.posted {
				t.Fatalf("%s: posted %v (%v), want %v", tc.name, posted, err, tc.posted)
			}
			if got, _ := a.Pending(ctx, ConsumerSMS, 100); len(got) != tc.pending {
				t.Fatalf("%s: %d alerts, want %d", tc.name, len(got), tc.pending)
			}
		}
		for range 2 {
			if err := a.PostLocked(ctx, "P1", Locked{Time: now, Client: "ebank", Factor: "password"}); err != nil {
				t.Fatal(err)
			}
		}
		kinds := map[string]int{}
		got, _ := a.ForCustomer(ctx, "P1", 100)
		for _, al := range got {
			kinds[al.Kind]++
		}
		if kinds[KindLoginFailed] != 2 || kinds[KindLocked] != 2 || len(got) != 4 {
			t.Fatalf("P1's alerts: %v", kinds)
		}
	})
}

// TestSMSTextOnePerSitting: a password login and every failed login and
// lockout go by SMS; logins by single sign-on and step-ups inside the
// session stay in the inbox.
func TestSMSTextOnePerSitting(t *testing.T) {
	at := time.Date(2026, 3, 1, 8, 10, 0, 0, time.UTC)
	body := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	for _, tc := range []struct {
		name string
		a    Alert
		sms  bool
		has  string
	}{
		{"password login", Alert{Kind: KindLogin, Body: body(Login{Time: at, Client: "ebank", IP: "10.0.0.1"})}, true, "Login to ebank at 2026-03-01 08:10 with your password"},
		{"single sign-on", Alert{Kind: KindLogin, Body: body(Login{Time: at, Client: "mall", SSO: true})}, false, ""},
		{"step-up in the session", Alert{Kind: KindLogin, Body: body(Login{Time: at, Client: "messenger", StepUp: true})}, false, ""},
		{"failed login", Alert{Kind: KindLoginFailed, Body: body(LoginFailed{Time: at, Client: "ebank", IP: "10.9.9.9", Factor: "password"})}, true, "Failed sign-in to ebank at 2026-03-01 08:10 from 10.9.9.9: wrong password"},
		{"lockout until midnight", Alert{Kind: KindLocked, Body: body(Locked{Time: at, Factor: "password", IP: "10.9.9.9", Until: at.Add(16 * time.Hour)})}, true, "it unlocks at 2026-03-02 00:10"},
		{"operator lock", Alert{Kind: KindLocked, Body: body(Locked{Time: at, Factor: "password"})}, true, "only the bank's service desk"},
		{"balance", Alert{Kind: KindBalance, Body: body(map[string]int{"x": 1})}, false, ""},
		{"balance by SMS", Alert{Kind: KindBalance, Body: body(Balance{Time: at, Account: "6222…0001", Amount: -123456, Balance: 1000000, Currency: "CNY", Description: "mall", SMS: true})}, true,
			"Account 6222…0001 -1,234.56 yuan (mall) at 2026-03-01 08:10; balance 10,000.00 yuan."},
		{"balance below the SMS minimum", Alert{Kind: KindBalance, Body: body(Balance{Time: at, Account: "6222…0001", Amount: 100, Currency: "CNY"})}, false, ""},
		{"risk held for review", Alert{Kind: KindTxRisk, Body: body(TxRisk{Time: at, Event: TxReview, Text: "Pay 1,234.56 yuan to 6222…0002 from 6222…0001", SMS: true})}, true,
			"Pay 1,234.56 yuan to 6222…0002 from 6222…0001 (2026-03-01 08:10) is held for a check by the bank"},
		{"risk inbox only", Alert{Kind: KindTxRisk, Body: body(TxRisk{Time: at, Event: TxDenied})}, false, ""},
		{"tool reported lost", Alert{Kind: KindTool, Body: body(Tool{Time: at, Event: "lost", Tool: "gridcard", Ref: "…0042"})}, true,
			"Your grid card …0042 was reported lost and no longer works at 2026-03-01 08:10. Not you? Call the bank at once."},
		{"tool bound", Alert{Kind: KindTool, Body: body(Tool{Time: at, Event: "bound", Tool: "otp", Ref: "TOTP-0002"})}, true, "Your dynamic-password token TOTP-0002 was bound to your passport"},
		{"withdrawal PIN set", Alert{Kind: KindTool, Body: body(Tool{Time: at, Event: "set", Tool: "atm-pin"})}, true, "Your withdrawal PIN was set or changed at 2026-03-01 08:10. Not you?"},
		{"tool, unknown event", Alert{Kind: KindTool, Body: body(Tool{Time: at, Event: "painted"})}, false, ""},
		{"malformed", Alert{Kind: KindLogin, Body: json.RawMessage(`{`)}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			text, ok := SMSText(tc.a, nil)
			if ok != tc.sms || !strings.Contains(text, tc.has) {
				t.Fatalf("SMS %v %q, want %v with %q", ok, text, tc.sms, tc.has)
			}
		})
	}
}
