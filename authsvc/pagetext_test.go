package authsvc

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/egate-bank/egate/internal/i18n"
)

// Every message page the passport writes with fixed words (s.message's
// title and sentence, a page's Title and Message) is said in Chinese on
// the Chinese pages (i18n.Printer.Page): a page added in English only
// fails here.
func TestMessagePagesInChinese(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("*.go")
	calls := regexp.MustCompile(`s\.message\(w, [^,]+, "([^"]+)", "([^"]+)"\s*[,)]`)
	titles := regexp.MustCompile(`s\.message\(w, [^,]+, "([^"]+)",`)
	fields := regexp.MustCompile(`Title: "([^"]+)", Message: "([^"]+)"\s*[,}]`)
	zh := i18n.In(i18n.ZH, nil)
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var texts []string
		for _, m := range append(calls.FindAllStringSubmatch(string(b), -1), fields.FindAllStringSubmatch(string(b), -1)...) {
			texts = append(texts, m[1], m[2])
		}
		for _, m := range titles.FindAllStringSubmatch(string(b), -1) {
			texts = append(texts, m[1])
		}
		for _, s := range texts {
			n++
			if zh.Page(s) == s {
				t.Errorf("%s: %q has no Chinese (internal/i18n/pagetext.go)", f, s)
			}
		}
	}
	if n < 30 {
		t.Fatalf("found only %d texts: the patterns no longer match the code", n)
	}
}

// joinedButSaid are the joined sentences that i18n.Printer.Page knows
// (a pattern with the fact in it), each with an example.
var joinedButSaid = map[string]string{
	`Message: "Your " +`: "Your sms is locked after too many failed attempts.",
}

// A message page's sentence built by joining English words with facts
// ("The "+name+" could not start") cannot be said in Chinese: it goes
// through a catalogue key (pr.T) instead. Every key the passport's code
// and templates ask for is in the catalogue, in both languages.
func TestPassportSentencesFromCatalogue(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("*.go")
	files = append(files, "templates/pages.html")
	joined := regexp.MustCompile(`(s\.message\(w, [^\n]*"[A-Z][a-z]+ [^"]*"\s*\+|(Title|Message|Prompt): "[A-Z][a-z]+ [^"]*"\s*\+)`)
	keys := regexp.MustCompile(`(?:pr|\.P|p\.P)\.T\(?\s*"([a-z_.]+)"`)
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range joined.FindAllString(string(b), -1) {
			if sample, ok := joinedButSaid[m]; ok {
				if zh := i18n.In(i18n.ZH, nil); zh.Page(sample) == sample {
					t.Errorf("%s: %q has no Chinese (internal/i18n/pagetext.go)", f, sample)
				}
				continue
			}
			t.Errorf("%s: %s… joins English words into a sentence: use a catalogue key (internal/i18n)", f, m)
		}
		for _, m := range keys.FindAllStringSubmatch(string(b), -1) {
			n++
			if !i18n.Has(m[1]) {
				t.Errorf("%s: the catalogue lacks %q", f, m[1])
			}
		}
	}
	if n < 40 {
		t.Fatalf("found only %d catalogue keys: the pattern no longer matches the code", n)
	}
}
