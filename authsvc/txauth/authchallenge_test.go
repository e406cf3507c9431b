package txauth

import (
	"context"
	"net/http"
	"testing"

	"github.com/egate-bank/egate/authsvc/audit"
	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/internal/testenv"
)

// openChallenges counts the intent's challenges a customer could still
// answer.
func (r *rig) openChallenges(t testing.TB, hash string) int {
	t.Helper()
	return r.count(t, `SELECT COUNT(*) FROM tx_challenges c JOIN auth_challenges a ON a.id = c.id
		WHERE c.intent_hash = ? AND a.used_ms IS NULL AND a.expires_ms > ?`, hash, r.clk.Now().UnixMilli())
}

// TestAuthorizeWithChallenge: an authorize call that names a tool begins
// its challenge when the decision is allow and the tool reaches the level
// (stored with the intent, answered to a grant that executes); otherwise
// the decision comes all the same with the refusal POST …/challenge would
// answer, the intent stays allowed and a later challenge with a tool that
// reaches the level proves it; review and deny begin nothing.
func TestAuthorizeWithChallenge(t *testing.T) {
	testenv.NeedCommand(t, "oathtool", "oathtool")
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db, rigOpt{})
		ctx := context.Background()
		for _, tc := range []struct {
			name     string
			tools    []string
			amount   int64
			payee    string
			factor   string
			decision string
			level    int    // the level of the grant in the end
			code     string // the challenge_error's; "": a challenge
			status   int
			then     string // the tool a later POST …/challenge proves with
		}{
			{name: "otp at its level", tools: []string{"gridcard", "otp"}, amount: 2_000 * yuan, factor: "otp", decision: "allow", level: 3},
			{name: "sms at level 2", tools: []string{"gridcard"}, amount: 20 * yuan, factor: "sms", decision: "allow", level: 2},
			{name: "otp above the level", tools: []string{"otp"}, amount: 20 * yuan, factor: "otp", decision: "allow", level: 3},
			{name: "grid card below the level", tools: []string{"gridcard", "otp"}, amount: 2_000 * yuan, factor: "gridcard", decision: "allow", level: 3,
				code: "level_too_low", status: http.StatusForbidden, then: "otp"},
			{name: "unknown tool", tools: []string{"gridcard"}, amount: 20 * yuan, factor: "pigeon", decision: "allow", level: 2,
				code: "unknown_factor", status: http.StatusBadRequest, then: "gridcard"},
			{name: "a tool the customer lacks", tools: []string{"gridcard"}, amount: 20 * yuan, factor: "otp", decision: "allow", level: 2,
				code: "not_enrolled", status: http.StatusBadRequest, then: "gridcard"},
			{name: "deny", tools: []string{"otp"}, amount: 20 * yuan, payee: "6222000000009999", factor: "otp", decision: "deny",
				code: "denied", status: http.StatusConflict},
			{name: "review", tools: []string{"otp"}, amount: 123400, factor: "otp", decision: "review",
				code: "under_review", status: http.StatusConflict},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := r.customer(t, tc.tools...)
				in := c.intent(tc.amount, "k-"+randHex(4))
				if tc.payee != "" {
					in.Payee = tc.payee
				}
				d, err := r.c.AuthorizeWithChallenge(ctx, in, txclient.ChallengeRequest{Factor: tc.factor, ClientIP: "192.0.2.7"})
				if err != nil || d.Decision != tc.decision || d.Intent != in.HashHex() || d.Replayed {
					t.Fatalf("%+v %v", d, err)
				}
				stored, err := r.c.Get(ctx, d.Intent)
				if err != nil || stored.Decision != tc.decision || stored.Challenge != nil || stored.ChallengeError != nil {
					t.Fatalf("stored decision %+v %v", stored, err)
				}
				if tc.code != "" {
					if d.Challenge != nil || d.ChallengeError == nil || d.ChallengeError.Code != tc.code || d.ChallengeError.Status != tc.status || d.ChallengeError.Message == "" {
						t.Fatalf("challenge %+v, challenge_error %+v; want %d %s", d.Challenge, d.ChallengeError, tc.status, tc.code)
					}
					if n := r.count(t, `SELECT COUNT(*) FROM auth_challenges WHERE passport_id = ?`, c.pid); n != 0 {
						t.Fatalf("%d challenges begun", n)
					}
					if tc.then == "" {
						_, err := r.c.Challenge(ctx, d.Intent, txclient.ChallengeRequest{Factor: tc.factor})
						wantCode(t, err, tc.code) // the same refusal as the challenge call's
						return
					}
					if stored.State != txclient.StateAllowed {
						t.Fatalf("state %s after a challenge_error", stored.State)
					}
					// What the platform falls back to: ask for another tool.
					g, err := r.prove(t, c, in, tc.then)
					if err != nil || g.Level != tc.level {
						t.Fatalf("the later challenge: %+v %v", g, err)
					}
					return
				}
				ch := d.Challenge
				if ch == nil || d.ChallengeError != nil || ch.ID == "" || ch.Factor != tc.factor || ch.Level != tc.level || ch.Text != d.Text || ch.Prompt == "" {
					t.Fatalf("challenge %+v, challenge_error %+v", ch, d.ChallengeError)
				}
				if n := r.count(t, `SELECT COUNT(*) FROM tx_challenges WHERE id = ? AND intent_hash = ? AND factor = ?`, ch.ID, d.Intent, tc.factor); n != 1 {
					t.Fatal("the challenge is not stored for the intent")
				}
				if r.usage(t, c.pid) != 0 {
					t.Fatal("counted before the proof")
				}
				g, err := r.c.Proof(ctx, d.Intent, txclient.ProofRequest{ChallengeID: ch.ID, Response: r.answer(t, c, *ch), Intent: &in})
				if err != nil || g.Level != tc.level || g.Factor != tc.factor {
					t.Fatalf("%+v %v", g, err)
				}
				if r.usage(t, c.pid) != tc.amount {
					t.Fatalf("usage %d", r.usage(t, c.pid))
				}
				if ex, err := r.c.Execute(ctx, g.Token, in); err != nil || ex.State != txclient.StateExecuted {
					t.Fatalf("%+v %v", ex, err)
				}
			})
		}
	})
}

