package authsvc

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func TestPromptsAndPassportLogout(t *testing.T) {
	e, b := loggedIn(t)
	for _, tc := range []struct {
		name      string
		prompt    string
		wantLogin bool
	}{
		{"prompt none with a session", "none", false},
		{"prompt login", "login", true},
		{"no prompt", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newAuthz("mall", mallRedirect)
			if tc.prompt != "" {
				m.extra.Set("prompt", tc.prompt)
			}
			r := b.follow(b.get(m.url()))
			if tc.wantLogin {
				if !strings.Contains(r.body, `name="login_name"`) {
					t.Fatalf("want the login page: %d %q", r.status, r.loc)
				}
				return
			}
			if tk := e.exchange(m, m.codeFrom(t, r)); tk.status != 200 {
				t.Fatalf("exchange: %v", tk.body)
			}
		})
	}
	// Passport logout: GET asks, a POST without the form's value is refused,
	// with it the session ends for every platform.
	r := b.get("/logout")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no logout form: %s", r.body)
	}
	if r := b.post("/logout", url.Values{"csrf": {"forged"}}); r.status != 403 || errorCode(r.body) != "csrf" {
		t.Fatalf("forged logout: %d %s", r.status, r.body)
	}
	if r := b.post("/logout", url.Values{"csrf": {m[1]}}); r.status != 303 || r.loc != "/logged-out" {
		t.Fatalf("logout: %d %q", r.status, r.loc)
	}
	g := newAuthz("ebank", ebankRedirect)
	g.extra.Set("prompt", "none")
	r = b.follow(b.get(g.url()))
	if u, _ := url.Parse(r.loc); u == nil || u.Query().Get("error") != "login_required" || u.Query().Get("state") != g.state {
		t.Fatalf("after logout, prompt=none: %d %q", r.status, r.loc)
	}
}
