package txauth

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/egate-bank/egate/authsvc/alerts"
	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/limits"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

const yuan = 100

// TestAuthorizeDecisions: the limit table sets the level, rules raise it,
// hold or refuse; every decision names its reasons, the tools that reach
// the level and a sentence for the customer; denied, held and stepped-up
// intents alert the customer, the others do not.
func TestAuthorizeDecisions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db, rigOpt{})
		ctx := context.Background()
		full := r.customer(t, "gridcard", "otp")
		bare := r.customer(t) // SMS only (a mobile number)
		lowered := r.customer(t, "gridcard", "otp")
		for lv := 2; lv <= 5; lv++ {
			if err := r.svc.Counter().SetOwn(ctx, lowered.pid, limits.Limit{Level: lv, PerTxn: 100 * yuan, PerDay: 100 * yuan, PerYear: 100 * yuan}); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			name     string
			c        *customer
			edit     func(*intent.Intent)
			amount   int64
			decision string
			level    int
			tools    []string
			reasons  []string // code:limit:level or rule:name
			message  []string
			alert    string
		}{
			{name: "small: level 2, every tool", c: full, amount: 500 * yuan, decision: "allow", level: 2, tools: []string{"sms", "gridcard", "otp"},
				message: []string{"Confirm with an SMS code, your grid card or your dynamic-password token."}},
			{name: "over the level-2 limit: a token", c: full, amount: 2_000 * yuan, decision: "allow", level: 3, tools: []string{"otp"},
				reasons: []string{"limit:per-transaction:2"},
				message: []string{"2,000.00 yuan is over the bank's level-2 limit of 1,000.00 yuan per transaction.", "Confirm with your dynamic-password token."}},
			{name: "level 4 without such a tool", c: full, amount: 600_000 * yuan, decision: "allow", level: 4, tools: []string{},
				reasons: []string{"limit:per-transaction:3"},
				message: []string{"needs a U-shield or a PIV card or stronger, and you have none"}},
			{name: "over every level", c: full, amount: 6_000_000 * yuan, decision: "deny", reasons: []string{"limit:per-transaction:5"},
				message: []string{"over the bank's level-5 limit of 5,000,000.00 yuan per transaction", "No tool can allow more"}, alert: alerts.TxDenied},
			{name: "own lower limit", c: lowered, amount: 200 * yuan, decision: "deny", reasons: []string{"own_limit:per-transaction:5"},
				message: []string{"your own level-5 limit of 100.00 yuan", "Raise your own limit"}, alert: alerts.TxDenied},
			{name: "rule denies", c: full, amount: 10 * yuan, edit: func(in *intent.Intent) { in.Payee = "6222000000009999" }, decision: "deny",
				reasons: []string{"rule:blocked-payee"}, message: []string{"Payments to this account are blocked."}, alert: alerts.TxDenied},
			{name: "rule holds for review", c: full, amount: 123400, decision: "review", level: 3, reasons: []string{"limit:per-transaction:2", "rule:odd-amount"},
				message: []string{"A member of the bank's staff checks this payment"}, alert: alerts.TxReview},
			{name: "rule steps up", c: full, amount: 50 * yuan, edit: func(in *intent.Intent) { in.Kind = intent.AAShare }, decision: "allow", level: 3,
				tools: []string{"otp"}, reasons: []string{"rule:aa-step-up"}, message: []string{"Shares of a collection are confirmed with a token."}, alert: alerts.TxStepUp},
			{name: "dry-run rule does not act", c: full, amount: 50 * yuan, edit: func(in *intent.Intent) { in.Kind = intent.Refund }, decision: "allow", level: 2,
				tools: []string{"sms", "gridcard", "otp"}},
			{name: "SMS is the only tool", c: bare, amount: 50 * yuan, decision: "allow", level: 2, tools: []string{"sms"}, message: []string{"Confirm with an SMS code."}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				in := tc.c.intent(tc.amount, "k-"+randHex(4))
				if tc.edit != nil {
					tc.edit(&in)
				}
				before := len(r.riskAlerts(t, tc.c.pid))
				d, err := r.c.Authorize(ctx, in)
				if err != nil {
					t.Fatal(err)
				}
				if d.Decision != tc.decision || d.Level != tc.level || d.Intent != in.HashHex() || d.Replayed {
					t.Fatalf("decision %+v, want %s at level %d", d, tc.decision, tc.level)
				}
				if tc.tools != nil {
					var got []string
					for _, tl := range d.Tools {
						got = append(got, tl.Name)
					}
					if strings.Join(got, ",") != strings.Join(tc.tools, ",") {
						t.Fatalf("tools %v, want %v", got, tc.tools)
					}
				}
				var rs []string
				for _, x := range d.Reasons {
					if x.Text == "" {
						t.Fatalf("reason without text: %+v", x)
					}
					if x.Code == "rule" {
						rs = append(rs, "rule:"+x.Rule)
					} else {
						rs = append(rs, x.Code+":"+x.Limit+":"+itoa(int64(x.Level)))
					}
				}
				if strings.Join(rs, ",") != strings.Join(tc.reasons, ",") {
					t.Fatalf("reasons %v, want %v", rs, tc.reasons)
				}
				for _, m := range tc.message {
					if !strings.Contains(d.Message, m) {
						t.Fatalf("message %q, want it to say %q", d.Message, m)
					}
				}
				if !strings.Contains(d.Text, "to 6222…0002") && tc.edit == nil {
					t.Fatalf("text %q", d.Text)
				}
				al := r.riskAlerts(t, tc.c.pid)
				if tc.alert == "" {
					if len(al) != before {
						t.Fatalf("%d new risk alerts, want none", len(al)-before)
					}
					return
				}
				if len(al) != before+1 {
					t.Fatalf("%d new risk alerts, want one", len(al)-before)
				}
				var body alerts.TxRisk
				for _, a := range al {
					if json.Unmarshal(a.Body, &body); body.Intent == d.Intent {
						break
					}
				}
				if body.Event != tc.alert || body.Intent != d.Intent || !body.SMS {
					t.Fatalf("alert %+v, want %s", body, tc.alert)
				}
			})
		}
	})
}

