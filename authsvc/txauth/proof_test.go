package txauth

import (
	"context"
	"crypto"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/limits"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	devotp "github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/internal/testenv"
)

// TestProofGrantExecute: with each real tool (a TOTP token in SoftHSM2
// whose codes oathtool computes, a grid card, an SMS code through the
// development sink) a customer proves an intent; the limit is counted at
// the level proved, once; the grant executes the intent once.
func TestProofGrantExecute(t *testing.T) {
	testenv.NeedCommand(t, "oathtool", "oathtool")
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db, rigOpt{})
		ctx := context.Background()
		for _, tc := range []struct {
			tool   string
			amount int64
			level  int
		}{
			{"otp", 2_000 * yuan, 3},
			{"gridcard", 800 * yuan, 2},
			{"sms", 20 * yuan, 2},
			{"otp", 20 * yuan, 3}, // a stronger tool than needed counts at its level
		} {
			t.Run(tc.tool, func(t *testing.T) {
				c := r.customer(t, "gridcard", "otp")
				in := c.intent(tc.amount, "k-"+randHex(4))
				d, err := r.c.Authorize(ctx, in)
				if err != nil || d.Decision != "allow" {
					t.Fatalf("%+v %v", d, err)
				}
				ch, err := r.c.Challenge(ctx, d.Intent, txclient.ChallengeRequest{Factor: tc.tool})
				if err != nil {
					t.Fatal(err)
				}
				if ch.Text != d.Text || !strings.HasPrefix(ch.Text, "Transfer ") {
					t.Fatalf("challenge text %q, decision text %q", ch.Text, d.Text)
				}
				if r.usage(t, c.pid) != 0 {
					t.Fatal("counted before the proof")
				}
				g, err := r.c.Proof(ctx, d.Intent, txclient.ProofRequest{ChallengeID: ch.ID, Response: r.answer(t, c, ch)})
				if err != nil {
					t.Fatal(err)
				}
				if g.Level != tc.level || g.Intent != d.Intent || len(g.Token) < 40 || !g.ExpiresAt.Equal(r.clk.Now().Add(DefaultGrantTTL)) {
					t.Fatalf("grant %+v", g)
				}
				if n := r.count(t, `SELECT COUNT(*) FROM tx_intents WHERE grant_hash = ?`, tokenHash(g.Token)); n != 1 {
					t.Fatal("the grant is not stored by its SHA-256")
				}
				if n := r.count(t, `SELECT COUNT(*) FROM tx_intents WHERE grant_hash = ?`, g.Token); n != 0 {
					t.Fatal("the grant token is stored in clear")
				}
				var lv int
				db.QueryRow(ctx, `SELECT level FROM limit_counts WHERE count_key = ?`, d.Intent).Scan(&lv)
				if lv != tc.level || r.usage(t, c.pid) != tc.amount {
					t.Fatalf("counted at level %d, usage %d", lv, r.usage(t, c.pid))
				}
				ex, err := r.c.Execute(ctx, g.Token, in)
				if err != nil || ex.State != txclient.StateExecuted {
					t.Fatalf("%+v %v", ex, err)
				}
				_, err = r.c.Execute(ctx, g.Token, in)
				wantCode(t, err, "grant_used")
				got, _ := r.c.Get(ctx, d.Intent)
				if got.State != txclient.StateExecuted || r.usage(t, c.pid) != tc.amount {
					t.Fatalf("state %s usage %d", got.State, r.usage(t, c.pid))
				}
			})
		}
	})
}

