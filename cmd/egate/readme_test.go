package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/internal/readmetest"
)

// TestREADMECommands holds README.md's egate command lines to the CLI: every
// command line of a code block, every inline `egate …` span and the
// Processes table (with the subcommands and flags its rows name) must name
// commands that exist, flags those commands have, and positional arguments
// they accept; `egate <command> --help` must succeed for each. The README is
// read at run time, so a line added to it is checked too.
func TestREADMECommands(t *testing.T) {
	t.Parallel()
	doc := readmetest.Load(t)
	type cmdLine struct {
		line int
		text string
		base []string // flags named for the command (Processes rows)
		// mention: an inline span or a Processes row naming a command
		// (`egate admin gridcard issue`, `risk review approve`), not a
		// line to run as written: its arguments may be left out.
		mention bool
	}
	var lines []cmdLine
	for _, c := range readmetest.Commands(doc.Whole()) {
		lines = append(lines, cmdLine{c.Line, c.Text, nil, !c.Block})
	}
	if len(lines) < 40 {
		t.Fatalf("found only %d egate command lines in %s: the parser lost them", len(lines), doc.Path)
	}
	// The Processes table: a row's "what" column names subcommands and flags
	// of the row's command (`bind`, `scan IMAGE`, `--module`, …); a flag
	// belongs to the command span before it in the cell, or to the row's.
	proc, ok := doc.Section("Processes")
	if !ok {
		t.Fatal("README has no Processes section")
	}
	var flagChecks []cmdLine // text: the command; base: the flags
	rows := 0
	for _, table := range readmetest.Tables(proc) {
		for _, r := range table {
			spans := readmetest.CodeSpans(r.Cells[0])
			if len(spans) == 0 || !strings.HasPrefix(spans[0], "egate ") {
				continue
			}
			rows++
			base := groupPrefix(spans[0])
			owner := spans[0]
			for _, s := range readmetest.CodeSpans(strings.Join(r.Cells[1:], " ")) {
				switch {
				case strings.HasPrefix(s, "egate "):
					owner = s
				case strings.HasPrefix(s, "-"):
					flagChecks = append(flagChecks, cmdLine{r.Line, owner, flagNames(s), false})
				case isChild(base, strings.Fields(s)[0]):
					owner = strings.Join(base, " ") + " " + s
					lines = append(lines, cmdLine{r.Line, owner, nil, true})
				}
			}
		}
	}
	if rows < 8 {
		t.Fatalf("the Processes table has %d egate rows; the parser lost them", rows)
	}
	helped := map[string]bool{}
	for _, l := range lines {
		paths, err := checkCommandLine(l.text, l.mention)
		if err != nil {
			t.Errorf("README.md:%d: `%s`: %v", l.line, l.text, err)
			continue
		}
		for _, p := range paths {
			if helped[p] {
				continue
			}
			helped[p] = true
			if err := runHelp(p); err != nil {
				t.Errorf("README.md:%d: `%s`: `%s --help`: %v", l.line, l.text, p, err)
			}
		}
	}
	for _, f := range flagChecks {
		paths, err := checkCommandLine(f.text, true)
		if err != nil {
			continue // reported above
		}
		for _, name := range f.base {
			found := false
			for _, p := range paths {
				c, _, err := newRootCmd().Find(strings.Fields(p)[1:])
				if err == nil {
					ok, _ := lookupFlag(c, name, false)
					found = found || ok
				}
			}
			if !found {
				t.Errorf("README.md:%d: flag --%s is named for `%s`, which has no such flag", f.line, name, f.text)
			}
		}
	}
	// A flag the prose names (`--wrap-key`, `--operator NAME`) must be a
	// flag of some egate command; proseFlags binds the ones whose command
	// the sentence names.
	root := newRootCmd()
	spans := 0
	for _, s := range readmetest.CodeSpans(doc.Text) {
		if !strings.HasPrefix(s, "--") {
			continue
		}
		for _, name := range flagNames(s) {
			spans++
			if !anyHasFlag(root, name) {
				t.Errorf("README names the flag --%s (in `%s`), which no egate command has", name, s)
			}
		}
	}
	for _, pf := range proseFlags {
		if !strings.Contains(doc.Text, pf.says) {
			t.Errorf("README no longer says %q: update proseFlags", pf.says)
			continue
		}
		for _, cmd := range pf.cmds {
			c, rest, err := newRootCmd().Find(strings.Fields(cmd)[1:])
			if err != nil || len(rest) > 0 {
				t.Errorf("README %q: no command `%s`", pf.says, cmd)
				continue
			}
			for _, name := range pf.flags {
				if ok, _ := lookupFlag(c, name, false); !ok {
					t.Errorf("README %q: `%s` has no flag --%s", pf.says, cmd, name)
				}
			}
		}
	}
	t.Logf("%d command lines, %d command paths, %d flags named in the Processes table, %d flag spans checked", len(lines), len(helped), len(flagChecks), spans)
}

