package txauth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/risk"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// TestRiskRulesFromConfig: transactions.risk-rules replaces the built-in
// rules; a file with a type error stops New naming its file and line; a
// changed file is picked up by a reload and a broken edit leaves the rules
// in force.
func TestRiskRulesFromConfig(t *testing.T) {
	db := storetest.SQLite(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "bank.yaml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rule := func(name, amount string) string {
		return "rules:\n  - name: " + name + "\n    when: intent.amount == " + amount + "\n    action: deny\n    reason: No.\n"
	}
	write("rules:\n  - name: broken\n    when: intent.amount > \"x\"\n    action: deny\n    reason: No.\n")
	cfg := Config{RiskRules: []string{path}, Accounts: []AccountConfig{{Customer: "P1", Account: "6222000000000001"}}}
	_, err := New(cfg, Deps{DB: db})
	if !errors.Is(err, risk.ErrRules) || !strings.Contains(err.Error(), "bank.yaml:3") {
		t.Fatalf("New with a broken rule file: %v", err)
	}
	write(rule("first", "700"))
	now := time.Date(2026, 3, 2, 4, 0, 0, 0, time.UTC)
	s, err := New(cfg, Deps{DB: db, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	decide := func(amount int64) txclient.Decision {
		t.Helper()
		in := intent.Intent{Customer: "P1", Channel: intent.App, Kind: intent.Payment, Payer: "6222000000000001", Payee: "M1", Amount: amount, Currency: "CNY",
			IdempotencyKey: "k" + randHex(4)}
		d, err := s.Authorize(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := decide(700); d.Decision != txclient.Deny || d.Reasons[0].Rule != "first" {
		t.Fatalf("%+v", d)
	}
	// 6,000 yuan from a new device: the built-in new-device-large would step
	// it up to level 4; the configured file alone is in force.
	if d := decide(600000); d.Decision != txclient.Allow || d.Level != 3 {
		t.Fatalf("built-in rules in force: %+v", d)
	}
	write(rule("second", "800"))
	os.Chtimes(path, now.Add(time.Minute), now.Add(time.Minute))
	if changed, err := s.Risk().Reload(); !changed || err != nil {
		t.Fatalf("reload: %v %v", changed, err)
	}
	if d := decide(800); d.Decision != txclient.Deny || d.Reasons[0].Rule != "second" {
		t.Fatalf("after reload: %+v", d)
	}
	write("rules: [")
	os.Chtimes(path, now.Add(2*time.Minute), now.Add(2*time.Minute))
	if _, err := s.Risk().Reload(); err == nil {
		t.Fatal("a broken edit was accepted")
	}
	if d := decide(800); d.Decision != txclient.Deny {
		t.Fatalf("the rules in force were dropped: %+v", d)
	}
}