// TestBadInputChangesNothing: every kind of bad input is refused with its
// status and code, and nothing is stored, counted or granted.
func TestBadInputChangesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db, rigOpt{})
		c := r.customer(t, "gridcard", "otp")
		other := r.customer(t)
		good := func(amount string) string {
			return `{"customer":"` + c.pid + `","channel":"web","kind":"transfer","payer":"` + c.payer + `","payee":"` + payee +
				`","amount":` + amount + `,"currency":"CNY","device":"fp","client_ip":"192.0.2.7","idempotency_key":"bad-1"}`
		}
		for _, tc := range []struct {
			name, body string
			status     int
			code       string
		}{
			{"negative", good("-100"), 400, "bad_amount"},
			{"zero", good("0"), 400, "bad_amount"},
			{"overflowing", good("92233720368547758070"), 400, "bad_amount"},
			{"above the maximum", good("10000000000001"), 400, "bad_amount"},
			{"fraction", good("10.5"), 400, "bad_amount"},
			{"exponent", good("1e3"), 400, "bad_amount"},
			{"string", good(`"100"`), 400, "bad_amount"},
			{"unknown currency", strings.Replace(good("100"), `"CNY"`, `"XXX"`, 1), 400, "bad_currency"},
			{"unknown field", strings.Replace(good("100"), `"device"`, `"devise"`, 1), 400, "unknown_field"},
			{"not JSON", `{`, 400, "bad_json"},
			{"two objects", good("100") + good("100"), 400, "bad_json"},
			{"payer not the customer's", strings.Replace(good("100"), c.payer, other.payer, 1), 403, "payer_not_customers"},
			{"payer unknown", strings.Replace(good("100"), c.payer, "6222000000000777", 1), 403, "payer_not_customers"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, code := post(t, r, "/v1/tx/authorize", tc.body)
				if status != tc.status || code != tc.code {
					t.Fatalf("%d %s, want %d %s", status, code, tc.status, tc.code)
				}
			})
		}
		if n := r.count(t, `SELECT COUNT(*) FROM tx_intents`); n != 0 {
			t.Fatalf("%d intents stored from bad input", n)
		}
		if n := r.count(t, `SELECT COUNT(*) FROM audit_log`); n != 0 {
			t.Fatalf("%d audit records from bad input", n)
		}

		ctx := context.Background()
		a := c.intent(2_000*yuan, "a") // level 3
		b := c.intent(3_000*yuan, "b")
		small := c.intent(500*yuan, "small")
		for _, in := range []intentAlias{a, b, small} {
			if _, err := r.c.Authorize(ctx, in); err != nil {
				t.Fatal(err)
			}
		}
		chA, err := r.c.Challenge(ctx, a.HashHex(), txclient.ChallengeRequest{Factor: "otp"})
		if err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			name string
			do   func() error
			code string
		}{
			{"unknown intent", func() error {
				_, err := r.c.Challenge(ctx, strings.Repeat("ab", 32), txclient.ChallengeRequest{Factor: "otp"})
				return err
			}, "unknown_intent"},
			{"not a hash", func() error { _, err := r.c.Get(ctx, "nothex"); return err }, "unknown_intent"},
			{"unknown tool", func() error {
				_, err := r.c.Challenge(ctx, a.HashHex(), txclient.ChallengeRequest{Factor: "carrier-pigeon"})
				return err
			}, "unknown_factor"},
			{"tool below the level", func() error {
				_, err := r.c.Challenge(ctx, a.HashHex(), txclient.ChallengeRequest{Factor: "gridcard"})
				return err
			}, "level_too_low"},
			{"proof for another intent", func() error {
				_, err := r.c.Proof(ctx, b.HashHex(), txclient.ProofRequest{ChallengeID: chA.ID, Response: r.totpSoft(t)})
				return err
			}, "challenge_other_intent"},
			{"fields changed after the challenge", func() error {
				changed := a
				changed.Amount++
				_, err := r.c.Proof(ctx, a.HashHex(), txclient.ProofRequest{ChallengeID: chA.ID, Response: r.totpSoft(t), Intent: &changed})
				return err
			}, "intent_changed"},
			{"wrong answer", func() error {
				_, err := r.c.Proof(ctx, a.HashHex(), txclient.ProofRequest{ChallengeID: chA.ID, Response: "000000"})
				return err
			}, "wrong_answer"},
			{"unknown challenge", func() error {
				_, err := r.c.Proof(ctx, a.HashHex(), txclient.ProofRequest{ChallengeID: "nope", Response: "1"})
				return err
			}, "unknown_challenge"},
		}
		for _, st := range steps {
			err := st.do()
			t.Run(st.name, func(t *testing.T) { wantCode(t, err, st.code) })
		}
		if n := r.count(t, `SELECT COUNT(*) FROM limit_counts`) + r.count(t, `SELECT COUNT(*) FROM tx_intents WHERE grant_hash IS NOT NULL`); n != 0 {
			t.Fatalf("%d counts or grants after refused proofs", n)
		}
		if n := r.count(t, `SELECT COUNT(*) FROM tx_failures WHERE customer = ?`, c.pid); n != 1 {
			t.Fatalf("%d failed proofs recorded, want the wrong answer only", n)
		}

		// An expired challenge, then the grant: mismatched, expired, replayed.
		// (The wrong answer used chA up.)
		_, err = r.c.Proof(ctx, a.HashHex(), txclient.ProofRequest{ChallengeID: chA.ID, Response: r.totpSoft(t)})
		wantCode(t, err, "used")
		chE, err := r.c.Challenge(ctx, a.HashHex(), txclient.ChallengeRequest{Factor: "otp"})
		if err != nil {
			t.Fatal(err)
		}
		r.clk.Add(10 * time.Minute)
		_, err = r.c.Proof(ctx, a.HashHex(), txclient.ProofRequest{ChallengeID: chE.ID, Response: r.totpSoft(t)})
		wantCode(t, err, "expired")
		g, err := r.prove(t, c, a, "otp")
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.c.Execute(ctx, g.Token, b)
		wantCode(t, err, "grant_mismatch")
		_, err = r.c.Execute(ctx, "not-a-grant", a)
		wantCode(t, err, "unknown_grant")
		bad := a
		bad.Amount = -1
		_, err = r.c.Execute(ctx, g.Token, bad)
		wantCode(t, err, "bad_amount")
		r.clk.Add(DefaultGrantTTL)
		_, err = r.c.Execute(ctx, g.Token, a)
		wantCode(t, err, "grant_expired")
		if st, _ := r.c.Get(ctx, a.HashHex()); st.State != txclient.StateGranted {
			t.Fatalf("state %s after refused executes", st.State)
		}
		// A fresh grant: the mismatch above consumed nothing of it.
		r2 := c.intent(100*yuan, "fresh")
		r.c.Authorize(ctx, r2)
		g2, err := r.prove(t, c, r2, "gridcard")
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.c.Execute(ctx, g2.Token, a)
		wantCode(t, err, "grant_mismatch")
		if _, err := r.c.Execute(ctx, g2.Token, r2); err != nil {
			t.Fatal(err)
		}
		_, err = r.c.Execute(ctx, g2.Token, r2)
		wantCode(t, err, "grant_used")
		// A proved intent cannot be proved again.
		_, err = r.c.Challenge(ctx, r2.HashHex(), txclient.ChallengeRequest{Factor: "otp"})
		wantCode(t, err, "executed")
	})
}

