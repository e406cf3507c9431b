package authsvc

import (
	"net/url"
	"strings"
	"testing"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// The attack of the issue: an attacker starts a login at a platform, has
// the customer open the passport's /login?id=X (single sign-on finishes it
// without a word typed), and fetches the code with their own cookies. Only
// the customer's browser may get the code; the attacker's requests are
// refused and change nothing (the customer's browser still gets its code).
func TestCodeGoesOnlyToTheBrowserThatLoggedIn(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		victim := e.browser()
		// The customer is signed in to the passport (single sign-on).
		v := newAuthz("ebank", ebankRedirect)
		v.codeFrom(t, victim.passwordLogin(v, "alice", testPassword))

		attacker := e.browser()
		a := newAuthz("mall", mallRedirect)
		r := attacker.get(a.url())
		lu, _ := url.Parse(r.loc)
		id := lu.Query().Get("id")
		if r.status != 302 || id == "" {
			t.Fatalf("no login redirect: %d %q", r.status, r.loc)
		}
		// The attacker opens the login page too (binding their browser).
		attacker.get(r.loc)
		// The customer opens the link: SSO finishes the request in their browser.
		vr := victim.get("/login?id=" + url.QueryEscape(id))
		if vr.status != 303 || !strings.Contains(vr.loc, "/authorize/callback?id=") {
			t.Fatalf("SSO: %d %q %s", vr.status, vr.loc, vr.body)
		}

		for _, tc := range []struct{ name, path string }{
			{"callback", "/authorize/callback?id=" + url.QueryEscape(id)},
			{"login on a finished request", "/login?id=" + url.QueryEscape(id)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := attacker.follow(attacker.get(tc.path))
				if r.status != 403 || errorCode(r.body) != "login_foreign" || strings.Contains(r.loc, "code=") {
					t.Fatalf("attacker got: %d %q %s", r.status, r.loc, r.body)
				}
			})
		}
		// A fresh browser with no cookies at all: nothing either.
		if r := e.browser().get("/authorize/callback?id=" + url.QueryEscape(id)); r.status != 403 || strings.Contains(r.loc, "code=") {
			t.Fatalf("cookieless callback: %d %q", r.status, r.loc)
		}
		// The customer's browser still gets the code (nothing changed), once.
		code := a.codeFrom(t, victim.follow(vr))
		if tk := e.exchange(a, code); tk.status != 200 {
			t.Fatalf("exchange: %v", tk.body)
		}
		if r := victim.get("/authorize/callback?id=" + url.QueryEscape(id)); r.status != 400 || errorCode(r.body) != "login_expired" {
			t.Fatalf("second callback: %d %q", r.status, r.loc)
		}
	})
}

// Bad callbacks: each is refused with a clear error and changes nothing.
func TestCallbackRefusals(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	b := e.browser()
	// A request in progress in b (name page shown, not finished).
	a := newAuthz("ebank", ebankRedirect)
	r := b.follow(b.get(a.url()))
	open := formID(t, r.body)
	// A finished one in another browser (other), whose code was taken.
	other := e.browser()
	f := newAuthz("mall", mallRedirect)
	fr := other.passwordLogin(f, "alice", testPassword)
	fu, _ := url.Parse(fr.loc)
	if fu.Query().Get("iss") != e.ts.URL {
		t.Fatalf("authorization response without iss (RFC 9207): %q", fr.loc)
	}
	e.exchange(f, f.codeFrom(t, fr))
	// A finished one in other whose code was not fetched yet.
	g := newAuthz("ebank", ebankRedirect)
	gr := other.get(g.url())
	gr = other.get(gr.loc) // SSO: to the callback, not followed
	gu, _ := url.Parse(gr.loc)
	pending := gu.Query().Get("id")
	if pending == "" {
		t.Fatalf("no callback: %d %q", gr.status, gr.loc)
	}
	for _, tc := range []struct {
		name, id string
		status   int
		code     string
	}{
		{"never existed", "nope-" + strings.Repeat("x", 20), 400, "login_expired"},
		{"empty id", "", 400, "login_expired"},
		{"finished and answered", idOf(t, e, f), 400, "login_expired"},
		{"not finished", open, 400, "login_unfinished"},
		{"finished in another browser (cookie of another request)", pending, 403, "login_foreign"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.get("/authorize/callback?id=" + url.QueryEscape(tc.id))
			if r.status != tc.status || errorCode(r.body) != tc.code || r.loc != "" {
				t.Fatalf("got %d %q %q, want %d %s", r.status, errorCode(r.body), r.loc, tc.status, tc.code)
			}
		})
	}
	// Nothing changed: the pending request still answers its own browser,
	// and b's login goes on.
	g.codeFrom(t, other.follow(gr))
	if r := b.post("/login/name", url.Values{"id": {open}, "login_name": {"alice"}}); r.status != 200 {
		t.Fatalf("b's login broken: %d %s", r.status, r.body)
	}
}

// idOf finds the auth request id of a finished request by its state.
func idOf(t *testing.T, e *env, a *authz) string {
	t.Helper()
	var id string
	err := e.srv.db.QueryRow(t.Context(), `SELECT id FROM oidc_auth_requests WHERE request LIKE ?`, "%"+a.state+"%").Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Two logins started in two tabs of one browser (ebank and the mall at
// once) do not unbind each other: each request has its own flow cookie.
func TestTwoTabsOneBrowser(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	b := e.browser()
	eb, mall := newAuthz("ebank", ebankRedirect), newAuthz("mall", mallRedirect)
	start := func(a *authz) string {
		t.Helper()
		r := b.follow(b.get(a.url()))
		if r.status != 200 || !strings.Contains(r.body, `name="login_name"`) {
			t.Fatalf("no login page: %d %s", r.status, r.body)
		}
		return formID(t, r.body)
	}
	ebID := start(eb)
	mallID := start(mall) // the second tab, before the first finishes
	r := b.post("/login/name", url.Values{"id": {ebID}, "login_name": {"alice"}})
	if r.status != 200 || !strings.Contains(r.body, `id="reserved"`) {
		t.Fatalf("the first tab's login after the second started: %d %s", r.status, r.body)
	}
	eb.codeFrom(t, b.submitPassword(ebID, r.body, testPassword))
	// The second tab goes on by single sign-on.
	r = b.follow(b.get("/login?id=" + url.QueryEscape(mallID)))
	mall.codeFrom(t, r)
}