// TestAuthorizeChallengeRepeated: the same intent and key posted again
// with a challenge returns the stored decision and begins no second
// challenge while the first is open (challenge_open), also when the
// repeats arrive at once; one is begun when none is open (the first call's
// tool was below the level); after the proof a repeat says so.
func TestAuthorizeChallengeRepeated(t *testing.T) {
	testenv.NeedCommand(t, "oathtool", "oathtool")
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db, rigOpt{})
		ctx := context.Background()
		otp := txclient.ChallengeRequest{Factor: "otp"}

		t.Run("at once", func(t *testing.T) {
			c := r.customer(t, "otp")
			in := c.intent(2_000*yuan, "k-"+randHex(4))
			const n = 8
			type answer struct {
				d   txclient.Decision
				err error
			}
			as := make(chan answer, n)
			for range n {
				go func() {
					d, err := r.c.AuthorizeWithChallenge(ctx, in, otp)
					as <- answer{d, err}
				}()
			}
			fresh, begun, open := 0, 0, 0
			var ch *txclient.Challenge
			for range n {
				a := <-as
				if a.err != nil || a.d.Decision != "allow" {
					t.Fatalf("%+v %v", a.d, a.err)
				}
				if !a.d.Replayed {
					fresh++
				}
				switch {
				case a.d.Challenge != nil:
					begun++
					ch = a.d.Challenge
				case a.d.ChallengeError != nil && a.d.ChallengeError.Code == "challenge_open":
					open++
				default:
					t.Fatalf("neither a challenge nor challenge_open: %+v", a.d.ChallengeError)
				}
			}
			if fresh != 1 || begun != 1 || open != n-1 || r.openChallenges(t, in.HashHex()) != 1 {
				t.Fatalf("%d fresh, %d challenges begun, %d challenge_open, %d open; want 1, 1, %d, 1", fresh, begun, open, r.openChallenges(t, in.HashHex()), n-1)
			}
			g, err := r.c.Proof(ctx, in.HashHex(), txclient.ProofRequest{ChallengeID: ch.ID, Response: r.answer(t, c, *ch)})
			if err != nil {
				t.Fatal(err)
			}
			d, err := r.c.AuthorizeWithChallenge(ctx, in, otp)
			if err != nil || !d.Replayed || d.State != txclient.StateGranted || d.Challenge != nil || d.ChallengeError == nil || d.ChallengeError.Code != "already_granted" {
				t.Fatalf("after the proof: %+v %v", d, err)
			}
			if r.openChallenges(t, in.HashHex()) != 0 || r.usage(t, c.pid) != 2_000*yuan {
				t.Fatal("a repeat after the proof began a challenge or counted")
			}
			if _, err := r.c.Execute(ctx, g.Token, in); err != nil {
				t.Fatal(err)
			}
		})

		t.Run("SMS sends counted once", func(t *testing.T) {
			// ebank's decision page: the intent authorized, then again with
			// the tool the customer chose. The repeat begins one SMS
			// challenge and counts one send against the customer's hour.
			c := r.customer(t, "gridcard")
			in := c.intent(20*yuan, "k-"+randHex(4))
			if _, err := r.c.Authorize(ctx, in); err != nil {
				t.Fatal(err)
			}
			d, err := r.c.AuthorizeWithChallenge(ctx, in, txclient.ChallengeRequest{Factor: "sms"})
			if err != nil || !d.Replayed || d.Challenge == nil {
				t.Fatalf("%+v %v", d, err)
			}
			if n := r.count(t, `SELECT COALESCE(SUM(n), 0) FROM sms_rate WHERE k = ?`, "customer:"+c.pid); n != 1 {
				t.Fatalf("%d SMS sends counted for one challenge", n)
			}
			if _, err := r.c.Proof(ctx, d.Intent, txclient.ProofRequest{ChallengeID: d.Challenge.ID, Response: r.answer(t, c, *d.Challenge)}); err != nil {
				t.Fatal(err)
			}
		})

		t.Run("none open", func(t *testing.T) {
			c := r.customer(t, "gridcard", "otp")
			in := c.intent(2_000*yuan, "k-"+randHex(4))
			d, err := r.c.AuthorizeWithChallenge(ctx, in, txclient.ChallengeRequest{Factor: "gridcard"})
			if err != nil || d.Challenge != nil || d.ChallengeError == nil || d.ChallengeError.Code != "level_too_low" {
				t.Fatalf("%+v %v", d, err)
			}
			d, err = r.c.AuthorizeWithChallenge(ctx, in, otp)
			if err != nil || !d.Replayed || d.Challenge == nil || d.ChallengeError != nil {
				t.Fatalf("a repeat with none open: %+v %v", d, err)
			}
			first := d.Challenge
			d, err = r.c.AuthorizeWithChallenge(ctx, in, otp)
			if err != nil || !d.Replayed || d.Challenge != nil || d.ChallengeError == nil || d.ChallengeError.Code != "challenge_open" {
				t.Fatalf("a repeat with one open: %+v %v", d, err)
			}
			// A repeat without a challenge is today's repeat.
			if d, err := r.c.Authorize(ctx, in); err != nil || !d.Replayed || d.Challenge != nil || d.ChallengeError != nil {
				t.Fatalf("a plain repeat: %+v %v", d, err)
			}
			if n := r.openChallenges(t, in.HashHex()); n != 1 {
				t.Fatalf("%d open challenges, want 1", n)
			}
			if _, err := r.c.Proof(ctx, in.HashHex(), txclient.ProofRequest{ChallengeID: first.ID, Response: r.answer(t, c, *first)}); err != nil {
				t.Fatal(err)
			}
		})
	})
}