// proseFlags: sentences of the README that give flags to commands they
// name in words rather than in a command line.
var proseFlags = []struct {
	says  string
	cmds  []string
	flags []string
}{
	{"`--module`, `--token`, `--pin-source` override it", []string{"egate admin hsm init", "egate admin hsm keys", "egate admin hsm rewrap-seeds"}, []string{"module", "token", "pin-source"}},
	// the commands that need the database (user) or both (gridcard, ca, atm pin-key)
	{"(`--db`, `--hsm-module`, … override)", []string{"egate admin user show", "egate admin user unlock"}, []string{"db"}},
	{"(`--db`, `--hsm-module`, … override)", []string{"egate admin gridcard issue", "egate admin ca revoke", "egate admin atm pin-key"}, []string{"db", "hsm-module"}},
	{"`--operator NAME` (a flag of `egate admin`)", []string{"egate admin user lock", "egate admin token assign"}, []string{"operator"}},
	{"a token by serial (`--key-id`", []string{"egate admin token show", "egate admin token unlock"}, []string{"key-id"}},
	{"`--public-key` or from the HSM", []string{"egate admin audit verify"}, []string{"public-key"}},
	{"(`--target`, default", []string{"egate load"}, []string{"target"}},
	{"`--key-file` (the pre-shared AES key", []string{"egate admin token import-pskc"}, []string{"key-file", "password-source", "transport-key", "wrap-key", "signer-cert", "force-expired", "db"}},
}

// anyHasFlag says whether c or a command below it has the flag --name.
func anyHasFlag(c *cobra.Command, name string) bool {
	if ok, _ := lookupFlag(c, name, false); ok {
		return true
	}
	return slices.ContainsFunc(c.Commands(), func(s *cobra.Command) bool { return anyHasFlag(s, name) })
}

// groupPrefix is a row command's words up to the first that is not a plain
// word (an alternative, an argument, an ellipsis).
func groupPrefix(cmd string) []string {
	var w []string
	for _, f := range strings.Fields(cmd) {
		if strings.ContainsAny(f, "|[…<.:/") || strings.ToLower(f) != f {
			break
		}
		w = append(w, f)
	}
	return w
}

func isChild(base []string, word string) bool {
	c, rest, err := newRootCmd().Find(base[1:])
	return err == nil && len(rest) == 0 && child(c, word) != nil
}

func child(c *cobra.Command, name string) *cobra.Command {
	for _, s := range c.Commands() {
		if s.Name() == name || slices.Contains(s.Aliases, name) {
			return s
		}
	}
	return nil
}

// flagNames are the --names in a span such as `--session S --capture
// YUAN|--release`.
func flagNames(s string) []string {
	var names []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '|' || r == '[' || r == ']' }) {
		if name, ok := strings.CutPrefix(f, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			names = append(names, name)
		}
	}
	return names
}

// runHelp runs `path --help` in a fresh command tree.
func runHelp(path string) error {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append(strings.Fields(path)[1:], "--help"))
	if err := root.Execute(); err != nil {
		return err
	}
	if !strings.Contains(out.String(), "Usage:") {
		return fmt.Errorf("no usage in the help:\n%s", out.String())
	}
	return nil
}

// checkCommandLine resolves a README command line against the CLI and
// returns the command paths it names ("egate admin user lock", …): each
// alternative (a|b) and each optional group ([…], with or without it) is
// tried. A mention may leave the positional arguments out.
func checkCommandLine(line string, mention bool) ([]string, error) {
	toks := shellWords(line)
	if len(toks) == 0 || toks[0] != "egate" {
		return nil, fmt.Errorf("not an egate command")
	}
	var paths []string
	for _, v := range variants(toks[1:]) {
		root := newRootCmd()
		root.InitDefaultHelpCmd()
		ps, err := resolve(root, v, mention)
		if err != nil {
			return nil, fmt.Errorf("as `egate %s`: %w", strings.Join(v, " "), err)
		}
		for _, p := range ps {
			if !slices.Contains(paths, p) {
				paths = append(paths, p)
			}
		}
	}
	return paths, nil
}

