package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/egate-bank/egate/atm/withdrawal"
	authphone "github.com/egate-bank/egate/authsvc/phone"
)

// TestWithdrawalFirstPostNeedsThePhone: on SQLite and PostgreSQL, the
// approval's first post makes the bank issue a challenge only when the
// customer's bound phone signed it (device, ts, device_sig over the
// customer, session, account, amount and time). A stranger who knows
// alice's passport id, device id and account gets 401 device_unverified,
// and no challenge is issued and nothing is counted. Issuing challenges
// counts nothing either: after many, alice's phone has no failure and
// answers the last one. A second post is refused the same way without
// the signature, whatever its challenge: it would otherwise tell a
// stranger whether the account is the customer's and holds the amount.
func TestWithdrawalFirstPostNeedsThePhone(t *testing.T) {
	eachWDBench(t, func(t *testing.T, engine string, b *wdBench) {
		ctx := context.Background()
		auth := &WithdrawalAuthorizer{Tx: LocalTx{Service: b.a.Tx}, Ledger: b.l, ATM: &pinPad{key: b.padKey, typed: "135790"}, PIN: b.pins, Phones: b.a.Factors.Phone}
		in := withdrawal.Intent{Kind: "withdrawal", Account: b.acct, AmountFen: 100_00, ATM: b.atm, Session: "devsession0000000000000000000001"}
		proof := func(p PhoneProof) string { j, _ := json.Marshal(p); return string(j) }
		challenges := func() int {
			var n int
			if err := b.a.DB.QueryRow(ctx, `SELECT COUNT(*) FROM auth_challenges WHERE passport_id = ?`, b.cu.PassportID).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		failures := func() int {
			n, err := b.a.Auth.Passport().Failures(ctx, "pid:"+b.cu.PassportID, authphone.Name)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		signed := func(k *ecdsa.PrivateKey, session string, fen int64, ts time.Time) PhoneProof {
			sig, err := authphone.SignDevice(k, authphone.WithdrawalRequestData(b.cu.PassportID, session, b.acct, fen, ts.UnixMilli()))
			if err != nil {
				t.Fatal(err)
			}
			return PhoneProof{Customer: b.cu.PassportID, Device: b.dev.ID, TS: ts.UnixMilli(), DeviceSig: sig}
		}
		other, _ := b.a.Auth.Passport().Register(ctx, passportCustomer("wdmallory"))
		foreign := signed(b.dk, in.Session, in.AmountFen, time.Now())
		foreign.Customer = other.PassportID
		for _, tc := range []struct {
			name string
			p    PhoneProof
		}{
			{"the customer and device alone (the old first post)", PhoneProof{Customer: b.cu.PassportID, Device: b.dev.ID}},
			{"signed by a stranger's key", signed(stranger, in.Session, in.AmountFen, time.Now())},
			{"signed for another session", signed(b.dk, "devsession0000000000000000000002", in.AmountFen, time.Now())},
			{"signed for another amount", signed(b.dk, in.Session, 200_00, time.Now())},
			{"signed ten minutes ago", signed(b.dk, in.Session, in.AmountFen, time.Now().Add(-10*time.Minute))},
			{"alice's phone named for another customer", foreign},
			{"a second post with a made-up challenge, unsigned", PhoneProof{Customer: b.cu.PassportID, Device: b.dev.ID, ChallengeID: "made-up", Response: "x"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ch, f := challenges(), failures()
				_, err := auth.Authorize(ctx, in, proof(tc.p))
				var rf *withdrawal.Refusal
				if !errors.As(err, &rf) || rf.Status != http.StatusUnauthorized || rf.Code != "device_unverified" || rf.Message == "" {
					t.Fatalf("the stranger's first post: %v, want 401 device_unverified", err)
				}
				if challenges() != ch || failures() != f {
					t.Fatalf("challenges %d → %d, phone failures %d → %d: the refused post changed something", ch, challenges(), f, failures())
				}
			})
		}

		// Alice's own phone asks ten times: ten challenges, no failure
		// counted, and the last is answered.
		var pn *withdrawal.ProofNeeded
		for i := range 10 {
			_, err := auth.Authorize(ctx, in, proof(b.firstPost(t, in)))
			if !errors.As(err, &pn) {
				t.Fatalf("first post %d: %v, want the phone's challenge", i, err)
			}
		}
		if f := failures(); f != 0 {
			t.Fatalf("ten issued challenges counted %d phone failures", f)
		}
		sig, err := authphone.Sign(b.dev.ID, b.dk, b.pinKey, pn.Data)
		if err != nil {
			t.Fatal(err)
		}
		grant, err := auth.Authorize(ctx, in, proof(b.secondPost(t, in, pn.ChallengeID, sig)))
		if err != nil || grant == "" {
			t.Fatalf("alice's answer after ten challenges: %q, %v", grant, err)
		}
	})
}