// TestIdempotency: the same intent twice is one intent with one decision
// and is counted once, even after its proof and under parallel posts; the
// same idempotency key with other fields is refused with 409.
func TestIdempotency(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db, rigOpt{})
		ctx := context.Background()
		c := r.customer(t, "gridcard")
		in := c.intent(300*yuan, "order-1")

		const n = 8
		ds := make(chan txclient.Decision, n)
		errs := make(chan error, n)
		for range n {
			go func() {
				d, err := r.c.Authorize(ctx, in)
				ds <- d
				errs <- err
			}()
		}
		fresh := 0
		for range n {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
			d := <-ds
			if d.Decision != "allow" || d.Level != 2 || d.Intent != in.HashHex() {
				t.Fatalf("decision %+v", d)
			}
			if !d.Replayed {
				fresh++
			}
		}
		if fresh != 1 || r.count(t, `SELECT COUNT(*) FROM tx_intents WHERE customer = ?`, c.pid) != 1 {
			t.Fatalf("%d fresh decisions, want 1", fresh)
		}
		if _, err := r.prove(t, c, in, "gridcard"); err != nil {
			t.Fatal(err)
		}
		d, err := r.c.Authorize(ctx, in)
		if err != nil || !d.Replayed || d.State != txclient.StateGranted {
			t.Fatalf("after the proof: %+v %v", d, err)
		}
		if u := r.usage(t, c.pid); u != 300*yuan {
			t.Fatalf("usage %d, want one count of %d", u, 300*yuan)
		}
		for _, edit := range []func(*intent.Intent){
			func(in *intent.Intent) { in.Amount++ },
			func(in *intent.Intent) { in.Payee = "6222000000000003" },
			func(in *intent.Intent) { in.Device = "fp-2" },
		} {
			other := in
			edit(&other)
			_, err := r.c.Authorize(ctx, other)
			wantCode(t, err, "idempotency_key_reused")
			if ae := err.(*txclient.APIError); ae.Status != 409 {
				t.Fatalf("status %d", ae.Status)
			}
		}
		if r.count(t, `SELECT COUNT(*) FROM tx_intents WHERE customer = ?`, c.pid) != 1 || r.usage(t, c.pid) != 300*yuan {
			t.Fatal("a reused key stored or counted something")
		}
	})
}