// TestGrantSingleUseAcrossReplicas: one grant, many parallel execute calls
// spread over two services on one database (two egate authsvc replicas on
// PostgreSQL; goroutines on one SQLite file): exactly one wins.
func TestGrantSingleUseAcrossReplicas(t *testing.T) {
	eachReplicas(t, func(t *testing.T, db1, db2 *store.DB) {
		clk := &clock{t: time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)}
		r1 := newRig(t, db1, rigOpt{clk: clk})
		r2 := newRig(t, db2, rigOpt{clk: clk})
		c := r1.customer(t, "gridcard")
		r2.accounts.Add(c.pid, c.payer)
		ctx := context.Background()
		for round := range 3 {
			in := c.intent(10*yuan, fmt.Sprint("round-", round))
			if _, err := r1.c.Authorize(ctx, in); err != nil {
				t.Fatal(err)
			}
			g, err := r1.prove(t, c, in, "gridcard")
			if err != nil {
				t.Fatal(err)
			}
			const n = 16
			start := make(chan struct{})
			codes := make(chan string, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cl := r1.c
					if i%2 == 1 {
						cl = r2.c
					}
					<-start
					_, err := cl.Execute(ctx, g.Token, in)
					codes <- txclient.Code(err)
				}()
			}
			close(start)
			wg.Wait()
			close(codes)
			won := 0
			for code := range codes {
				switch code {
				case "":
					won++
				case "grant_used":
				default:
					t.Fatalf("execute: %s", code)
				}
			}
			if won != 1 {
				t.Fatalf("round %d: %d executes won, want exactly 1", round, won)
			}
		}
	})
}

