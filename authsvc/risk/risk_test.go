package risk

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func compile(t *testing.T, src string) *Set {
	t.Helper()
	s, err := Compile(map[string][]byte{"r.yaml": []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBuiltinCompiles(t *testing.T) {
	s, err := Compile(Builtin())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Rules) < 8 {
		t.Fatalf("%d builtin rules", len(s.Rules))
	}
}

func TestBadRules(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, src string
		line      int
		mentions  string
	}{
		{"syntax error", "rules:\n  - name: a\n    when: intent.amount >\n    action: deny\n    reason: x\n", 3, "when: column 1:16: Syntax error"},
		{"type error", "rules:\n  - name: a\n    when: intent.amount > 'x'\n    action: deny\n    reason: x\n", 3, "no matching overload"},
		{"unknown feature", "rules:\n  - name: a\n    when: card.pin == 1\n    action: deny\n    reason: x\n", 3, "undeclared reference"},
		{"not a bool", "rules:\n  - name: a\n    when: intent.amount + 1\n    action: deny\n    reason: x\n", 3, "want bool"},
		{"unknown action", "rules:\n  - name: a\n    when: device.new\n    action: block\n    reason: x\n", 2, "use deny, review or step-up"},
		{"step-up without level", "rules:\n  - name: a\n    when: device.new\n    action: step-up\n    reason: x\n", 2, "level"},
		{"level on deny", "rules:\n  - name: a\n    when: device.new\n    action: deny\n    level: 3\n    reason: x\n", 2, "only a step-up"},
		{"no reason", "rules:\n  - name: a\n    when: device.new\n    action: deny\n", 2, "reason"},
		{"bad name", "rules:\n  - name: A B\n    when: device.new\n    action: deny\n    reason: x\n", 2, "name"},
		{"unknown key", "rules:\n  - name: a\n    when: device.new\n    action: deny\n    reason: x\n    severity: 3\n", 2, "severity"},
		{"duplicate name", "rules:\n  - name: a\n    when: device.new\n    action: deny\n    reason: x\n  - name: a\n    when: device.rooted\n    action: deny\n    reason: y\n", 6, "same name"},
		{"not yaml", "rules: [\n", 0, ""},
		{"unknown top-level key", "rule:\n  - name: a\n", 1, "rule"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Compile(map[string][]byte{"bank.yaml": []byte(tc.src)})
			var le *LoadError
			if !errors.As(err, &le) || !errors.Is(err, ErrRules) {
				t.Fatalf("err = %v, want a *LoadError", err)
			}
			if le.File != "bank.yaml" || (tc.line != 0 && le.Line != tc.line) {
				t.Fatalf("%v: want bank.yaml line %d", err, tc.line)
			}
			if !strings.Contains(err.Error(), tc.mentions) {
				t.Fatalf("%v does not mention %q", err, tc.mentions)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

const sample = `rules:
  - name: big
    when: intent.amount >= 1000000
    action: step-up
    level: 4
    reason: big
  - name: bigger
    when: intent.amount >= 5000000
    action: step-up
    level: 5
    reason: bigger
  - name: fast
    when: velocity.count_1h >= 10
    action: review
    reason: fast
  - name: rooted
    when: device.rooted
    action: deny
    reason: rooted
  - name: trial
    when: device.new
    action: deny
    reason: trial
    dry-run: true
`

func TestDecide(t *testing.T) {
	t.Parallel()
	s := compile(t, sample)
	for _, tc := range []struct {
		name   string
		f      Features
		base   int
		action Action
		level  int
		fired  []string
		dry    []string
	}{
		{"nothing fires", Features{Amount: 100}, 2, Allow, 2, nil, nil},
		{"step-up raises the level", Features{Amount: 1_000_000}, 3, Allow, 4, []string{"big"}, nil},
		{"two step-ups: the higher", Features{Amount: 5_000_000}, 3, Allow, 5, []string{"big", "bigger"}, nil},
		{"step-up never lowers", Features{Amount: 1_000_000}, 5, Allow, 5, []string{"big"}, nil},
		{"review beats step-up", Features{Amount: 1_000_000, Count1h: 12}, 3, Review, 4, []string{"big", "fast"}, nil},
		{"deny beats review", Features{Count1h: 12, DeviceRooted: true}, 2, Deny, 2, []string{"fast", "rooted"}, nil},
		{"dry-run listed, not acted on", Features{DeviceNew: true}, 2, Allow, 2, nil, []string{"trial"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := s.Decide(&tc.f, tc.base)
			if d.Action != tc.action || d.Level != tc.level {
				t.Fatalf("decision %s level %d, want %s level %d", d.Action, d.Level, tc.action, tc.level)
			}
			if got := ruleNames(d.Fired); strings.Join(got, ",") != strings.Join(tc.fired, ",") {
				t.Fatalf("fired %v, want %v", got, tc.fired)
			}
			if got := ruleNames(d.DryRun); strings.Join(got, ",") != strings.Join(tc.dry, ",") {
				t.Fatalf("dry-run %v, want %v", got, tc.dry)
			}
		})
	}
}

func ruleNames(fs []Fired) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Rule)
	}
	return out
}

func TestBuiltinDecisions(t *testing.T) {
	t.Parallel()
	s, err := Compile(Builtin())
	if err != nil {
		t.Fatal(err)
	}
	known := Features{Amount: 50_000, CustomerAgeDays: 400, PayeeKnown: true, HistoryCount: 20, HistoryMaxAmount: 200_000, Hour: 14, LocationJumpKm: -1, AccountAgeDays: 400}
	for _, tc := range []struct {
		name   string
		mod    func(*Features)
		action Action
		level  int
	}{
		{"an ordinary payment", func(*Features) {}, Allow, 2},
		{"5,000 yuan from a new device", func(f *Features) { f.Amount = 500_000; f.DeviceNew = true }, Allow, 4},
		{"takeover signs", func(f *Features) { f.FailedLogins24h = 6; f.DeviceNew = true }, Deny, 2},
		{"ten in an hour", func(f *Features) { f.Count1h = 10 }, Review, 2},
		{"a first large payment to a new payee", func(f *Features) { f.PayeeKnown = false; f.PayeeFirstPay = true; f.Amount = 2_000_000 }, Allow, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := known
			tc.mod(&f)
			d := s.Decide(&f, 2)
			if d.Action != tc.action || d.Level != tc.level {
				t.Fatalf("%s level %d (fired %v), want %s level %d", d.Action, d.Level, ruleNames(d.Fired), tc.action, tc.level)
			}
		})
	}
}

// A bad file on reload is refused and the set in force stays; a good one
// replaces it; Watch reports both.
func TestHotReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bank.yaml")
	write := func(src string, stamp time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		// Modification times on some file systems are coarse: give each
		// write its own.
		if err := os.Chtimes(path, stamp, stamp); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now().Add(-time.Hour)
	write(sample, t0)
	e, err := NewEngine([]string{dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rooted := &Features{DeviceRooted: true}
	if d := e.Decide(rooted, 2); d.Action != Deny {
		t.Fatalf("before reload: %s", d.Action)
	}
	reports := make(chan error, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Watch(ctx, 10*time.Millisecond, func(changed bool, err error) { reports <- err })

	write(strings.Replace(sample, "when: device.rooted", "when: device.rooted &&", 1), t0.Add(time.Second))
	if err := <-reports; !errors.Is(err, ErrRules) || !strings.Contains(err.Error(), "bank.yaml:17: rule \"rooted\": when: column") {
		t.Fatalf("bad reload reported %v, want the file and line", err)
	}
	if d := e.Decide(rooted, 2); d.Action != Deny {
		t.Fatalf("after a refused reload the rules changed: %s", d.Action)
	}
	write(strings.Replace(sample, "action: deny\n    reason: rooted", "action: review\n    reason: rooted", 1), t0.Add(2*time.Second))
	if err := <-reports; err != nil {
		t.Fatalf("good reload: %v", err)
	}
	if d := e.Decide(rooted, 2); d.Action != Review {
		t.Fatalf("after reload: %s, want review", d.Action)
	}
}
