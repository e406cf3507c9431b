// Package risk decides, in the path of every money movement, whether the
// bank lets it go at the level the limit table asks, asks for more, holds it
// for a person to review, or refuses it.
//
// Rules are written in CEL (cel.dev/cel-go) over a fixed set of features of
// the intent, the customer, their behaviour, the payee and the device (see
// Features; every name is declared with its type). A rule file is YAML:
//
//	rules:
//	  - name: new-device-large-amount
//	    when: device.new && intent.amount >= 500000
//	    action: step-up        # deny, review or step-up
//	    level: 4               # step-up: the level to require at least
//	    reason: A large amount from a device we have not seen before.
//	    dry-run: false         # true: recorded as it would have fired, not acted on
//
// Rules are parsed and type-checked when loaded: a rule that does not
// compile, is not a bool, names an unknown feature or an unknown action is
// refused with its file and line, and the set in force stays (Engine.Load,
// Engine.Watch). Every decision lists the rules that fired, the dry-run ones
// apart. Programs are compiled once; evaluating one is a walk over a
// pre-planned tree with no allocation of its own beyond the activation, so a
// few hundred rules decide in well under a millisecond.
package risk

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/interpreter"
)

// Action is what a rule does when it fires.
type Action string

// The actions, from mildest.
const (
	Allow  Action = "allow"
	StepUp Action = "step-up"
	Review Action = "review"
	Deny   Action = "deny"
)

func (a Action) rank() int {
	switch a {
	case StepUp:
		return 1
	case Review:
		return 2
	case Deny:
		return 3
	}
	return 0
}

// Features are what rules see. Amounts are fen, ages days, times in the
// bank's time zone.
type Features struct {
	// The intent.
	Amount   int64  // intent.amount
	Kind     string // intent.kind
	Channel  string // intent.channel
	Currency string // intent.currency
	Payee    string // intent.payee
	// The customer and the account.
	CustomerAgeDays int64 // customer.age_days: since the passport was made
	AccountAgeDays  int64 // account.age_days: since the payer account was opened (-1 unknown)
	// Behaviour.
	Count1h          int64 // velocity.count_1h: intents in the last hour
	Count24h         int64 // velocity.count_24h
	Amount24h        int64 // velocity.amount_24h: fen asked in the last 24 hours
	Hour             int64 // time.hour: 0–23
	Weekday          int64 // time.weekday: 0 Sunday … 6 Saturday
	FailedLogins24h  int64 // failures.logins_24h
	FailedProofs24h  int64 // failures.proofs_24h
	PayeeKnown       bool  // payee.known: saved, or paid before
	PayeeFirstPay    bool  // payee.first_payment: no completed movement to it yet
	HistoryCount     int64 // history.count: completed movements in 90 days
	HistoryMaxAmount int64 // history.max_amount
	HistoryAvgAmount int64 // history.avg_amount
	DeviceNew        bool  // device.new: fingerprint not seen for this customer
	DeviceRooted     bool  // device.rooted: the app reported a rooted or jailbroken phone
	LocationJumpKm   int64 // device.location_jump_km: distance from the last login's place, -1 unknown
}

// variable is one declared feature.
type variable struct {
	name string
	typ  *cel.Type
	get  func(f *Features) any
}

var variables = []variable{
	{"intent.amount", cel.IntType, func(f *Features) any { return f.Amount }},
	{"intent.kind", cel.StringType, func(f *Features) any { return f.Kind }},
	{"intent.channel", cel.StringType, func(f *Features) any { return f.Channel }},
	{"intent.currency", cel.StringType, func(f *Features) any { return f.Currency }},
	{"intent.payee", cel.StringType, func(f *Features) any { return f.Payee }},
	{"customer.age_days", cel.IntType, func(f *Features) any { return f.CustomerAgeDays }},
	{"account.age_days", cel.IntType, func(f *Features) any { return f.AccountAgeDays }},
	{"velocity.count_1h", cel.IntType, func(f *Features) any { return f.Count1h }},
	{"velocity.count_24h", cel.IntType, func(f *Features) any { return f.Count24h }},
	{"velocity.amount_24h", cel.IntType, func(f *Features) any { return f.Amount24h }},
	{"time.hour", cel.IntType, func(f *Features) any { return f.Hour }},
	{"time.weekday", cel.IntType, func(f *Features) any { return f.Weekday }},
	{"failures.logins_24h", cel.IntType, func(f *Features) any { return f.FailedLogins24h }},
	{"failures.proofs_24h", cel.IntType, func(f *Features) any { return f.FailedProofs24h }},
	{"payee.known", cel.BoolType, func(f *Features) any { return f.PayeeKnown }},
	{"payee.first_payment", cel.BoolType, func(f *Features) any { return f.PayeeFirstPay }},
	{"history.count", cel.IntType, func(f *Features) any { return f.HistoryCount }},
	{"history.max_amount", cel.IntType, func(f *Features) any { return f.HistoryMaxAmount }},
	{"history.avg_amount", cel.IntType, func(f *Features) any { return f.HistoryAvgAmount }},
	{"device.new", cel.BoolType, func(f *Features) any { return f.DeviceNew }},
	{"device.rooted", cel.BoolType, func(f *Features) any { return f.DeviceRooted }},
	{"device.location_jump_km", cel.IntType, func(f *Features) any { return f.LocationJumpKm }},
}

