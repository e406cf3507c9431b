package web

import (
	"html"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/egate-bank/egate/internal/store/storetest"
)

var enrolLinkRE = regexp.MustCompile(`id="enrol-(\w+)" href="([^"]+)"`)

// TestEnrolPage: ebank's enrolment page sends the customer to the
// passport's enrolment of each tool, with the way back to this page (which
// then says what was enrolled), in both languages; without a passport
// configured it says enrolment is not available and links nowhere.
func TestEnrolPage(t *testing.T) {
	r := newRig(t, storetest.SQLite(t))
	r.pages.PassportURL = "https://passport.bank.example"
	for _, c := range []struct{ lang, title, done string }{
		{"en", "Enrol a security tool", "Your PIV card is enrolled and is on your tools list."},
		{"zh-CN", "绑定安全工具", "您的PIV 卡已绑定，已出现在您的工具列表中。"},
	} {
		t.Run(c.lang, func(t *testing.T) {
			alice := r.as(t, "p-alice", c.lang)
			status, page := alice.do("GET", "/enrol", nil)
			links := enrolLinkRE.FindAllStringSubmatch(page, -1)
			if status != 200 || !strings.Contains(page, c.title) || len(links) != 3 || strings.Contains(page, `id="notice"`) {
				t.Fatalf("enrol page: %d %s", status, page)
			}
			for _, l := range links {
				u, err := url.Parse(html.UnescapeString(l[2]))
				if err != nil || u.Host != "passport.bank.example" || u.Path != "/account/enrol" || u.Query().Get("tool") != l[1] ||
					u.Query().Get("client") != "ebank" || u.Query().Get("return") != "/enrol?done="+l[1] {
					t.Fatalf("link %q: %v", l[2], err)
				}
			}
			if _, page := alice.do("GET", "/enrol?done=piv", nil); !strings.Contains(page, c.done) || !strings.Contains(page, `id="to-tools" href="/settings#tools"`) {
				t.Fatalf("after the enrolment: %s", page)
			}
			if _, page := alice.do("GET", "/enrol?done=<script>", nil); strings.Contains(page, `id="notice"`) {
				t.Fatalf("an unknown tool was said enrolled: %s", page)
			}
		})
	}
	t.Run("no passport", func(t *testing.T) {
		r.pages.PassportURL = ""
		if _, page := r.as(t, "p-alice", "en").do("GET", "/enrol", nil); !strings.Contains(page, `id="enrol-unavailable"`) || enrolLinkRE.MatchString(page) {
			t.Fatalf("enrol page without a passport: %s", page)
		}
	})
}
