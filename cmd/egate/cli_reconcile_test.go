package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/internal/app"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// TestAdminATMReconcile: a SUSPECT withdrawal (its hold in the ledger, the
// ATM's record of a retract that counted fewer notes than it presented) is
// listed beside its hold; a settlement without a reason or with both
// actions is refused and changes nothing; capture 200 of 300 yuan settles
// it, audited with the operator, and the ledger still balances; a second
// settlement is refused.
func TestAdminATMReconcile(t *testing.T) {
	eachEngine(t, func(t *testing.T, b *opBench) {
		ctx := context.Background()
		db := b.open(t)
		l := ledger.New(db, nil)
		if _, err := ebank.EnsureBankAccounts(ctx, l); err != nil {
			t.Fatal(err)
		}
		accts, err := ebank.OpenCustomerAccounts(ctx, l, "P-ALICE", "Alice", ebank.Opening{Current: 1_000_00})
		if err != nil {
			t.Fatal(err)
		}
		wl, err := app.NewWithdrawalLedger(ctx, &ebank.Holds{Ledger: l, Grants: ebank.RequireGrant{}, DefaultTimeout: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		const session, txn = "5e55105e55105e55105e55105e551050", "7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a"
		hold, err := wl.Hold(ctx, "atm-wd:"+session+":hold", accts[0].Number, 300_00, "grant-1")
		if err != nil {
			t.Fatal(err)
		}
		rec := `{"txn":"` + txn + `","state":"RETRACTED","amount_fen":30000,"retracted":1,"cassettes":[{"cassette":1,"requested":3,"picked":3,"presented":3,"rejected":0}]}`
		if _, err := db.Exec(ctx, `INSERT INTO atm_withdrawals (session, atm_id, state, reason, created_ms, expires_ms, updated_ms, account, amount_fen, grant_id, hold_id, txn, notes, record)
			VALUES (?, 'ATM-0101', 'SUSPECT', 'the ATM retracted 1 of 3 notes presented', 1, 2, 3, ?, 30000, 'grant-1', ?, ?, '[{"cassette":1,"count":3,"denomination_fen":10000}]', ?)`,
			session, accts[0].Number, hold, txn, rec); err != nil {
			t.Fatal(err)
		}
		r := b.op(t, "atm", "reconcile")
		for _, want := range []string{session, "ATM-0101", txn, "retracted 1 of 3", "state RETRACTED", "cassette 1: requested 3 picked 3 presented 3", "hold " + hold + " of 300.00 yuan", "pending"} {
			if r.code != 0 || !strings.Contains(r.stdout, want) {
				t.Fatalf("reconcile list lacks %q: %+v", want, r)
			}
		}
		before := len(b.audit(t))
		for _, bad := range [][]string{
			{"--session", session, "--capture", "200"},
			{"--session", session, "--capture", "200", "--release", "--reason", "x"},
			{"--session", session, "--capture", "400", "--reason", "counted"},
			{"--session", "00000000000000000000000000000000", "--release", "--reason", "x"},
		} {
			if r := b.op(t, append([]string{"atm", "reconcile", "--operator", "li.na"}, bad...)...); r.code == 0 || !strings.Contains(r.stderr, "nothing was changed") {
				t.Fatalf("reconcile %v: %+v", bad, r)
			}
		}
		if after := len(b.audit(t)); after != before {
			t.Fatalf("a refused settlement was audited")
		}
		r = b.op(t, "atm", "reconcile", "--operator", "li.na", "--session", session, "--capture", "200", "--reason", "2 notes taken, 1 in the retract bin")
		if r.code != 0 || !strings.Contains(r.stdout, "CAPTURED, captured 200.00 yuan, released 100.00 yuan (by li.na)") {
			t.Fatalf("settle: %+v", r)
		}
		b.lastAudit(t, "admin.atm.reconcile", map[string]string{"operator": "li.na", "session": session, "action": "capture", "captured": "200.00", "released": "100.00", "hold": hold})
		h, err := l.Get(ctx, hold)
		if err != nil || h.State != ledger.HoldCaptured || h.Captured != 200_00 {
			t.Fatalf("the hold: %+v %v", h, err)
		}
		if _, err := ledger.Check(ctx, db); err != nil {
			t.Fatal(err)
		}
		if r := b.op(t, "atm", "reconcile", "--session", session, "--release", "--reason", "again"); r.code == 0 || !strings.Contains(r.stderr, "only a SUSPECT") {
			t.Fatalf("settled twice: %+v", r)
		}
		if r := b.op(t, "atm", "reconcile"); r.code != 0 || !strings.Contains(r.stdout, "no SUSPECT withdrawals") {
			t.Fatalf("list after: %+v", r)
		}
	})
}