// resolve walks the words down the command tree, then checks flags and
// positional arguments on the command reached.
func resolve(c *cobra.Command, toks []string, mention bool) ([]string, error) {
	i := 0
	for ; i < len(toks); i++ {
		w := toks[i]
		if strings.HasPrefix(w, "-") {
			break
		}
		if alts := strings.Split(w, "|"); len(alts) > 1 && !slices.ContainsFunc(alts, func(a string) bool { return child(c, a) == nil }) {
			var paths []string
			for _, a := range alts {
				ps, err := resolve(child(c, a), toks[i+1:], mention)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", a, err)
				}
				paths = append(paths, ps...)
			}
			return paths, nil
		}
		s := child(c, w)
		if s == nil {
			break
		}
		c = s
	}
	var args []string
	for ; i < len(toks); i++ {
		w := toks[i]
		switch {
		case w == "…" || w == "...":
		case strings.HasPrefix(w, "-") && len(w) > 1:
			name, _, hasValue := strings.Cut(strings.TrimLeft(w, "-"), "=")
			found, takesValue := lookupFlag(c, name, !strings.HasPrefix(w, "--"))
			if !found {
				return nil, fmt.Errorf("`%s` has no flag %s", c.CommandPath(), w)
			}
			if !hasValue && takesValue {
				i++
			}
		default:
			args = append(args, w)
		}
	}
	switch {
	case c.HasSubCommands() && len(args) > 0: // a group (strictGroups: runnable, any arguments)
		return nil, fmt.Errorf("`%s` has no subcommand %q", c.CommandPath(), args[0])
	case c.HasSubCommands() && !c.Runnable():
	case mention && len(args) == 0: // naming the command only
	default:
		if err := argsAlternatives(c, args); err != nil {
			return nil, fmt.Errorf("`%s` refuses the arguments %q: %w", c.CommandPath(), args, err)
		}
	}
	return []string{c.CommandPath()}, nil
}

// argsAlternatives validates positional arguments, trying each
// alternative of an argument written a|b.
func argsAlternatives(c *cobra.Command, args []string) error {
	for i, a := range args {
		if alts := strings.Split(a, "|"); len(alts) > 1 && !strings.Contains(a, "://") {
			for _, alt := range alts {
				if err := argsAlternatives(c, append(append(slices.Clone(args[:i]), alt), args[i+1:]...)); err != nil {
					return err
				}
			}
			return nil
		}
	}
	return c.ValidateArgs(args)
}

// lookupFlag finds --name (or -n with short) on c or its parents and
// says whether it takes a value as the next word.
func lookupFlag(c *cobra.Command, name string, short bool) (found, takesValue bool) {
	if name == "help" || short && name == "h" {
		return true, false
	}
	f := c.Flag(name)
	if short {
		if f = c.Flags().ShorthandLookup(name); f == nil {
			f = c.InheritedFlags().ShorthandLookup(name)
		}
	}
	if f == nil {
		return false, false
	}
	return true, f.Value.Type() != "bool" && f.NoOptDefVal == ""
}

// shellWords splits a command line as a shell would, well enough for the
// README: quotes kept together and dropped, $(…) and <a placeholder> one
// word each, and the line cut at a redirection, a pipe or a second command.
func shellWords(line string) []string {
	var words []string
	var b strings.Builder
	in := false
	var q rune
	depth := 0
	flush := func() {
		if in {
			words = append(words, b.String())
		}
		b.Reset()
		in = false
	}
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case q == 0 && depth == 0 && r == '<' && slices.Contains(rs[i:], '>'):
			end := i + slices.Index(rs[i:], '>')
			b.WriteString(string(rs[i : end+1]))
			in = true
			i = end
		case q != 0:
			if r == q {
				q = 0
			} else {
				b.WriteRune(r)
			}
		case r == '\'' || r == '"':
			q, in = r, true
		case r == '$' && i+1 < len(rs) && rs[i+1] == '(':
			depth++
			b.WriteString("$(")
			in = true
			i++
		case r == ')' && depth > 0:
			depth--
			b.WriteRune(r)
		case depth == 0 && (r == ' ' || r == '\t'):
			flush()
		case depth == 0 && !in && (r == '>' || r == ';' || r == '&' || r == '|' && i+1 < len(rs) && rs[i+1] == ' '):
			flush()
			return words
		default:
			b.WriteRune(r)
			in = true
		}
	}
	flush()
	return words
}

