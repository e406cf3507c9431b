package app

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/atm/withdrawal"
	authphone "github.com/egate-bank/egate/authsvc/phone"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// TestWithdrawalHoldRefusedGivesLimitBack: on SQLite and PostgreSQL, the
// balance is spent while the customer types the withdrawal PIN (after the
// authorizer's balance check, before the hold), so the grant is executed
// and the ledger refuses the hold. The customer gets 422
// insufficient_funds saying nothing was paid out; the withdrawal ends
// NOT_DISPENSED; nothing is held or dispensed; and the intent is
// cancelled, so alice's limit usage today is what it was.
func TestWithdrawalHoldRefusedGivesLimitBack(t *testing.T) {
	eachWDBench(t, func(t *testing.T, engine string, b *wdBench) {
		ctx := context.Background()
		tx := LocalTx{Service: b.a.Tx}
		wl, err := NewWithdrawalLedger(ctx, &ebank.Holds{Ledger: b.l, Grants: ebank.RequireGrant{}, DefaultTimeout: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		wl.Intents = &WithdrawalIntents{Tx: tx, DB: b.a.DB, OnError: func(err error) { t.Errorf("the intent's cancel: %v", err) }}
		dev := &wdATM{pad: &pinPad{key: b.padKey, typed: "135790"}}
		auth := &WithdrawalAuthorizer{Tx: tx, Ledger: b.l, ATM: dev, PIN: b.pins, DB: b.a.DB, Phones: b.a.Factors.Phone}
		svc, err := withdrawal.New(withdrawal.Options{DB: b.a.DB, ATM: dev, Ledger: wl, Authorizer: auth,
			OnSettled: WithdrawalSettled(tx, b.l, b.a.DB, func(err error) { t.Errorf("settled: %v", err) })})
		if err != nil {
			t.Fatal(err)
		}
		counter := b.a.Tx.Counter() // the service's own, in its time zone
		usage := func() int64 {
			u, err := counter.Usage(ctx, b.cu.PassportID)
			if err != nil {
				t.Fatal(err)
			}
			return u.Day
		}
		clearing, err := b.l.BankAccount(ctx, ebank.LabelClearing)
		if err != nil {
			t.Fatal(err)
		}
		// While alice types her PIN at the ATM, 950 of her 1,000 yuan
		// leave the account (a payment elsewhere).
		dev.beforePIN = func() {
			if _, err := b.l.Transfer(ctx, ledger.Request{Origin: "test", Key: "spent-" + engine, Debit: b.acct, Credit: clearing.Number,
				Amount: 950_00, Code: "transfer"}); err != nil {
				t.Errorf("spending the balance: %v", err)
			}
		}
		used := usage()

		w, err := svc.Open(ctx, b.atm)
		if err != nil {
			t.Fatal(err)
		}
		ap := withdrawal.Approval{ATM: b.atm, Session: w.Session, Account: b.acct, AmountFen: 300_00}
		ap.Proof = phoneProof(t, b.firstPost(t, withdrawal.Intent{Session: ap.Session, Account: ap.Account, AmountFen: ap.AmountFen}))
		_, err = svc.Approve(ctx, ap)
		var pn *withdrawal.ProofNeeded
		if !errors.As(err, &pn) {
			t.Fatalf("the first post: %v, want the phone's challenge", err)
		}
		sig, err := authphone.Sign(b.dev.ID, b.dk, b.pinKey, pn.Data)
		if err != nil {
			t.Fatal(err)
		}
		ap.Proof = phoneProof(t, b.secondPost(t, withdrawal.Intent{Session: ap.Session, Account: ap.Account, AmountFen: ap.AmountFen}, pn.ChallengeID, sig))
		_, err = svc.Approve(ctx, ap)
		var rf *withdrawal.Refusal
		if !errors.As(err, &rf) || rf.Status != http.StatusUnprocessableEntity || rf.Code != "insufficient_funds" ||
			!strings.Contains(rf.Message, "nothing was paid out") || !errors.Is(err, withdrawal.ErrHoldRefused) {
			t.Fatalf("the approval after the balance was spent: %v, want the hold's refusal insufficient_funds", err)
		}
		if got := usage(); got != used {
			t.Fatalf("alice's limit usage today is %d fen after a withdrawal refused at the hold, was %d", got, used)
		}
		if now, err := svc.Get(ctx, w.Session); err != nil || now.State != withdrawal.NotDispensed || now.Hold != "" {
			t.Fatalf("the withdrawal: %+v, %v; want NOT_DISPENSED with no hold", now, err)
		}
		acct, err := b.l.Account(ctx, b.acct)
		if err != nil {
			t.Fatal(err)
		}
		if acct.Balance() != 50_00 || acct.Available() != 50_00 {
			t.Fatalf("alice's account: balance %d, available %d; want 5000 and nothing held", acct.Balance(), acct.Available())
		}
		if _, n := dev.counts(); n != 0 {
			t.Fatalf("%d dispenses", n)
		}
		// Cancelled again (OnSettled after the refusal): no error, the
		// usage given back once.
		if err := wl.Intents.Cancel(ctx, w.Session, "again"); err != nil || usage() != used {
			t.Fatalf("a second cancel: %v, usage %d (was %d)", err, usage(), used)
		}
	})
}

func phoneProof(t *testing.T, p PhoneProof) string {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
