package authsvc

import (
	"context"
	"html"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/egate-bank/egate/authsvc/alerts"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// passwordPage walks the platform's start and the login name; it returns
// the auth request id and the password page.
func (b *browser) passwordPage(a *authz, name string) (string, string) {
	b.e.t.Helper()
	r := b.follow(b.get(a.url()))
	id := formID(b.e.t, r.body)
	r = b.post("/login/name", url.Values{"id": {id}, "login_name": {name}})
	if r.status != 200 || !strings.Contains(r.body, `id="reserved"`) {
		b.e.t.Fatalf("no password page: %d %s", r.status, r.body)
	}
	return id, r.body
}

// freshPicture asks the password page again with a new captcha ("New
// picture"), as a customer on a page without a form would.
func (b *browser) freshPicture(id string) string {
	b.e.t.Helper()
	r := b.post("/login/captcha", url.Values{"id": {id}})
	if r.status != 200 {
		b.e.t.Fatalf("new picture: %d %s", r.status, r.body)
	}
	return r.body
}

// alertCounts counts pid's alerts by kind ("" counts every customer's).
func (e *env) alertCounts(pid string) map[string]int {
	e.t.Helper()
	q, args := `SELECT kind FROM alerts_outbox`, []any{}
	if pid != "" {
		q, args = q+` WHERE passport_id = ?`, append(args, pid)
	}
	rows, err := e.srv.db.Query(context.Background(), q, args...)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		rows.Scan(&k)
		out[k]++
	}
	return out
}

// smsSent delivers the SMS consumer's pending alerts as egate authsvc does
// (alerts.SMSText decides) and returns the texts sent.
func (e *env) smsSent() []string {
	e.t.Helper()
	var texts []string
	_, err := e.srv.Alerts().Deliver(context.Background(), alerts.ConsumerSMS, 100, func(_ context.Context, a alerts.Alert) error {
		if text, ok := alerts.SMSText(a, nil); ok {
			texts = append(texts, text)
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return texts
}

// TestFailedLoginAndLockoutAlerts: a real customer's wrong passwords post
// one failed-login alert (coalesced within the hour), the attempt that
// locks posts one lockout alert, a locked password posts nothing more, and
// an unknown name posts nothing at all; by SMS the customer gets exactly
// those two.
func TestFailedLoginAndLockoutAlerts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		alice, ghost := e.browser(), e.browser()
		aliceID, alicePage := alice.passwordPage(newAuthz("ebank", ebankRedirect), "alice")
		ghostID, ghostPage := ghost.passwordPage(newAuthz("mall", mallRedirect), "nobody-here")
		for _, tc := range []struct {
			name       string
			ghost      bool
			password   string
			status     int
			code       string
			failed     int // alice's alerts after the step
			locked     int
			allAlerts  int // everybody's
			lockedPage bool
		}{
			{"first wrong password", false, "Wrong-Pass-1", 401, "bad_credentials", 1, 0, 1, false},
			{"second, same hour: coalesced", false, "Wrong-Pass-2", 401, "bad_credentials", 1, 0, 1, false},
			{"unknown name: nobody to alert", true, "Wrong-Pass-1", 401, "bad_credentials", 1, 0, 1, false},
			{"third", false, "Wrong-Pass-3", 401, "bad_credentials", 1, 0, 1, false},
			{"fourth", false, "Wrong-Pass-4", 401, "bad_credentials", 1, 0, 1, false},
			{"fifth", false, "Wrong-Pass-5", 401, "bad_credentials", 1, 0, 1, false},
			{"sixth locks: one lockout alert", false, "Wrong-Pass-6", 403, "bad_credentials", 1, 1, 2, true},
			{"locked, even the right password: no new alert", false, testPassword, 403, "locked", 1, 1, 2, true},
		} {
			b, id, page := alice, aliceID, &alicePage
			if tc.ghost {
				b, id, page = ghost, ghostID, &ghostPage
			}
			if !strings.Contains(*page, `name="captcha_id"`) { // another's failure may ask one since
				*page = b.freshPicture(id)
			}
			r := b.submitPassword(id, *page, tc.password)
			*page = r.body
			if r.status != tc.status || errorCode(r.body) != tc.code || strings.Contains(r.body, `id="locked"`) != tc.lockedPage {
				t.Fatalf("%s: %d %q\n%s", tc.name, r.status, errorCode(r.body), r.body)
			}
			got, all := e.alertCounts(e.pid), e.alertCounts("")
			if got[alerts.KindLoginFailed] != tc.failed || got[alerts.KindLocked] != tc.locked || all[alerts.KindLoginFailed]+all[alerts.KindLocked] != tc.allAlerts {
				t.Fatalf("%s: alice's alerts %v, everybody's %v", tc.name, got, all)
			}
		}
		sms := e.smsSent()
		if len(sms) != 2 || !strings.Contains(sms[0]+sms[1], "Failed sign-in to ebank") || !strings.Contains(sms[0]+sms[1], "password is locked") {
			t.Fatalf("SMS: %q", sms)
		}
	})
}

