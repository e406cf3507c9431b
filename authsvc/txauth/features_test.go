package txauth

import (
	"context"
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/risk"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// TestFeatures: the risk features read from the database over a history
// of intents in every state and at every age (an hour, a day, 90 days, a
// year ago), failed proofs and sign-ins, other customers' intents (never
// counted), and payees and devices known or not.
func TestFeatures(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := newRig(t, db, rigOpt{})
		c, other := r.customer(t), r.customer(t)
		now := r.clk.Now()
		n := 0
		add := func(pid, state, payee, device string, amount int64, ago time.Duration) {
			t.Helper()
			n++
			at := now.Add(-ago).UnixMilli()
			if _, err := db.Exec(ctx, `INSERT INTO tx_intents (hash, customer, idem_key, body, payee, amount, device, action, level, decision, features, state, created_ms, updated_ms)
				VALUES (?, ?, ?, '{}', ?, ?, ?, 'allow', 3, '{}', '{}', ?, ?, ?)`,
				randHex(32), pid, randHex(8), payee, amount, device, state, at, at); err != nil {
				t.Fatal(err)
			}
		}
		const p1, p2 = "6222000000000101", "6222000000000102"
		add(c.pid, txclient.StateExecuted, p1, "fp-old", 100_00, 10*time.Minute)     // hour, day, 90 days
		add(c.pid, txclient.StateAllowed, p2, "fp-x", 40_00, 30*time.Minute)         // hour, day; not executed
		add(c.pid, txclient.StateExecuted, p2, "fp-y", 300_00, 5*time.Hour)          // day, 90 days
		add(c.pid, txclient.StateGranted, p1, "fp-1", 7_00, 20*time.Hour)            // day: device fp-1 seen in a proved intent
		add(c.pid, txclient.StateExecuted, p1, "fp-old", 900_00, 30*24*time.Hour)    // 90 days
		add(c.pid, txclient.StateExecuted, p1, "fp-old", 5_000_00, 100*24*time.Hour) // older than 90 days: payee known only
		add(c.pid, txclient.StateDenied, p2, "fp-z", 1_00, 2*24*time.Hour)           // nothing but its age
		add(c.pid, txclient.StateCancelled, p2, "fp-z", 2_00, 40*time.Minute)        // hour, day
		add(other.pid, txclient.StateExecuted, payee, "fp-1", 123_00, 5*time.Minute) // another customer's
		for i := range 2 {
			if _, err := db.Exec(ctx, `INSERT INTO tx_failures (customer, at_ms, intent_hash, factor) VALUES (?, ?, 'h', 'otp')`, c.pid, now.Add(-time.Duration(i*30)*time.Hour).UnixMilli()); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.Exec(ctx, `INSERT INTO auth_failures (subject, factor, day, n) VALUES (?, 'password', ?, 3), (?, 'any', ?, 9)`,
			"pid:"+c.pid, now.In(r.svc.loc).Format("2006-01-02"), "pid:"+c.pid, now.In(r.svc.loc).Format("2006-01-02")); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name  string
			payee string
			want  func(f risk.Features) bool
		}{
			{"velocity and history", p2, func(f risk.Features) bool {
				return f.Count1h == 3 && f.Count24h == 5 && f.Amount24h == 100_00+40_00+300_00+7_00+2_00 &&
					f.HistoryCount == 3 && f.HistoryMaxAmount == 900_00 && f.HistoryAvgAmount == (100_00+300_00+900_00)/3 &&
					f.FailedProofs24h == 1 && f.FailedLogins24h == 3 && f.CustomerAgeDays == 400 &&
					f.PayeeKnown && !f.PayeeFirstPay && !f.DeviceNew
			}},
			{"payee paid only long ago is known", p1, func(f risk.Features) bool { return f.PayeeKnown && !f.PayeeFirstPay }},
			{"a new payee", payee, func(f risk.Features) bool { return !f.PayeeKnown && f.PayeeFirstPay }},
		}
		for _, tc := range cases {
			in := c.intent(50_00, "k")
			in.Payee = tc.payee
			f, err := r.svc.Features(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(f) {
				t.Errorf("%s: %+v", tc.name, f)
			}
		}
		in := c.intent(50_00, "k")
		in.Device = "fp-new"
		if f, _ := r.svc.Features(ctx, in); !f.DeviceNew {
			t.Errorf("a device never proved: %+v", f)
		}
		if f, _ := r.svc.Features(ctx, other.intent(50_00, "k")); f.Count1h != 1 || f.HistoryCount != 1 || f.PayeeFirstPay || f.DeviceNew || f.FailedProofs24h != 0 {
			t.Errorf("the other customer: %+v", f)
		}
	})
}

// TestFeaturesJSONIsEncodingJSON: FeaturesJSON writes byte for byte what
// encoding/json writes for the features as a map of their names (the
// stored form before it was written by hand), for plain values and for
// strings encoding/json escapes; ParseFeatures reads each back.
func TestFeaturesJSONIsEncodingJSON(t *testing.T) {
	t.Parallel()
	if n := reflect.TypeOf(risk.Features{}).NumField(); len(featureTable) != n {
		t.Fatalf("featureTable names %d features, risk.Features has %d fields", len(featureTable), n)
	}
	for _, tc := range []struct {
		name string
		f    risk.Features
	}{
		{"zero", risk.Features{}},
		{"unknown ages", risk.Features{AccountAgeDays: -1, LocationJumpKm: -1}},
		{"typical", risk.Features{Amount: 100_000, Kind: "transfer", Channel: "web", Currency: "CNY", Payee: "6222000000000002",
			CustomerAgeDays: 400, AccountAgeDays: 30, Count1h: 2, Count24h: 9, Amount24h: 1 << 40, Hour: 23, Weekday: 6,
			FailedLogins24h: 1, FailedProofs24h: 3, PayeeKnown: true, HistoryCount: 12, HistoryMaxAmount: 9_000_000,
			HistoryAvgAmount: 77, DeviceNew: true, DeviceRooted: true, LocationJumpKm: 1200}},
		{"escaped strings", risk.Features{Kind: `a"b\c`, Channel: "<web>&", Currency: "\x00\x1f\n\t", Payee: "收款人\u2028\u2029é\x7f"}},
		{"extremes", risk.Features{Amount: math.MaxInt64, Count1h: math.MinInt64, PayeeFirstPay: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := tc.f
			ref := map[string]any{}
			for k, p := range featureFields(&f) {
				switch v := p.(type) {
				case *int64:
					ref[k] = *v
				case *string:
					ref[k] = *v
				case *bool:
					ref[k] = *v
				default:
					t.Fatalf("%s: %T", k, p)
				}
			}
			want, err := json.Marshal(ref)
			if err != nil {
				t.Fatal(err)
			}
			got := FeaturesJSON(f)
			if string(got) != string(want) {
				t.Fatalf("FeaturesJSON\n got %s\nwant %s", got, want)
			}
			back, err := ParseFeatures(got)
			if err != nil || back != f {
				t.Fatalf("read back %+v, %v; want %+v", back, err, f)
			}
		})
	}
}
