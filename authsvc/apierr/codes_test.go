package apierr_test

import (
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/egate-bank/egate/authsvc/apierr"
)

// docRow is one row of the "Error codes" table of authsvc/README.md.
type docRow struct {
	status int // 0: a page's only (—)
	api    bool
	page   bool
}

// docCodes parses the table of the README's "### Error codes" section.
func docCodes(t *testing.T) map[string]docRow {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	sec := string(b)
	i := strings.Index(sec, "\n### Error codes\n")
	if i < 0 {
		t.Fatal(`authsvc/README.md has no "### Error codes" section`)
	}
	sec = sec[i+1:]
	if j := strings.Index(sec, "\n#"); j > 0 {
		sec = sec[:j]
	}
	rows := map[string]docRow{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| (\\d{3}|—) \\| ([a-z, ]+) \\| .+ \\|$").FindAllStringSubmatch(sec, -1) {
		if _, dup := rows[m[1]]; dup {
			t.Errorf("README lists %s twice", m[1])
		}
		st, _ := strconv.Atoi(m[2])
		rows[m[1]] = docRow{status: st, api: strings.Contains(m[3], "api"), page: strings.Contains(m[3], "page")}
	}
	if len(rows) == 0 {
		t.Fatal("the README's Error codes table has no rows")
	}
	return rows
}

// httpStatus names the net/http constants the handlers write codes with.
var httpStatus = map[string]int{
	"StatusBadRequest": 400, "StatusUnauthorized": 401, "StatusForbidden": 403, "StatusNotFound": 404,
	"StatusConflict": 409, "StatusGone": 410, "StatusUnprocessableEntity": 422, "StatusLocked": 423,
	"StatusUnsupportedMediaType": 415, "StatusTooManyRequests": 429, "StatusInternalServerError": 500, "StatusServiceUnavailable": 503,
}

// writtenCodes finds the codes the handlers and pages of authsvc (and the
// shared httpx) write as literals: httpx.WriteError's code argument, the
// pages' codes (s.message, deadEnd, showPassword, ErrorCode, the captcha's
// code variable). The table's rows are found through Codes.
//
// It also returns the status each of the transaction API's own codes is
// written with (txauth's apiErr and Error literals; an intent's refusal,
// authsvc/intent's bad(…), is 400).
func writtenCodes(t *testing.T) (map[string]string, map[string]int) {
	t.Helper()
	withStatus := []*regexp.Regexp{
		regexp.MustCompile(`apiErr\(http\.(\w+), "([a-z_]+)"`),
		regexp.MustCompile(`&Error\{Status: http\.(\w+), Code: "([a-z_]+)"`),
		regexp.MustCompile(`\bbad\([^,()]+, "()([a-z_]+)"`),
	}
	statuses := map[string]int{}
	pats := []*regexp.Regexp{
		regexp.MustCompile(`WriteError\(\w+, \w+, [\w.]+, "([a-z_]+)"`),
		regexp.MustCompile(`\.(?:message|deadEnd|showPassword|renderFactor|beginFactorMsg|renderOrder)\(.*, "([a-z_]+)"\)\s*$`),
		regexp.MustCompile(`^\s*".*", "([a-z_]+)"\)\s*$`), // a page call's last line
		regexp.MustCompile(`ErrorCode(?::|\s*=)[^"\n]*"([a-z_]+)"`),
		regexp.MustCompile(`\{[\w.]*Err\w*, "([a-z_]+)"\}`), // a package's own error → code list (authsvc/orders)
	}
	// The captcha's code variable of the login pages; elsewhere (txauth's
	// decision reasons) a variable named code is no error code.
	pageVar := regexp.MustCompile(`\bcode\s*:?=\s*"([a-z_]+)"`)
	found := map[string]string{}
	for _, root := range []string{"..", "../../internal/httpx"} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			res := pats
			if filepath.Dir(p) == ".." {
				res = append(res[:len(res):len(res)], pageVar)
			}
			for n, line := range strings.Split(string(b), "\n") {
				for _, re := range res {
					for _, m := range re.FindAllStringSubmatch(line, -1) {
						found[m[1]] = p + ":" + strconv.Itoa(n+1)
					}
				}
				for _, re := range withStatus {
					for _, m := range re.FindAllStringSubmatch(line, -1) {
						st, ok := httpStatus[m[1]]
						if m[1] == "" { // an intent's refusal
							st, ok = http.StatusBadRequest, true
						}
						if !ok {
							t.Errorf("%s:%d: status %s: add it to httpStatus", p, n+1, m[1])
						}
						found[m[2]] = p + ":" + strconv.Itoa(n+1)
						statuses[m[2]] = st
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return found, statuses
}

// TestCodesAreDocumented walks the table: every row of apierr is in the
// README with its status, every code a handler or page writes is there,
// and the README lists no code nothing writes.
func TestCodesAreDocumented(t *testing.T) {
	t.Parallel()
	doc := docCodes(t)
	known := map[string]bool{}
	for _, c := range apierr.Codes() {
		known[c.Name] = true
		d, ok := doc[c.Name]
		switch {
		case !ok:
			t.Errorf("apierr.%s (%d) is not in authsvc/README.md's Error codes", c.Name, c.Status)
		case d.status != c.Status || !d.api:
			t.Errorf("%s: README says %d (api %v), the table %d", c.Name, d.status, d.api, c.Status)
		}
	}
	written, statuses := writtenCodes(t)
	for code, where := range written {
		known[code] = true
		d, ok := doc[code]
		switch {
		case !ok:
			t.Errorf("%s writes the code %q, which authsvc/README.md's Error codes does not list", where, code)
		case statuses[code] != 0 && statuses[code] != d.status:
			t.Errorf("%s writes %q with %d; README says %d", where, code, statuses[code], d.status)
		}
	}
	for code, d := range doc {
		if !known[code] {
			t.Errorf("README lists %q, which no handler writes", code)
		}
		if d.status == 0 && (d.api || !d.page) {
			t.Errorf("README: %q has no status, so it must be a page's only", code)
		}
	}
}
