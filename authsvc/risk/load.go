package risk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"cel.dev/cel-go/cel"
	"go.yaml.in/yaml/v3"
)

// fileYAML is a rule file. Unknown keys are refused.
type fileYAML struct {
	DryRun bool        `yaml:"dry-run"` // every rule of the file in dry-run
	Rules  []yaml.Node `yaml:"rules"`
}

type ruleYAML struct {
	Name   string `yaml:"name"`
	When   string `yaml:"when"`
	Action Action `yaml:"action"`
	Level  int    `yaml:"level"`
	Reason string `yaml:"reason"`
	DryRun bool   `yaml:"dry-run"`
}

// Compile parses and type-checks the rule files given by name and content
// (name is what errors show). Rule names must be unique across the set.
func Compile(files map[string][]byte) (*Set, error) {
	env, err := newEnv()
	if err != nil {
		return nil, fmt.Errorf("risk: CEL environment: %w", err)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	set := &Set{}
	seen := map[string]string{}
	for _, name := range names {
		rs, err := compileFile(env, name, files[name])
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			if where, dup := seen[r.Name]; dup {
				return nil, &LoadError{File: name, Line: r.Line, Rule: r.Name, Msg: "the same name as the rule at " + where}
			}
			seen[r.Name] = fmt.Sprintf("%s:%d", name, r.Line)
		}
		set.Rules = append(set.Rules, rs...)
	}
	sortRules(set.Rules)
	return set, nil
}

func compileFile(env *cel.Env, name string, data []byte) ([]*Rule, error) {
	var f fileYAML
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, &LoadError{File: name, Line: yamlLine(err), Msg: yamlMsg(err)}
	}
	var out []*Rule
	for _, node := range f.Rules {
		var ry ruleYAML
		line := node.Line
		if err := decodeStrict(&node, &ry); err != nil {
			return nil, &LoadError{File: name, Line: line, Msg: yamlMsg(err)}
		}
		r, err := compileRule(env, ry)
		if err != nil {
			var we *whenError
			if errors.As(err, &we) {
				// Point at the condition's own line.
				line = keyLine(&node, "when", line)
			}
			return nil, &LoadError{File: name, Line: line, Rule: ry.Name, Msg: err.Error()}
		}
		r.File, r.Line = name, line
		r.DryRun = r.DryRun || f.DryRun
		out = append(out, r)
	}
	return out, nil
}

// decodeStrict decodes a node refusing unknown keys (yaml.Node.Decode has no
// KnownFields of its own): it re-encodes and decodes strictly.
func decodeStrict(n *yaml.Node, v any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(v)
}

func yamlLine(err error) int {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		var l int
		if _, e := fmt.Sscanf(te.Errors[0], "line %d:", &l); e == nil {
			return l
		}
	}
	var l int
	if _, e := fmt.Sscanf(strings.TrimPrefix(err.Error(), "yaml: "), "line %d:", &l); e == nil {
		return l
	}
	return 0
}

func yamlMsg(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		return te.Errors[0]
	}
	return err.Error()
}

var validName = func(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func compileRule(env *cel.Env, ry ruleYAML) (*Rule, error) {
	if !validName(ry.Name) {
		return nil, errors.New("name: give a name of lower-case letters, digits, '-' and '_' (at most 64)")
	}
	switch ry.Action {
	case Deny, Review:
		if ry.Level != 0 {
			return nil, fmt.Errorf("level: only a step-up rule takes a level")
		}
	case StepUp:
		if ry.Level < 2 || ry.Level > 5 {
			return nil, fmt.Errorf("level: a step-up rule names the level to require, 2 to 5")
		}
	default:
		return nil, fmt.Errorf("action %q: use deny, review or step-up", ry.Action)
	}
	if strings.TrimSpace(ry.Reason) == "" {
		return nil, errors.New("reason: say in a sentence why the rule acts (customers and staff read it)")
	}
	if strings.TrimSpace(ry.When) == "" {
		return nil, errors.New("when: give the CEL condition")
	}
	ast, iss := env.Compile(ry.When)
	if iss != nil && iss.Err() != nil {
		// CEL's first line says what and where in the condition; the
		// lines after it draw the condition again.
		msg, _, _ := strings.Cut(iss.Err().Error(), "\n")
		msg = strings.TrimPrefix(strings.TrimPrefix(msg, "ERROR: "), "<input>:")
		return nil, &whenError{"when: column " + msg}
	}
	if ast.OutputType() != cel.BoolType {
		return nil, &whenError{fmt.Sprintf("when: the condition is %s, want bool", ast.OutputType())}
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, fmt.Errorf("when: %w", err)
	}
	return &Rule{Name: ry.Name, When: ry.When, Action: ry.Action, Level: ry.Level, Reason: strings.TrimSpace(ry.Reason), DryRun: ry.DryRun, prg: prg}, nil
}

// whenError is a condition that does not compile.
type whenError struct{ msg string }

func (e *whenError) Error() string { return e.msg }

// keyLine is the line of key's value in a mapping node, or def.
func keyLine(n *yaml.Node, key string, def int) int {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1].Line
		}
	}
	return def
}