// TestFactorFailureAlerts: wrong answers to a second factor post the
// (coalesced) failed-login alert, and the answer that locks the tool a
// lockout alert.
func TestFactorFailureAlerts(t *testing.T) {
	for _, tc := range []struct {
		name string
		own  int // 0: counted on the passport's counter (6 a day); else the tool's own limit
	}{
		{name: "passport's counter"},
		{name: "the tool's own counter", own: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				e := newEnv(t, db)
				e.factor.enrolled[e.pid] = true
				e.factor.own = tc.own
				limit := 6
				if tc.own > 0 {
					limit = tc.own
				}
				b := e.browser()
				r := b.passwordLogin(newAuthz("messenger", messengerRedirect), "alice", testPassword)
				id := formID(t, r.body)
				for i := range limit {
					r = b.post("/login/factor", url.Values{"id": {id}, "response": {"000000"}})
					if r.status != 401 || errorCode(r.body) != "wrong_answer" {
						t.Fatalf("answer %d: %d %s", i, r.status, r.body)
					}
					want := map[string]int{alerts.KindLoginFailed: 1}
					if i == limit-1 {
						want[alerts.KindLocked] = 1
					}
					if got := e.alertCounts(e.pid); got[alerts.KindLoginFailed] != want[alerts.KindLoginFailed] || got[alerts.KindLocked] != want[alerts.KindLocked] || got[alerts.KindLogin] != 0 {
						t.Fatalf("after answer %d: %v", i, got)
					}
				}
				if r = b.post("/login/factor", url.Values{"id": {id}, "response": {"246810"}}); r.status != 403 || errorCode(r.body) != "locked" {
					t.Fatalf("locked tool: %d %s", r.status, r.body)
				}
				// One counter: a tool that counts its own failures leaves
				// the passport's counter of it at zero.
				n, err := e.srv.Passport().Failures(context.Background(), "pid:"+e.pid, "token")
				if err != nil {
					t.Fatal(err)
				}
				if want := map[bool]int{true: 0, false: 6}[tc.own > 0]; n != want {
					t.Fatalf("the passport's counter of the tool = %d, want %d", n, want)
				}
			})
		})
	}
}

var attemptsRE = regexp.MustCompile(`<p class="attempts" id="attempts" data-remaining="(\d+)">([^<]*)</p>`)

// TestPasswordPageShowsRemainingAttempts: the password page says how many
// attempts are left before the lock, counting down with each wrong
// password; an unknown name sees the same text and the same numbers.
func TestPasswordPageShowsRemainingAttempts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		shapes := map[string][]string{}
		for _, name := range []string{"alice", "nobody-here"} {
			b := e.browser()
			id, page := b.passwordPage(newAuthz("ebank", ebankRedirect), name)
			for _, want := range []string{"6", "5", "4"} {
				m := attemptsRE.FindStringSubmatch(page)
				if m == nil || m[1] != want || !strings.Contains(m[2], want+" attempts left today before the password locks") {
					t.Fatalf("%s: want %s attempts left, page:\n%s", name, want, page)
				}
				shapes[name] = append(shapes[name], m[0])
				page = b.submitPassword(id, page, "Wrong-Pass-1").body
			}
		}
		// Back at the password step on a locked day, the page says so.
		for _, name := range []string{"alice", "nobody-here"} {
			b := e.browser()
			id, page := b.passwordPage(newAuthz("ebank", ebankRedirect), name)
			for range 3 {
				page = b.submitPassword(id, page, "Wrong-Pass-1").body
			}
			_, page = b.passwordPage(newAuthz("ebank", ebankRedirect), name)
			m := attemptsRE.FindStringSubmatch(page)
			if m == nil || m[1] != "0" || m[2] != "No attempts left today: the password is locked until midnight." {
				t.Fatalf("%s on a locked day:\n%s", name, page)
			}
			shapes[name] = append(shapes[name], m[0])
		}
		if strings.Join(shapes["alice"], "\n") != strings.Join(shapes["nobody-here"], "\n") {
			t.Fatalf("known and unknown names differ:\n%q\n%q", shapes["alice"], shapes["nobody-here"])
		}
	})
}