// variants expands the optional groups of a README command line: each
// [group] is left out or put in, once for each of its alternatives
// (separated by a lone |).
func variants(toks []string) [][]string {
	out := [][]string{{}}
	for i := 0; i < len(toks); i++ {
		if !strings.HasPrefix(toks[i], "[") {
			for j := range out {
				out[j] = append(out[j], toks[i])
			}
			continue
		}
		var group []string
		for depth := 0; i < len(toks); i++ {
			depth += strings.Count(toks[i], "[") - strings.Count(toks[i], "]")
			group = append(group, toks[i])
			if depth <= 0 {
				break
			}
		}
		inner := strings.TrimSuffix(strings.TrimPrefix(strings.Join(group, " "), "["), "]")
		var next [][]string
		for _, o := range out {
			next = append(next, slices.Clone(o))
			for _, a := range strings.Split(inner, " | ") {
				next = append(next, append(slices.Clone(o), strings.Fields(a)...))
			}
		}
		out = next
	}
	return out
}

// The checker refuses what the CLI refuses; without this a README line
// for a command that does not exist could pass unseen.
func TestREADMECommandChecker(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, line string
		mention    bool
		want       string // "" passes; else a part of the error
		paths      []string
	}{
		{"a command", "egate admin user show alice", false, "", []string{"egate admin user show"}},
		{"alternatives", "egate admin user lock|reset-password alice", false, "", []string{"egate admin user lock", "egate admin user reset-password"}},
		{"optional subcommand", "egate load [seed]", true, "", []string{"egate load", "egate load seed"}},
		{"flag alternatives", "egate admin token import-pskc FILE [--key-file PATH | --transport-key pkcs11:URI] [--db …]", false, "", []string{"egate admin token import-pskc"}},
		{"a placeholder with a quote", "egate sim phone scan q.png --account <alice's account> --amount 300 --yes", false, "", []string{"egate sim phone scan"}},
		{"redirection", "egate admin audit public-key > audit.pem", false, "", []string{"egate admin audit public-key"}},
		{"unknown subcommand", "egate admin user frobnicate alice", false, `no subcommand "frobnicate"`, nil},
		{"unknown group", "egate admin frobnicate", false, `no subcommand "frobnicate"`, nil},
		{"unknown flag", "egate admin user show alice --colour", false, "no flag --colour", nil},
		{"unknown flag after a placeholder", "egate sim phone scan q.png --account <alice's account> --amout 300", false, "no flag --amout", nil},
		{"unknown flag in an optional group", "egate admin audit tail [--sideways]", false, "no flag --sideways", nil},
		{"a positional the command refuses", "egate admin atm dispense 300", false, "refuses the arguments", nil},
		{"an argument left out of a line", "egate admin user show", false, "refuses the arguments", nil},
		{"an argument left out of a mention", "egate admin user show", true, "", []string{"egate admin user show"}},
		{"one alternative missing", "egate sim atm|printer", false, "no subcommand", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			paths, err := checkCommandLine(tc.line, tc.mention)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one with %q", err, tc.want)
			case tc.want == "" && !slices.Equal(paths, tc.paths):
				t.Fatalf("paths %q, want %q", paths, tc.paths)
			}
		})
	}
}

// TestREADMEMakeTargets: every `make X` the README names (in code blocks
// too) is a target of the Makefile beside it.
func TestREADMEMakeTargets(t *testing.T) {
	t.Parallel()
	doc := readmetest.Load(t)
	mk, err := os.ReadFile(filepath.Join(filepath.Dir(doc.Path), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	named := regexp.MustCompile("(?m)(?:`|^)make ([a-z][a-z-]*)").FindAllStringSubmatch(doc.Text, -1)
	if len(named) < 5 {
		t.Fatalf("the README names %d make targets; the parser lost them", len(named))
	}
	for _, m := range named {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(m[1]) + `:`).Match(mk) {
			t.Errorf("README names `make %s`, which the Makefile has no target for", m[1])
		}
	}
}