// eachReplicas runs f with two databases that are one: on SQLite the same
// handle, on PostgreSQL two pools on one database (two replicas).
func eachReplicas(t *testing.T, f func(t *testing.T, db1, db2 *store.DB)) {
	engines := map[string]func(t *testing.T) (*store.DB, *store.DB){
		"sqlite": func(t *testing.T) (*store.DB, *store.DB) { db := storetest.SQLite(t); return db, db },
		"postgres": func(t *testing.T) (*store.DB, *store.DB) {
			dsn := storetest.PostgresDSN(t)
			open := func() *store.DB {
				db, err := store.Open(context.Background(), store.Config{Driver: store.Postgres, DSN: dsn})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				return db
			}
			return open(), open()
		},
	}
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			db1, db2 := engines[name](t)
			f(t, db1, db2)
		})
	}
}

// TestLimitsUnderParallelProofs: intents that each fit the day limit alone
// but not together, proved in parallel (on two replicas for PostgreSQL):
// exactly as many are granted as fit; the others fail naming the daily
// limit, with nothing granted or counted for them.
func TestLimitsUnderParallelProofs(t *testing.T) {
	eachReplicas(t, func(t *testing.T, db, db2 *store.DB) {
		clk := &clock{t: time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)}
		r := newRig(t, db, rigOpt{clk: clk})
		r2 := newRig(t, db2, rigOpt{clk: clk})
		ctx := context.Background()
		c := r.customer(t, "gridcard")
		r2.accounts.Add(c.pid, c.payer)
		const n = 8
		const amount = 900 * yuan // level 2: 1,000 a transaction, 5,000 a day → 5 fit
		type job struct {
			in  intentAlias
			ch  txclient.Challenge
			ans string
		}
		jobs := make([]job, n)
		for i := range jobs {
			in := c.intent(amount, fmt.Sprint("par-", i))
			d, err := r.c.Authorize(ctx, in)
			if err != nil || d.Level != 2 {
				t.Fatalf("%+v %v", d, err)
			}
			ch, err := r.c.Challenge(ctx, d.Intent, txclient.ChallengeRequest{Factor: "gridcard"})
			if err != nil {
				t.Fatal(err)
			}
			jobs[i] = job{in, ch, gridAnswer(t, c, ch)}
		}
		start := make(chan struct{})
		errs := make(chan error, n)
		for i, j := range jobs {
			go func() {
				cl := r.c
				if i%2 == 1 {
					cl = r2.c
				}
				<-start
				_, err := cl.Proof(ctx, j.in.HashHex(), txclient.ProofRequest{ChallengeID: j.ch.ID, Response: j.ans})
				errs <- err
			}()
		}
		close(start)
		granted := 0
		for range n {
			err := <-errs
			if err == nil {
				granted++
				continue
			}
			wantCode(t, err, "limit_exceeded")
			if !strings.Contains(err.Error(), "daily limit") {
				t.Fatalf("the error does not name the limit: %v", err)
			}
		}
		fit := limits.Default()[1].PerDay / amount
		if int64(granted) != fit {
			t.Fatalf("%d granted, want %d", granted, fit)
		}
		if u := r.usage(t, c.pid); u != fit*amount {
			t.Fatalf("usage %d, want %d", u, fit*amount)
		}
		if g := r.count(t, `SELECT COUNT(*) FROM tx_intents WHERE grant_hash IS NOT NULL`); int64(g) != fit {
			t.Fatalf("%d grants, want %d", g, fit)
		}
	})
}