// LoadFiles reads rule files: each path a .yaml/.yml file or a directory
// whose .yaml/.yml files are read (not recursively).
func LoadFiles(paths []string) (*Set, error) {
	files, err := readFiles(paths)
	if err != nil {
		return nil, err
	}
	return Compile(files)
}

func readFiles(paths []string) (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, &LoadError{File: p, Msg: "cannot read: " + pathErr(err)}
		}
		list := []string{p}
		if st.IsDir() {
			list = nil
			ents, err := os.ReadDir(p)
			if err != nil {
				return nil, &LoadError{File: p, Msg: "cannot read: " + pathErr(err)}
			}
			for _, e := range ents {
				if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
					list = append(list, filepath.Join(p, e.Name()))
				}
			}
		}
		for _, f := range list {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, &LoadError{File: f, Msg: "cannot read: " + pathErr(err)}
			}
			files[f] = b
		}
	}
	return files, nil
}

func pathErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Engine holds the rule set in force and replaces it when the files change.
// Decide is safe for concurrent use; a reload swaps the set atomically, so a
// decision sees one whole set.
type Engine struct {
	paths []string
	set   atomic.Pointer[Set]
	stamp atomic.Pointer[string]
}

// NewEngine loads the rule files (see LoadFiles). With no paths, base (the
// rules built into egate) is the set.
func NewEngine(paths []string, base map[string][]byte) (*Engine, error) {
	e := &Engine{paths: slices.Clone(paths)}
	var set *Set
	var err error
	if len(paths) == 0 {
		set, err = Compile(base)
	} else {
		set, err = LoadFiles(paths)
	}
	if err != nil {
		return nil, err
	}
	e.set.Store(set)
	s := e.fingerprint()
	e.stamp.Store(&s)
	return e, nil
}

// Set is the rule set in force.
func (e *Engine) Set() *Set { return e.set.Load() }

// Decide evaluates the rules in force.
func (e *Engine) Decide(f *Features, base int) Decision { return e.set.Load().Decide(f, base) }

// fingerprint is the files' names, sizes and modification times.
func (e *Engine) fingerprint() string {
	var b strings.Builder
	for _, p := range e.paths {
		filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				fmt.Fprintf(&b, "%s!;", path)
				return nil
			}
			if d.IsDir() && path != p {
				return fs.SkipDir
			}
			if info, err := d.Info(); err == nil {
				fmt.Fprintf(&b, "%s:%d:%d;", path, info.Size(), info.ModTime().UnixNano())
			}
			return nil
		})
	}
	return b.String()
}

// Reload reads the files again. A set that does not compile is refused
// with its error and the set in force stays.
func (e *Engine) Reload() (changed bool, err error) {
	if len(e.paths) == 0 {
		return false, nil
	}
	fp := e.fingerprint()
	if old := e.stamp.Load(); old != nil && *old == fp {
		return false, nil
	}
	e.stamp.Store(&fp)
	set, err := LoadFiles(e.paths)
	if err != nil {
		return false, err
	}
	e.set.Store(set)
	return true, nil
}

// Watch reloads every period until ctx ends, reporting each reload or
// refused set to report (called from Watch's goroutine; nil to ignore).
func (e *Engine) Watch(ctx context.Context, every time.Duration, report func(changed bool, err error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			changed, err := e.Reload()
			if report != nil && (changed || err != nil) {
				report(changed, err)
			}
		}
	}
}