// TestCaptchaNewPicture: the captcha has a "New picture" button, a form of
// its own (no JavaScript) that shows the password page again with a fresh
// picture; the old one can no longer be answered, nothing is counted, and
// the form is refused out of its flow.
func TestCaptchaNewPicture(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	b := e.browser()
	a := newAuthz("ebank", ebankRedirect)
	id, page := b.passwordPage(a, "alice")
	page = b.submitPassword(id, page, "Wrong-Pass-1").body
	old := captchaRE.FindStringSubmatch(page)
	if old == nil || !strings.Contains(page, `<button type="submit" form="new-captcha-form" id="new-captcha" formnovalidate>New picture</button>`) ||
		!regexp.MustCompile(`<form method="post" action="/login/captcha" id="new-captcha-form">\s*<input type="hidden" name="id" value="`+regexp.QuoteMeta(id)+`"><input type="hidden" name="captcha_id" value="`+regexp.QuoteMeta(old[1])+`">`).MatchString(page) {
		t.Fatalf("no new-picture form:\n%s", page)
	}
	nb := e.browser()
	nameStep := formID(t, nb.follow(nb.get(newAuthz("ebank", ebankRedirect).url())).body)
	for _, tc := range []struct {
		name   string
		b      *browser
		form   url.Values
		status int
		code   string
	}{
		{"another browser", e.browser(), url.Values{"id": {id}, "captcha_id": {old[1]}}, 403, "login_foreign"},
		{"unknown sign-in", b, url.Values{"id": {"nope"}, "captcha_id": {old[1]}}, 400, "login_expired"},
		{"before the password step", nb, url.Values{"id": {nameStep}}, 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := tc.b.post("/login/captcha", tc.form); r.status != tc.status || errorCode(r.body) != tc.code {
				t.Fatalf("got %d %q: %s", r.status, errorCode(r.body), r.body)
			}
		})
	}
	r := b.post("/login/captcha", url.Values{"id": {id}, "captcha_id": {old[1]}})
	fresh := captchaRE.FindStringSubmatch(r.body)
	if r.status != 200 || fresh == nil || fresh[1] == old[1] || errorCode(r.body) != "" || !strings.Contains(r.body, `data-remaining="5"`) {
		t.Fatalf("new picture: %d %s", r.status, r.body)
	}
	// The old picture is spent, even with its right answer.
	ans, _ := e.captcha.Load(old[1])
	r2 := b.post("/login/password", url.Values{"id": {id}, "password": {testPassword}, "captcha_id": {old[1]}, "captcha_answer": {ans.(string)}})
	if r2.status != 400 || errorCode(r2.body) != "captcha_wrong" {
		t.Fatalf("old picture: %d %s", r2.status, r2.body)
	}
	a.codeFrom(t, b.submitPassword(id, r2.body, testPassword))
}

// TestCaptchaNotAskedAgain: after a customer who mistyped signs in, or an
// operator unlocks the customer, the next sign-in from the same address
// asks no captcha; a new wrong password asks it again.
func TestCaptchaNotAskedAgain(t *testing.T) {
	for _, tc := range []struct {
		name  string
		clear func(t *testing.T, e *env, b *browser, a *authz, id, page string)
	}{
		{"after a successful login", func(t *testing.T, e *env, b *browser, a *authz, id, page string) {
			a.codeFrom(t, b.submitPassword(id, page, testPassword))
		}},
		{"after an operator unlock", func(t *testing.T, e *env, _ *browser, _ *authz, _, _ string) {
			if err := e.srv.Passport().Unlock(context.Background(), e.pid); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				e := newEnv(t, db)
				b := e.browser()
				a := newAuthz("ebank", ebankRedirect)
				id, page := b.passwordPage(a, "alice")
				r := b.submitPassword(id, page, "Wrong-Pass-1")
				if r.status != 401 || !strings.Contains(r.body, `name="captcha_id"`) {
					t.Fatalf("no captcha after a failure: %d %s", r.status, r.body)
				}
				tc.clear(t, e, b, a, id, r.body)
				b2 := e.browser()
				id2, page2 := b2.passwordPage(newAuthz("mall", mallRedirect), "alice")
				if strings.Contains(page2, `name="captcha_id"`) {
					t.Fatalf("captcha asked again:\n%s", page2)
				}
				if r := b2.submitPassword(id2, page2, "Wrong-Pass-2"); !strings.Contains(r.body, `name="captcha_id"`) {
					t.Fatalf("no captcha after a new failure:\n%s", r.body)
				}
			})
		})
	}
}