// TestAuthorizeChallengeBadInput: a malformed challenge in the authorize
// call is refused like any bad body, as are a bad intent and another
// customer's payer beside a good one: nothing is stored and no challenge
// is begun.
func TestAuthorizeChallengeBadInput(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db, rigOpt{})
		c := r.customer(t, "otp")
		other := r.customer(t)
		body := func(amount, payer, challenge string) string {
			return `{"customer":"` + c.pid + `","channel":"web","kind":"transfer","payer":"` + payer + `","payee":"` + payee +
				`","amount":` + amount + `,"currency":"CNY","device":"fp","client_ip":"192.0.2.7","idempotency_key":"bad-1","challenge":` + challenge + `}`
		}
		for _, tc := range []struct {
			name, body string
			status     int
			code       string
		}{
			{"unknown field of the challenge", body("100", c.payer, `{"factor":"otp","pin":"1234"}`), 400, "invalid_request"},
			{"no factor", body("100", c.payer, `{"client_ip":"192.0.2.7"}`), 400, "invalid_request"},
			{"challenge not an object", body("100", c.payer, `"otp"`), 400, "invalid_request"},
			{"factor not a string", body("100", c.payer, `{"factor":3}`), 400, "invalid_request"},
			{"bad client address", body("100", c.payer, `{"factor":"otp","client_ip":"here"}`), 400, "invalid_request"},
			{"bad amount", body("1.5", c.payer, `{"factor":"otp"}`), 400, "bad_amount"},
			{"another customer's payer", body("100", other.payer, `{"factor":"otp"}`), 403, "payer_not_customers"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, code := post(t, r, "/v1/tx/authorize", tc.body)
				if st != tc.status || code != tc.code {
					t.Fatalf("%d %s, want %d %s", st, code, tc.status, tc.code)
				}
			})
		}
		if n := r.count(t, `SELECT COUNT(*) FROM tx_intents WHERE customer = ?`, c.pid); n != 0 {
			t.Fatalf("%d intents stored", n)
		}
		if n := r.count(t, `SELECT COUNT(*) FROM auth_challenges WHERE passport_id = ?`, c.pid); n != 0 {
			t.Fatalf("%d challenges begun", n)
		}
		// The same body with a good challenge passes: the cases were refused
		// for what they changed.
		if st, code := post(t, r, "/v1/tx/authorize", body("100", c.payer, `{"factor":"otp"}`)); st != http.StatusCreated {
			t.Fatalf("the good body: %d %s", st, code)
		}
	})
}