// TestCancelReleasesOnce: a cancel before execution and a reversal after
// it give the counted usage back once; the grant of a cancelled intent is
// dead.
func TestCancelReleasesOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db, rigOpt{})
		ctx := context.Background()
		c := r.customer(t, "gridcard")
		a, b := c.intent(400*yuan, "cancel-a"), c.intent(300*yuan, "cancel-b")
		for _, in := range []intentAlias{a, b} {
			if _, err := r.c.Authorize(ctx, in); err != nil {
				t.Fatal(err)
			}
		}
		ga, err := r.prove(t, c, a, "gridcard")
		if err != nil {
			t.Fatal(err)
		}
		gb, err := r.prove(t, c, b, "gridcard")
		if err != nil {
			t.Fatal(err)
		}
		if u := r.usage(t, c.pid); u != 700*yuan {
			t.Fatalf("usage %d", u)
		}
		res, err := r.c.Cancel(ctx, a.HashHex(), "customer changed their mind")
		if err != nil || !res.Released || res.State != txclient.StateCancelled {
			t.Fatalf("%+v %v", res, err)
		}
		_, err = r.c.Cancel(ctx, a.HashHex(), "")
		wantCode(t, err, "cancelled")
		_, err = r.c.Execute(ctx, ga.Token, a)
		wantCode(t, err, "grant_used")
		if u := r.usage(t, c.pid); u != 300*yuan {
			t.Fatalf("usage %d after one cancel, want %d", u, 300*yuan)
		}
		if _, err := r.c.Execute(ctx, gb.Token, b); err != nil {
			t.Fatal(err)
		}
		res, err = r.c.Cancel(ctx, b.HashHex(), "reversed")
		if err != nil || !res.Released {
			t.Fatalf("reverse: %+v %v", res, err)
		}
		if u := r.usage(t, c.pid); u != 0 {
			t.Fatalf("usage %d after the reversal", u)
		}
		_, err = r.c.Cancel(ctx, b.HashHex(), "")
		wantCode(t, err, "cancelled")
		if u := r.usage(t, c.pid); u != 0 {
			t.Fatalf("usage %d after a second cancel", u)
		}
	})
}

// TestChallengeStoredWhole: a tool's challenge and txauth's row of it
// (which intent and tool) commit in one transaction. When txauth's insert
// fails (its table renamed away, as a crash between the two would leave
// it), the tool's challenge is not left behind either, for each tool; the
// same begin with the table back gives one of each.
func TestChallengeStoredWhole(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db, rigOpt{})
		ctx := context.Background()
		for _, tc := range []struct {
			tool   string
			amount int64
		}{
			{"otp", 2_000 * yuan},
			{"gridcard", 800 * yuan},
			{"sms", 20 * yuan},
		} {
			t.Run(tc.tool, func(t *testing.T) {
				c := r.customer(t, "gridcard", "otp")
				d, err := r.c.Authorize(ctx, c.intent(tc.amount, "k-"+randHex(4)))
				if err != nil || d.Decision != "allow" {
					t.Fatalf("%+v %v", d, err)
				}
				if _, err := db.Exec(ctx, `ALTER TABLE tx_challenges RENAME TO tx_challenges_away`); err != nil {
					t.Fatal(err)
				}
				_, err = r.c.Challenge(ctx, d.Intent, txclient.ChallengeRequest{Factor: tc.tool})
				if _, rerr := db.Exec(ctx, `ALTER TABLE tx_challenges_away RENAME TO tx_challenges`); rerr != nil {
					t.Fatal(rerr)
				}
				wantCode(t, err, "unavailable")
				if n := r.count(t, `SELECT COUNT(*) FROM auth_challenges WHERE passport_id = ?`, c.pid); n != 0 {
					t.Fatalf("%d challenges of the tool left without txauth's row", n)
				}
				ch, err := r.c.Challenge(ctx, d.Intent, txclient.ChallengeRequest{Factor: tc.tool})
				if err != nil {
					t.Fatal(err)
				}
				if n := r.count(t, `SELECT COUNT(*) FROM auth_challenges a JOIN tx_challenges c ON c.id = a.id WHERE a.passport_id = ? AND c.intent_hash = ? AND c.factor = ?`, c.pid, d.Intent, tc.tool); n != 1 || ch.ID == "" {
					t.Fatalf("%d challenges stored whole, want 1", n)
				}
			})
		}
	})
}

