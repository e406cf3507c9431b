package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/alerts"
	"github.com/egate-bank/egate/authsvc/audit"
	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/risk"
	"github.com/egate-bank/egate/authsvc/txauth"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/store"
)

const riskTestRules = `rules:
  - name: odd-amount
    when: intent.amount == 123400 || intent.amount == 234500
    action: review
    reason: This amount is checked by a person.
`

// TestAdminRiskReview: intents held for review are listed by the real
// binary; approve releases one (the customer can prove it at the decided
// level), deny refuses the other; each verdict is audited with the
// operator and alerts the customer; a second verdict and an unknown
// intent are refused with one line.
func TestAdminRiskReview(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "egate.db")
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{Driver: store.SQLite, DSN: dbPath})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	eng, err := risk.NewEngine(nil, map[string][]byte{"t.yaml": []byte(riskTestRules)})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := txauth.New(txauth.Config{Accounts: []txauth.AccountConfig{{Customer: "P1", Account: "6222000000000001"}}}, txauth.Deps{DB: db, Risk: eng})
	if err != nil {
		t.Fatal(err)
	}
	in := intent.Intent{Customer: "P1", Channel: intent.Web, Kind: intent.Transfer, Payer: "6222000000000001", Payee: "6222000000000002", Amount: 123400, Currency: "CNY", IdempotencyKey: "r1"}
	in2 := in
	in2.Amount, in2.IdempotencyKey = 234500, "r2"
	var hashes []string
	for _, x := range []intent.Intent{in, in2} {
		d, err := svc.Authorize(ctx, x)
		if err != nil || d.Decision != txclient.Review {
			t.Fatalf("%+v %v", d, err)
		}
		hashes = append(hashes, d.Intent)
	}
	dbf := []string{"--db", dbPath}
	r := run(t, dir, nil, append([]string{"admin", "risk", "review", "list"}, dbf...)...)
	if r.code != 0 || !strings.Contains(r.stdout, hashes[0]) || !strings.Contains(r.stdout, hashes[1]) || !strings.Contains(r.stdout, "odd-amount") || !strings.Contains(r.stdout, "2 waiting") {
		t.Fatalf("list: %+v", r)
	}
	r = run(t, dir, nil, append([]string{"admin", "risk", "review", "approve", hashes[0], "--operator", "alice", "--note", "called the customer"}, dbf...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "allowed by alice") {
		t.Fatalf("approve: %+v", r)
	}
	r = run(t, dir, nil, append([]string{"admin", "risk", "review", "deny", hashes[1]}, dbf...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "refused by ") {
		t.Fatalf("deny: %+v", r)
	}
	for i, want := range []string{txclient.StateAllowed, txclient.StateRefused} {
		d, err := svc.Get(ctx, hashes[i])
		if err != nil || d.State != want {
			t.Fatalf("intent %d: %+v %v, want %s", i, d, err, want)
		}
	}
	if d, _ := svc.Get(ctx, hashes[0]); d.Level != 3 || !strings.Contains(d.Message, "approved") {
		t.Fatalf("approved: %+v", d)
	}
	oneLine(t, run(t, dir, nil, append([]string{"admin", "risk", "review", "approve", hashes[1], "--operator", "alice"}, dbf...)...), "not_under_review", "refused")
	oneLine(t, run(t, dir, nil, append([]string{"admin", "risk", "review", "deny", strings.Repeat("0", 64)}, dbf...)...), "unknown_intent")
	oneLine(t, run(t, dir, nil, "admin", "risk", "review", "list", "--db", filepath.Join(dir, "nope.db")), "nope.db")
	r = run(t, dir, nil, append([]string{"admin", "risk", "review", "list"}, dbf...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "0 waiting") {
		t.Fatalf("list after: %+v", r)
	}

	es, err := audit.New(db, nil).Tail(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	verdicts := map[string]string{}
	for _, e := range es {
		if e.Kind == "tx.review" {
			verdicts[e.Fields["intent"]] = e.Fields["verdict"] + " " + e.Fields["operator"]
		}
	}
	if verdicts[hashes[0]] != "approve alice" || !strings.HasPrefix(verdicts[hashes[1]], "deny ") || verdicts[hashes[1]] == "deny " {
		t.Fatalf("audited verdicts %v", verdicts)
	}
	al, err := alerts.New(db, nil).ForCustomer(ctx, "P1", 20)
	if err != nil {
		t.Fatal(err)
	}
	events := map[string]bool{}
	for _, a := range al {
		var b alerts.TxRisk
		json.Unmarshal(a.Body, &b)
		events[b.Intent[:8]+" "+b.Event] = true
	}
	for _, want := range []string{hashes[0][:8] + " review", hashes[0][:8] + " approved", hashes[1][:8] + " refused"} {
		if !events[want] {
			t.Fatalf("no alert %q in %v", want, events)
		}
	}
}

// TestAdminRiskTest: egate admin risk test runs a rule file over a
// JSON-lines file of intents and features, and over the intents recorded
// in the database, printing each decision with the rules that fired; a
// rule file with a type error is refused naming its line.
func TestAdminRiskTest(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	os.WriteFile(rules, []byte(`rules:
  - name: new-device
    when: device.new && intent.amount >= 100000
    action: step-up
    level: 4
    reason: New device.
  - name: night
    when: time.hour < 6
    action: review
    reason: Night.
  - name: would-deny-refunds
    when: intent.kind == "refund"
    action: deny
    dry-run: true
    reason: Refunds.
`), 0o600)
	lines := `{"intent": {"customer":"P1","channel":"app","kind":"transfer","payer":"A1","payee":"B1","amount":200000,"currency":"CNY","idempotency_key":"1"}, "features": {"device.new": true, "time.hour": 12}}
{"intent": {"customer":"P1","channel":"app","kind":"refund","payer":"A1","payee":"B1","amount":500,"currency":"CNY","idempotency_key":"2"}, "features": {"time.hour": 3}, "level": 2}
{"intent": {"customer":"P1","channel":"app","kind":"payment","payer":"A1","payee":"B1","amount":500,"currency":"CNY","idempotency_key":"3"}, "features": {"time.hour": 12}}
`
	intents := filepath.Join(dir, "intents.jsonl")
	os.WriteFile(intents, []byte(lines), 0o600)
	r := run(t, dir, nil, "admin", "risk", "test", rules, intents)
	out := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(out) != 3 {
		t.Fatalf("%+v", r)
	}
	for i, want := range []string{"2,000.00 yuan transfer: allow at level 4 rules=new-device", "5.00 yuan refund: review rules=night dry-run=would-deny-refunds", "5.00 yuan payment: allow at level 2 rules=-"} {
		if !strings.Contains(out[i], want) {
			t.Fatalf("line %d %q, want %q", i+1, out[i], want)
		}
	}

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("rules:\n  - name: typo\n    when: intent.amount > \"x\"\n    action: deny\n    reason: x\n"), 0o600)
	oneLine(t, run(t, dir, nil, "admin", "risk", "test", bad, intents), "bad.yaml:3", "typo")
	badIntents := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(badIntents, []byte(`{"intent": {"customer":"P1","channel":"app","kind":"transfer","payer":"A1","payee":"B1","amount":-5,"currency":"CNY","idempotency_key":"1"}}`+"\n"), 0o600)
	oneLine(t, run(t, dir, nil, "admin", "risk", "test", rules, badIntents), "bad.jsonl:1", "amount")

	// Recorded intents, with the features they were decided on.
	dbPath := filepath.Join(dir, "egate.db")
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{Driver: store.SQLite, DSN: dbPath})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	noon := func() time.Time { return time.Date(2026, 3, 2, 4, 0, 0, 0, time.UTC) } // 12:00 in Shanghai: the night rule stays quiet
	svc, err := txauth.New(txauth.Config{Accounts: []txauth.AccountConfig{{Customer: "P1", Account: "6222000000000001"}}}, txauth.Deps{DB: db, Now: noon})
	if err != nil {
		t.Fatal(err)
	}
	in := intent.Intent{Customer: "P1", Channel: intent.Web, Kind: intent.Transfer, Payer: "6222000000000001", Payee: "6222000000000002", Amount: 150000, Currency: "CNY", Device: "fp", IdempotencyKey: "d1"}
	d, err := svc.Authorize(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	r = run(t, dir, nil, "admin", "risk", "test", rules, "db", "--db", dbPath)
	if r.code != 0 || !strings.Contains(r.stdout, d.Intent[:12]+" 1,500.00 yuan transfer: allow at level 4 rules=new-device (recorded: allow)") {
		t.Fatalf("%+v", r)
	}
}