// TestAuthorizeChallengeEncrypted: the challenge travels inside the JWE
// of an intent of a channel that requires encryption; in clear the same
// call is refused and nothing is begun.
func TestAuthorizeChallengeEncrypted(t *testing.T) {
	testenv.NeedCommand(t, "oathtool", "oathtool")
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEncRig(t, db)
		ctx := context.Background()
		c := e.customer(t, "otp")
		in := c.intent(2_000*yuan, "k-"+randHex(4))
		in.Channel = intent.App
		_, err := e.clear.AuthorizeWithChallenge(ctx, in, txclient.ChallengeRequest{Factor: "otp"})
		wantCode(t, err, "encryption_required")
		if n := e.count(t, `SELECT COUNT(*) FROM auth_challenges WHERE passport_id = ?`, c.pid); n != 0 {
			t.Fatalf("%d challenges begun for a clear intent", n)
		}
		d, err := e.enc.AuthorizeWithChallenge(ctx, in, txclient.ChallengeRequest{Factor: "otp"})
		if err != nil || d.Challenge == nil {
			t.Fatalf("%+v %v", d, err)
		}
		g, err := e.enc.Proof(ctx, d.Intent, txclient.ProofRequest{ChallengeID: d.Challenge.ID, Response: e.answer(t, c, *d.Challenge), Intent: &in})
		if err != nil || g.Level != 3 {
			t.Fatalf("%+v %v", g, err)
		}
	})
}

