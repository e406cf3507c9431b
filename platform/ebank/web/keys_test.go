package web

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/egate-bank/egate/internal/i18n"
)

// Every message the pages name is in the catalogue (in both languages:
// i18n's TestCatalogueComplete), the literal ones and the made-up ones.
func TestMessageKeysExist(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("templates/*.html")
	gofiles, _ := filepath.Glob("*.go")
	literal := regexp.MustCompile(`\.T "([a-z_.-]+)"|T\("([a-z_.-]+)"|refuse\([^"]*"([a-z_.-]+)"|return [^"]*"((?:hist|xfer)\.[a-z_]+)"|"((?:self|logins|alert|dec|dev|place|toolstatus|err|inbox|home)\.[a-z_]+)"`)
	keys := map[string]bool{}
	for _, f := range append(files, gofiles...) {
		if filepath.Ext(f) == ".go" && len(f) > 8 && f[len(f)-8:] == "_test.go" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range literal.FindAllStringSubmatch(string(b), -1) {
			for _, k := range m[1:] {
				if k != "" && k[len(k)-1] != '.' && k[len(k)-1] != '_' { // a prefix: "kind." + a.Kind
					keys[k] = true
				}
			}
		}
	}
	for _, k := range []string{"tool.sms", "tool.gridcard", "tool.otp", "tool.ushield", "tool.ushield2", "tool.piv",
		"kind.current", "kind.savings", "status.open", "status.frozen", "status.closed", "code.transfer", "code.interbank", "code.opening",
		"tool.phone", "tool.password", "toolstatus.active", "toolstatus.lost", "toolstatus.revoked", "toolstatus.replaced",
		"alert.tool_lost", "alert.tool_bound", "alert.tx_denied", "alert.tx_step_up", "alert.tx_review", "alert.tx_approved", "alert.tx_refused",
		"alert.login_failed", "alert.login_locked", "dec.per-day", "dec.per-year",
		"platform.ebank", "platform.mall", "platform.messenger"} {
		keys[k] = true
	}
	if len(keys) < 40 {
		t.Fatalf("found only %d keys: the pattern no longer matches the code", len(keys))
	}
	for k := range keys {
		if !i18n.Has(k) {
			t.Errorf("message %q is not in the catalogue", k)
		}
	}
}
