package factors

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/egate-bank/egate/internal/readmetest"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// readmeTools are the README's names of the tools, as its levels sentence
// writes them, and the factor each names.
var readmeTools = map[string]string{
	"SMS code":                  "sms",
	"grid card":                 "gridcard",
	"OATH token":                "otp",
	"the bank's phone app":      "phone",
	"U-shield (1st generation)": "ushield",
	"PIV token":                 "piv",
	"U-shield 2nd generation (display and confirm button)": "ushield2",
}

// TestREADMELevels holds the README's sentence "The tools and their levels:
// password 1; SMS code, grid card 2; …" to the levels of the factors Build
// makes: every factor is named there with its level, and every tool named
// is a factor at that level.
func TestREADMELevels(t *testing.T) {
	doc := readmetest.Load(t)
	text := strings.Join(strings.Fields(doc.Text), " ")
	_, sentence, ok := strings.Cut(text, "The tools and their levels: ")
	if !ok {
		t.Fatal(`README no longer says "The tools and their levels: …": update this test`)
	}
	sentence, _, _ = strings.Cut(sentence, " — ")
	named := map[string]int{}
	part := regexp.MustCompile(`^(.+) (\d)$`)
	for _, p := range strings.Split(sentence, ";") {
		m := part.FindStringSubmatch(strings.TrimSpace(p))
		if m == nil {
			t.Fatalf("README's levels sentence: %q is not \"tools N\"", p)
		}
		level, _ := strconv.Atoi(m[2])
		for _, name := range splitNames(m[1]) {
			named[name] = level
		}
	}
	if named["password"] != 1 {
		t.Errorf("README gives the password level %d, want 1", named["password"])
	}
	delete(named, "password")
	set := build(t, storetest.SQLite(t), autoCA(), Deps{})
	levels := map[string]int{}
	for _, f := range set.Factors {
		levels[f.Name()] = int(f.Level())
	}
	seen := map[string]bool{}
	for name, level := range named {
		f, ok := readmeTools[name]
		if !ok {
			t.Errorf("README names the tool %q (level %d), unknown to readmeTools", name, level)
			continue
		}
		seen[f] = true
		if levels[f] != level {
			t.Errorf("README: %s at level %d; the factor %s is at %d", name, level, f, levels[f])
		}
	}
	for f, l := range levels {
		if !seen[f] {
			t.Errorf("the factor %s (level %d) is not in README's levels sentence", f, l)
		}
	}
}

// splitNames splits "SMS code, grid card" and "OATH token and the bank's
// phone app" into names, but not at an "and" inside parentheses.
func splitNames(s string) []string {
	var names []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '(':
			depth++
		case s[i] == ')':
			depth--
		case depth == 0 && strings.HasPrefix(s[i:], ", "):
			names = append(names, s[start:i])
			start = i + 2
		case depth == 0 && strings.HasPrefix(s[i:], " and "):
			names = append(names, s[start:i])
			start = i + 5
		}
	}
	return append(names, s[start:])
}