// TestOneSMSPerSitting: a password login, then single sign-on to a second
// platform and a step-up to a third, are three inbox alerts and one SMS.
func TestOneSMSPerSitting(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		e.factor.enrolled[e.pid] = true
		b := e.browser()
		a := newAuthz("ebank", ebankRedirect)
		a.codeFrom(t, b.passwordLogin(a, "alice", testPassword))
		m := newAuthz("mall", mallRedirect)
		m.codeFrom(t, b.follow(b.get(m.url())))
		g := newAuthz("messenger", messengerRedirect)
		g.extra.Set("acr_values", "urn:egate:loa:3")
		r := b.follow(b.get(g.url()))
		g.codeFrom(t, b.follow(b.post("/login/factor", url.Values{"id": {formID(t, r.body)}, "response": {"246810"}})))
		if got := e.alertCounts(e.pid); got[alerts.KindLogin] != 3 {
			t.Fatalf("inbox: %v", got)
		}
		sms := e.smsSent()
		if len(sms) != 1 || !strings.Contains(sms[0], "Login to ebank") {
			t.Fatalf("SMS: %q", sms)
		}
		// A new sitting (the password asked again) is a new SMS.
		x := newAuthz("mall", mallRedirect)
		x.extra.Set("prompt", "login")
		x.codeFrom(t, b.passwordLogin(x, "alice", testPassword))
		if sms := e.smsSent(); len(sms) != 1 || !strings.Contains(sms[0], "Login to mall") {
			t.Fatalf("SMS of the second sitting: %q", sms)
		}
	})
}

var backRE = regexp.MustCompile(`<a id="back" href="([^"]+)">Back to ([^<]+)</a>`)

// TestDeadEndsLeadBackToThePlatform: every page that ends a sign-in (a
// password locked now or before, no tool of the level, a tool locked, an
// address over its limit) has a link back to the platform: its redirect
// URI with error=access_denied and the request's state.
func TestDeadEndsLeadBackToThePlatform(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client string
		mutate func(*Config)
		walk   func(t *testing.T, e *env, b *browser, a *authz) resp
		status int
		code   string
	}{
		{"the password locks", "ebank", nil, func(t *testing.T, e *env, b *browser, a *authz) resp {
			id, page := b.passwordPage(a, "alice")
			var r resp
			for range 6 {
				r = b.submitPassword(id, page, "Wrong-Pass-1")
				page = r.body
			}
			return r
		}, 403, "bad_credentials"},
		{"an unknown name locks alike", "ebank", nil, func(t *testing.T, e *env, b *browser, a *authz) resp {
			id, page := b.passwordPage(a, "nobody-here")
			var r resp
			for range 6 {
				r = b.submitPassword(id, page, "Wrong-Pass-1")
				page = r.body
			}
			return r
		}, 403, "bad_credentials"},
		{"operator lock", "ebank", nil, func(t *testing.T, e *env, b *browser, a *authz) resp {
			e.srv.Passport().Lock(context.Background(), e.pid)
			id, page := b.passwordPage(a, "alice")
			return b.submitPassword(id, page, testPassword)
		}, 403, "locked"},
		{"no tool of the level", "messenger", nil, func(t *testing.T, e *env, b *browser, a *authz) resp {
			return b.passwordLogin(a, "alice", testPassword)
		}, 403, "no_factor"},
		{"the tool locked", "messenger", nil, func(t *testing.T, e *env, b *browser, a *authz) resp {
			e.factor.enrolled[e.pid] = true
			id := formID(t, b.passwordLogin(a, "alice", testPassword).body)
			var r resp
			for range 7 {
				r = b.post("/login/factor", url.Values{"id": {id}, "response": {"000000"}})
			}
			return r
		}, 403, "locked"},
		{"the address over its limit", "ebank", func(c *Config) { c.Passport.MaxIPFailures = 1 }, func(t *testing.T, e *env, b *browser, a *authz) resp {
			id, page := b.passwordPage(a, "nobody-here")
			page = b.submitPassword(id, page, "Wrong-Pass-1").body
			return b.submitPassword(id, page, testPassword)
		}, 429, "ip_limited"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mutate []func(*Config)
			if tc.mutate != nil {
				mutate = append(mutate, tc.mutate)
			}
			e := newEnv(t, storetest.SQLite(t), mutate...)
			redirect := map[string]string{"ebank": ebankRedirect, "messenger": messengerRedirect}[tc.client]
			a := newAuthz(tc.client, redirect)
			r := tc.walk(t, e, e.browser(), a)
			if r.status != tc.status || errorCode(r.body) != tc.code {
				t.Fatalf("dead end: %d %q\n%s", r.status, errorCode(r.body), r.body)
			}
			m := backRE.FindStringSubmatch(r.body)
			if m == nil || m[2] != tc.client {
				t.Fatalf("no way back to %s:\n%s", tc.client, r.body)
			}
			u, err := url.Parse(html.UnescapeString(m[1]))
			if err != nil || !strings.HasPrefix(u.String(), redirect+"?") {
				t.Fatalf("back link %q (%v)", m[1], err)
			}
			q := u.Query()
			if q.Get("error") != "access_denied" || q.Get("state") != a.state || q.Get("error_description") == "" || q.Get("code") != "" {
				t.Fatalf("back link %s", u)
			}
		})
	}
}