// TestRightCodeStaysUsedWhenNoGrant: an OTP token's right code moves its
// replay ledger in the transaction that counts the limit and issues the
// grant (challenge.WithSettle). When the grant cannot be issued — over a
// limit lowered after the decision, or its store refused by the
// database — the count and the grant are rolled back and the code is used
// up all the same: the same code on a new challenge is refused, the next
// one buys the grant, counted once.
func TestRightCodeStaysUsedWhenNoGrant(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db, rigOpt{})
		ctx := context.Background()
		refuse, allow := []string{
			`CREATE TRIGGER grant_refuse BEFORE UPDATE OF grant_hash ON tx_intents WHEN NEW.grant_hash IS NOT NULL BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`,
		}, []string{`DROP TRIGGER grant_refuse`}
		if db.Driver() == store.Postgres {
			refuse = []string{
				`CREATE OR REPLACE FUNCTION grant_refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql`,
				`CREATE TRIGGER grant_refuse BEFORE UPDATE OF grant_hash ON tx_intents FOR EACH ROW WHEN (NEW.grant_hash IS NOT NULL) EXECUTE FUNCTION grant_refuse()`,
			}
			allow = []string{`DROP TRIGGER grant_refuse ON tx_intents`}
		}
		exec := func(t *testing.T, qs []string) {
			t.Helper()
			for _, q := range qs {
				if _, err := db.ExecContext(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, tc := range []struct {
			name        string
			block, free func(t *testing.T, c *customer)
			code        string
		}{
			{"over a lowered limit", func(t *testing.T, c *customer) {
				if err := r.svc.Counter().SetOwn(ctx, c.pid, limits.Limit{Level: 3, PerTxn: 100 * yuan, PerDay: 100 * yuan, PerYear: 100 * yuan}); err != nil {
					t.Fatal(err)
				}
			}, func(t *testing.T, c *customer) {
				bank, _ := r.svc.Counter().Table().Of(3)
				if err := r.svc.Counter().SetOwn(ctx, c.pid, bank); err != nil {
					t.Fatal(err)
				}
			}, "limit_exceeded"},
			{"the grant's store refused", func(t *testing.T, c *customer) { exec(t, refuse) }, func(t *testing.T, c *customer) { exec(t, allow) }, "unavailable"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := r.customer(t)
				seed := []byte("0123456789abcdefghij")
				r.importKey(t, c.pid, devotp.Params{Kind: devotp.KindHOTP, Hash: crypto.SHA1, Digits: 6}, seed)
				code := func(n uint64) string {
					s, err := devotp.HOTP(ctx, devotp.SoftwareMAC{Key: seed}, crypto.SHA1, n, 6)
					if err != nil {
						t.Fatal(err)
					}
					return s
				}
				d, err := r.c.Authorize(ctx, c.intent(2_000*yuan, "k-"+randHex(4)))
				if err != nil || d.Decision != "allow" || d.Level != 3 {
					t.Fatalf("%+v %v", d, err)
				}
				proof := func(code string) (txclient.Grant, error) {
					ch, err := r.c.Challenge(ctx, d.Intent, txclient.ChallengeRequest{Factor: "otp"})
					if err != nil {
						t.Fatal(err)
					}
					return r.c.Proof(ctx, d.Intent, txclient.ProofRequest{ChallengeID: ch.ID, Response: code})
				}
				tc.block(t, c)
				_, err = proof(code(0))
				tc.free(t, c)
				wantCode(t, err, tc.code)
				if u, g := r.usage(t, c.pid), r.count(t, `SELECT COUNT(*) FROM tx_intents WHERE hash = ? AND grant_hash IS NOT NULL`, d.Intent); u != 0 || g != 0 {
					t.Fatalf("usage %d, %d grants after the refusal", u, g)
				}
				if _, err := proof(code(0)); err == nil {
					t.Fatal("the code of the refused grant was accepted again")
				}
				g, err := proof(code(1))
				if err != nil || g.Level != 3 {
					t.Fatalf("the next code: %+v %v", g, err)
				}
				if u := r.usage(t, c.pid); u != 2_000*yuan {
					t.Fatalf("usage %d, want one count of %d", u, 2_000*yuan)
				}
			})
		}
	})
}