// FeatureNames lists the names rules may use, for docs and errors.
func FeatureNames() []string {
	out := make([]string, len(variables))
	for i, v := range variables {
		out[i] = v.name
	}
	return out
}

// activation hands the features to a program without building a map.
type activation struct{ f *Features }

var index = func() map[string]int {
	m := make(map[string]int, len(variables))
	for i, v := range variables {
		m[v.name] = i
	}
	return m
}()

func (a activation) ResolveName(name string) (any, bool) {
	i, ok := index[name]
	if !ok {
		return nil, false
	}
	return variables[i].get(a.f), true
}

func (a activation) Parent() interpreter.Activation { return nil }

func newEnv() (*cel.Env, error) {
	opts := make([]cel.EnvOption, 0, len(variables))
	for _, v := range variables {
		opts = append(opts, cel.Variable(v.name, v.typ))
	}
	return cel.NewEnv(opts...)
}

// Rule is one compiled rule.
type Rule struct {
	Name   string
	When   string
	Action Action
	Level  int // for step-up
	Reason string
	DryRun bool
	File   string
	Line   int
	prg    cel.Program
}

// Fired is a rule that fired in a decision.
type Fired struct {
	Rule   string `json:"rule"`
	Action Action `json:"action"`
	Level  int    `json:"level,omitempty"`
	Reason string `json:"reason"`
	DryRun bool   `json:"dry_run,omitempty"`
}

// Decision is what the rules decided about one intent.
type Decision struct {
	Action Action   `json:"action"` // allow (at Level), review or deny
	Level  int      `json:"level"`  // the level required: the limit table's, raised by step-up rules
	Fired  []Fired  `json:"fired"`  // rules that acted, in rule order
	DryRun []Fired  `json:"dry_run,omitempty"`
	Errors []string `json:"errors,omitempty"` // rules that failed to evaluate (they count as review)
}

// Reasons are the fired rules' reasons, for the customer and the audit log.
func (d Decision) Reasons() []string {
	out := make([]string, 0, len(d.Fired))
	for _, f := range d.Fired {
		out = append(out, f.Reason)
	}
	return out
}

// Set is a compiled rule set.
type Set struct {
	Rules []*Rule
}

// Decide evaluates every rule over f. base is the level the limit table
// asks for. A rule that fails at run time (it cannot with the declared
// types, short of a division by zero) sends the intent to review rather
// than letting it through unexamined.
func (s *Set) Decide(f *Features, base int) Decision {
	d := Decision{Action: Allow, Level: base}
	act := activation{f}
	for _, r := range s.Rules {
		out, _, err := r.prg.Eval(act)
		if err != nil {
			d.Errors = append(d.Errors, fmt.Sprintf("%s: %v", r.Name, err))
			if !r.DryRun && d.Action.rank() < Review.rank() {
				d.Action = Review
			}
			continue
		}
		if out.Value() != true {
			continue
		}
		fr := Fired{Rule: r.Name, Action: r.Action, Level: r.Level, Reason: r.Reason, DryRun: r.DryRun}
		if r.DryRun {
			d.DryRun = append(d.DryRun, fr)
			continue
		}
		d.Fired = append(d.Fired, fr)
		if r.Action == StepUp {
			d.Level = max(d.Level, r.Level)
			if d.Action == Allow {
				d.Action = StepUp
			}
			continue
		}
		if r.Action.rank() > d.Action.rank() {
			d.Action = r.Action
		}
	}
	if d.Action == StepUp {
		d.Action = Allow
	}
	return d
}

// LoadError is a rule file that was refused, with where.
type LoadError struct {
	File string
	Line int
	Rule string
	Msg  string
}

func (e *LoadError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Rule != "" {
		fmt.Fprintf(&b, ": rule %q", e.Rule)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// ErrRules matches every *LoadError.
var ErrRules = errors.New("risk rules")

// Is makes errors.Is(err, ErrRules) true.
func (e *LoadError) Is(target error) bool { return target == ErrRules }

// sortRules orders rules by file then line, so decisions list them in the
// order an operator reads them.
func sortRules(rs []*Rule) {
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].File != rs[j].File {
			return rs[i].File < rs[j].File
		}
		return rs[i].Line < rs[j].Line
	})
}
