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
	if n < 40 {
		t.Fatalf("found only %d texts: the patterns no longer match the code", n)
	}
}