// TestAuthorizeChallengeStoredWhole: when the challenge's row cannot be
// stored, the tool's challenge is rolled back with it (none is left that
// txauth does not know), and the intent is stored all the same, allowed,
// with challenge_error unavailable; a later challenge call proves it.
func TestAuthorizeChallengeStoredWhole(t *testing.T) {
	testenv.NeedCommand(t, "oathtool", "oathtool")
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db, rigOpt{})
		ctx := context.Background()
		for _, tool := range []string{"otp", "sms"} {
			t.Run(tool, func(t *testing.T) {
				c := r.customer(t, "otp")
				in := c.intent(20*yuan, "k-"+randHex(4))
				if _, err := db.Exec(ctx, `ALTER TABLE tx_challenges RENAME TO tx_challenges_away`); err != nil {
					t.Fatal(err)
				}
				d, err := r.c.AuthorizeWithChallenge(ctx, in, txclient.ChallengeRequest{Factor: tool})
				if _, rerr := db.Exec(ctx, `ALTER TABLE tx_challenges_away RENAME TO tx_challenges`); rerr != nil {
					t.Fatal(rerr)
				}
				if err != nil || d.Decision != "allow" || d.Replayed || d.Challenge != nil || d.ChallengeError == nil || d.ChallengeError.Code != "unavailable" {
					t.Fatalf("%+v %v", d, err)
				}
				if n := r.count(t, `SELECT COUNT(*) FROM auth_challenges WHERE passport_id = ?`, c.pid); n != 0 {
					t.Fatalf("%d challenges of the tool left without txauth's row", n)
				}
				if n := r.count(t, `SELECT COUNT(*) FROM tx_intents WHERE hash = ? AND state = 'allowed'`, d.Intent); n != 1 {
					t.Fatal("the intent is not stored")
				}
				if _, err := r.prove(t, c, in, tool); err != nil {
					t.Fatal(err)
				}
			})
		}
	})
}

// TestAuthorizeChallengeOneTransaction: the intent, its audit record and
// the challenge begun with it commit in one transaction: when the record
// cannot be appended, neither the intent nor the tool's challenge is
// stored and the call is unavailable; once the log is back the same call
// stores all three, the log has one authorize record of the intent, and
// its chain verifies.
func TestAuthorizeChallengeOneTransaction(t *testing.T) {
	testenv.NeedCommand(t, "oathtool", "oathtool")
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		fl := &failingLog{Log: audit.New(db, nil)}
		r := newRig(t, db, rigOpt{audit: fl})
		c := r.customer(t, "otp")
		in := c.intent(2_000*yuan, "k-"+randHex(4))
		hash := in.HashHex()

		fl.refuse("tx.authorize")
		_, err := r.c.AuthorizeWithChallenge(ctx, in, txclient.ChallengeRequest{Factor: "otp"})
		wantCode(t, err, "unavailable")
		if n := r.count(t, `SELECT COUNT(*) FROM tx_intents WHERE hash = ?`, hash); n != 0 {
			t.Fatalf("the intent was stored without its audit record (%d rows)", n)
		}
		if n := r.count(t, `SELECT COUNT(*) FROM auth_challenges WHERE passport_id = ?`, c.pid); n != 0 {
			t.Fatalf("%d challenges begun for an intent not stored", n)
		}
		fl.refuse("")
		d, err := r.c.AuthorizeWithChallenge(ctx, in, txclient.ChallengeRequest{Factor: "otp"})
		if err != nil || d.Replayed || d.Challenge == nil {
			t.Fatalf("%+v %v", d, err)
		}
		if n := r.count(t, `SELECT COUNT(*) FROM audit_log WHERE kind = 'tx.authorize' AND record LIKE ?`, "%"+hash+"%"); n != 1 {
			t.Errorf("%d authorize records of the intent, want 1", n)
		}
		if r.openChallenges(t, hash) != 1 {
			t.Fatal("the challenge is not stored for the intent")
		}
		if _, err := fl.Verify(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
