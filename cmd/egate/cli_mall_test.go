package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/platform/ebank/ledger"
	"github.com/egate-bank/egate/platform/mall"
)

// egate admin mall merchant list|approve|reject on both engines: the list
// shows what the rules found; an ineligible application, a flagged one
// without --accept-risk and a rejection without a reason are refused with
// one line and change nothing; an approval opens the settlement account
// and each decision is in the audit log with the operator.
func TestAdminMallMerchant(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, driver string
		dsn          func(t *testing.T) string
	}{
		{"sqlite", store.SQLite, func(t *testing.T) string { return filepath.Join(t.TempDir(), "egate.db") }},
		{"postgres", store.Postgres, func(t *testing.T) string { return storetest.PostgresDSN(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := tc.dsn(t)
			db, err := store.Open(ctx, store.Config{Driver: tc.driver, DSN: dsn})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			m := &mall.Mall{DB: db, Ledger: ledger.New(db, nil)}
			apply := func(owner, name, category, licence string) mall.Merchant {
				mc, err := m.Apply(ctx, mall.Application{Owner: owner, Name: name, Category: category, Licence: licence, Contact: "1380013800" + owner[len(owner)-1:]})
				if err != nil {
					t.Fatal(err)
				}
				return mc
			}
			good := apply("p-1", "Good Books", "books", "91110000MA0BK00001")
			bad := apply("p-2", "Casino", "gambling", "91110000MA0CA00002")
			risky := apply("p-3", "Gadgets", "electronics", "91110000MA0EL00003")
			other := apply("p-4", "Toys", "toys", "91110000MA0TY00004")

			r := run(t, dir, nil, "admin", "mall", "merchant", "list", "--db", dsn)
			if r.code != 0 || !strings.Contains(r.stdout, "NOT eligible: category_not_allowed") || !strings.Contains(r.stdout, "risk flags: high_risk_category") || strings.Count(r.stdout, "rules: ") != 4 {
				t.Fatalf("list: %+v", r)
			}
			for _, c := range []struct {
				name     string
				args     []string
				mentions []string
			}{
				{"ineligible", []string{"approve", bad.ID}, []string{bad.ID, "admission rules", "category_not_allowed", "nothing was changed"}},
				{"flags not accepted", []string{"approve", risky.ID}, []string{"risk flags", "high_risk_category", "nothing was changed"}},
				{"reject without reason", []string{"reject", other.ID}, []string{"--reason is required"}},
				{"unknown", []string{"approve", "m-nobody"}, []string{"no such merchant"}},
			} {
				t.Run(c.name, func(t *testing.T) {
					r := run(t, dir, nil, append(append([]string{"admin", "mall", "merchant"}, c.args...), "--db", dsn, "--operator", "staff1")...)
					oneLine(t, r, c.mentions...)
				})
			}
			if r := run(t, dir, nil, "admin", "mall", "merchant", "list", "--status", "approved", "--db", dsn); r.code != 0 || r.stdout != "no applications\n" {
				t.Fatalf("refusals approved something: %+v", r)
			}
			for _, args := range [][]string{{"approve", good.ID}, {"approve", risky.ID, "--accept-risk", "--note", "known importer"}, {"reject", other.ID, "--reason", "licence expired"}} {
				if r := run(t, dir, nil, append(append([]string{"admin", "mall", "merchant"}, args...), "--db", dsn, "--operator", "staff1")...); r.code != 0 {
					t.Fatalf("%v: %+v", args, r)
				}
			}
			for _, id := range []string{good.ID, risky.ID} {
				mc, err := m.Merchant(ctx, id)
				accts, _ := ledger.New(db, nil).Accounts(ctx, mall.SettlementOwner(id))
				if err != nil || mc.Status != mall.Approved || len(accts) != 1 || accts[0].Number != mc.Account || mc.Reviewer != "staff1" {
					t.Fatalf("%s: %+v %v accounts %+v", id, mc, err, accts)
				}
			}
			if mc, _ := m.Merchant(ctx, other.ID); mc.Status != mall.Rejected || mc.Note != "licence expired" {
				t.Fatalf("rejected %+v", mc)
			}
			var n int
			if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM audit_log WHERE kind LIKE 'admin.mall.merchant.%' AND record LIKE '%staff1%'`).Scan(&n); err != nil || n != 3 {
				t.Fatalf("audit records %d, %v", n, err)
			}
		})
	}
}
