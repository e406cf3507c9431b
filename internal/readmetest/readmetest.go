// Package readmetest reads the parts of the top README.md that tests hold
// to the code: its sections, tables, inline code spans and the egate
// command lines it shows. The README is parsed at test time, so a line
// added to it is checked by the next test run (cmd/egate TestREADMECommands,
// internal/demo TestREADMEURLs) and cannot drift from what egate does.
package readmetest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Doc is a Markdown document with line numbers for messages.
type Doc struct {
	Path string
	Text string
}

// Load reads README.md from the repository root, found upwards from the
// test's working directory.
func Load(t testing.TB) Doc {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			b, err := os.ReadFile(filepath.Join(dir, "README.md"))
			if err != nil {
				t.Fatal(err)
			}
			return Doc{Path: filepath.Join(dir, "README.md"), Text: string(b)}
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = up
	}
}

// Part is a piece of the document and the line it starts on.
type Part struct {
	Line int
	Text string
}

// Section is the text under the heading "## title" (any level), up to the
// next heading of the same or a higher level, with its first line number.
func (d Doc) Section(title string) (Part, bool) {
	lines := strings.Split(d.Text, "\n")
	start, level := -1, 0
	inFence := false
	for i, l := range lines {
		if strings.HasPrefix(l, "```") {
			inFence = !inFence
		}
		if inFence || !strings.HasPrefix(l, "#") {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, "#"))
		if start < 0 {
			if strings.TrimSpace(l[n:]) == title {
				start, level = i+1, n
			}
			continue
		}
		if n <= level {
			return Part{start + 1, strings.Join(lines[start:i], "\n")}, true
		}
	}
	if start < 0 {
		return Part{}, false
	}
	return Part{start + 1, strings.Join(lines[start:], "\n")}, true
}

// Row is a table row's cells, with `\|` turned into `|`.
type Row struct {
	Line  int
	Cells []string
}

// Tables returns the rows of every table in p (header and separator rows
// left out), one slice per table.
func Tables(p Part) [][]Row {
	var tables [][]Row
	var cur []Row
	header := 0
	for i, l := range strings.Split(p.Text, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "|") {
			if cur != nil {
				tables = append(tables, cur)
			}
			cur, header = nil, 0
			continue
		}
		if header < 2 { // the header row, then |---|---|
			header++
			if cur == nil {
				cur = []Row{}
			}
			continue
		}
		cells := splitRow(l)
		cur = append(cur, Row{p.Line + i, cells})
	}
	if cur != nil {
		tables = append(tables, cur)
	}
	return tables
}

func splitRow(l string) []string {
	l = strings.TrimSuffix(strings.TrimPrefix(l, "|"), "|")
	var cells []string
	var b strings.Builder
	for i := 0; i < len(l); i++ {
		switch {
		case l[i] == '\\' && i+1 < len(l) && l[i+1] == '|':
			b.WriteByte('|')
			i++
		case l[i] == '|':
			cells = append(cells, strings.TrimSpace(b.String()))
			b.Reset()
		default:
			b.WriteByte(l[i])
		}
	}
	return append(cells, strings.TrimSpace(b.String()))
}

var codeSpan = regexp.MustCompile("(?s)`([^`]+)`")

// CodeSpans returns the inline code spans of s outside its code blocks, a
// span broken over lines joined with a space.
func CodeSpans(s string) []string {
	var spans []string
	for _, m := range codeSpan.FindAllStringSubmatch(blankBlocks(s), -1) {
		spans = append(spans, strings.Join(strings.Fields(m[1]), " "))
	}
	return spans
}

// Command is one egate command line the document shows: from a code block
// (continuation lines joined, the shell comment cut off) or an inline code
// span that starts with "egate ".
type Command struct {
	Line int
	Text string
	// Block: a line of a code block, to be run as written; else an inline
	// span, which may only name the command (`egate admin gridcard issue`).
	Block bool
}

// Commands returns every egate command line in p.
func Commands(p Part) []Command {
	var cmds []Command
	lines := strings.Split(p.Text, "\n")
	var prose []string // p's text with code blocks blanked, for the spans
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(strings.TrimSpace(lines[i]), "```") {
			prose = append(prose, lines[i])
			continue
		}
		prose = append(prose, "")
		for i++; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), "```"); i++ {
			prose = append(prose, "")
			l := strings.TrimPrefix(strings.TrimSpace(cutComment(lines[i])), "$ ")
			if !strings.HasPrefix(l, "egate ") {
				continue
			}
			first := i
			for i+1 < len(lines) && continues(l, lines[i+1]) {
				i++
				prose = append(prose, "")
				l = strings.TrimSuffix(l, "\\") + " " + strings.TrimSpace(cutComment(lines[i]))
			}
			cmds = append(cmds, Command{p.Line + first, strings.Join(strings.Fields(l), " "), true})
		}
		prose = append(prose, "")
	}
	text := strings.Join(prose, "\n")
	for _, m := range codeSpan.FindAllStringSubmatchIndex(text, -1) {
		s := strings.Join(strings.Fields(text[m[2]:m[3]]), " ")
		s = strings.ReplaceAll(s, `\|`, "|") // a table's escaped pipe
		if strings.HasPrefix(s, "egate ") {
			cmds = append(cmds, Command{p.Line + strings.Count(text[:m[0]], "\n"), s, false})
		}
	}
	return cmds
}

// continues says whether next goes on the command line l: l ends in a
// backslash or an open [, or next is indented and, its comment cut off,
// neither empty nor a new egate command.
func continues(l, next string) bool {
	if strings.HasSuffix(l, "\\") || strings.Count(l, "[") > strings.Count(l, "]") {
		return true
	}
	rest := strings.TrimSpace(cutComment(next))
	return (strings.HasPrefix(next, " ") || strings.HasPrefix(next, "\t")) && rest != "" &&
		!strings.HasPrefix(rest, "egate ") && !strings.HasPrefix(rest, "```")
}

// blankBlocks replaces the lines of fenced code blocks with empty lines.
func blankBlocks(s string) string {
	lines := strings.Split(s, "\n")
	in := false
	for i, l := range lines {
		fence := strings.HasPrefix(strings.TrimSpace(l), "```")
		if in || fence {
			lines[i] = ""
		}
		if fence {
			in = !in
		}
	}
	return strings.Join(lines, "\n")
}

// cutComment drops a shell comment: a # at the start or after a space,
// outside quotes.
func cutComment(l string) string {
	var q byte
	for i := 0; i < len(l); i++ {
		switch c := l[i]; {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '\'' || c == '"':
			q = c
		case c == '#' && (i == 0 || l[i-1] == ' ' || l[i-1] == '\t'):
			return l[:i]
		}
	}
	return l
}

// Whole is the whole document as one part.
func (d Doc) Whole() Part { return Part{1, d.Text} }
