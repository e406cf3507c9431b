package authsvc

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/egate-bank/egate/authsvc/oidcop"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// receiver is a client's back-channel logout endpoint.
type receiver struct {
	mu     sync.Mutex
	tokens []string
	status int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if r.Method != "POST" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.tokens = append(rc.tokens, r.PostFormValue("logout_token"))
	w.WriteHeader(rc.status)
}

func (rc *receiver) got() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.tokens...)
}

// withBackchannel registers a back-channel receiver for ebank (answers
// 200) and messenger (answers 500: a platform that is down).
func withBackchannel(t *testing.T, db *store.DB) (*env, *receiver, *receiver) {
	eb, ms := &receiver{status: 200}, &receiver{status: 500}
	ebTS, msTS := httptest.NewServer(eb), httptest.NewServer(ms)
	t.Cleanup(ebTS.Close)
	t.Cleanup(msTS.Close)
	e := newEnv(t, db, func(c *Config) {
		c.OIDC.Clients[0].BackchannelLogoutURI = ebTS.URL + "/bc"
		c.OIDC.Clients[2].BackchannelLogoutURI = msTS.URL + "/bc"
	})
	return e, eb, ms
}

var (
	csrfRE    = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	nextRE    = regexp.MustCompile(`name="next" value="([^"]+)"`)
	nextSigRE = regexp.MustCompile(`name="next_sig" value="([^"]+)"`)
)

// RP-initiated logout without id_token_hint asks first; the question
// changes nothing; confirming ends the passport session and goes back to
// the validated post-logout URI with the state; a forged redirect is not
// followed.
func TestEndSessionWithoutHintAsks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e, eb, _ := withBackchannel(t, db)
		b := e.browser()
		a := newAuthz("ebank", ebankRedirect)
		a.codeFrom(t, b.passwordLogin(a, "alice", testPassword))

		r := b.get("/end_session?" + url.Values{"client_id": {"ebank"}, "post_logout_redirect_uri": {"https://ebank.example/bye"}, "state": {"s9"}}.Encode())
		csrf, next, sig := csrfRE.FindStringSubmatch(r.body), nextRE.FindStringSubmatch(r.body), nextSigRE.FindStringSubmatch(r.body)
		if r.status != 200 || csrf == nil || next == nil || sig == nil {
			t.Fatalf("no confirmation page: %d %q %s", r.status, r.loc, r.body)
		}
		// Still signed in: SSO works.
		m := newAuthz("mall", mallRedirect)
		mtk := e.exchange(m, m.codeFrom(t, b.follow(b.get(m.url()))))
		if mtk.refresh == "" {
			t.Fatalf("mall tokens: %v", mtk.body)
		}
		if len(eb.got()) != 0 {
			t.Fatal("the question sent a logout token")
		}
		// A forged redirect in the form: signed out, but to the passport's page.
		if r := b.post("/logout", url.Values{"csrf": {csrf[1]}, "next": {"https://evil.example/"}, "next_sig": {sig[1]}}); r.status != 303 || r.loc != "/logged-out" {
			t.Fatalf("forged next: %d %q", r.status, r.loc)
		}
		// Sign in again and confirm for real.
		a2 := newAuthz("ebank", ebankRedirect)
		a2.codeFrom(t, b.passwordLogin(a2, "alice", testPassword))
		r = b.get("/end_session?" + url.Values{"client_id": {"ebank"}, "post_logout_redirect_uri": {"https://ebank.example/bye"}, "state": {"s9"}}.Encode())
		csrf, next, sig = csrfRE.FindStringSubmatch(r.body), nextRE.FindStringSubmatch(r.body), nextSigRE.FindStringSubmatch(r.body)
		r = b.post("/logout", url.Values{"csrf": {csrf[1]}, "next": {unescape(next[1])}, "next_sig": {sig[1]}})
		lu, _ := url.Parse(r.loc)
		if r.status != 303 || !strings.HasPrefix(r.loc, "https://ebank.example/bye") || lu.Query().Get("state") != "s9" {
			t.Fatalf("confirmed logout: %d %q", r.status, r.loc)
		}
		g := newAuthz("ebank", ebankRedirect)
		if r := b.follow(b.get(g.url())); !strings.Contains(r.body, `name="login_name"`) {
			t.Fatalf("still signed in after the confirmed logout: %d %q", r.status, r.loc)
		}
		// Another platform's tokens of the customer are revoked too.
		if tk := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {mtk.refresh}, "client_id": {"mall"}}, "", ""); tk.status == 200 {
			t.Fatal("mall refreshed after the logout")
		}
	})
}

func unescape(s string) string { return strings.ReplaceAll(s, "&amp;", "&") }

// Bad logout requests are refused with a page and end nothing.
func TestEndSessionRefusals(t *testing.T) {
	e, b := loggedIn(t)
	for _, tc := range []struct {
		name string
		q    url.Values
	}{
		{"unregistered post-logout URI", url.Values{"client_id": {"ebank"}, "post_logout_redirect_uri": {"https://evil.example/"}}},
		{"forged id_token_hint", url.Values{"id_token_hint": {"eyJhbGciOiJFUzI1NiJ9.e30.c2ln"}}},
		{"unknown client", url.Values{"client_id": {"casino"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.get("/end_session?" + tc.q.Encode())
			if r.status != 400 || r.loc != "" || errorCode(r.body) == "" {
				t.Fatalf("got %d %q %q", r.status, r.loc, errorCode(r.body))
			}
		})
	}
	m := newAuthz("mall", mallRedirect)
	m.codeFrom(t, b.follow(b.get(m.url())))
	_ = e
}

// Every end of the customer's sessions sends each client with a
// back-channel logout URI a logout token signed with the passport key:
// typ logout+jwt, iss, aud, sub, iat, exp, jti, the event, no nonce. A
// client that is down does not stop the logout, and is audited.
func TestBackchannelLogoutTokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e, eb, ms := withBackchannel(t, db)
		b := e.browser()
		a := newAuthz("ebank", ebankRedirect)
		tk := e.exchange(a, a.codeFrom(t, b.passwordLogin(a, "alice", testPassword)))
		r := b.get("/end_session?" + url.Values{"id_token_hint": {tk.id}, "post_logout_redirect_uri": {"https://ebank.example/bye"}}.Encode())
		if r.status != 302 || !strings.HasPrefix(r.loc, "https://ebank.example/bye") {
			t.Fatalf("end_session: %d %q %s", r.status, r.loc, r.body)
		}
		for _, tc := range []struct {
			name string
			rc   *receiver
			aud  string
		}{{"ebank", eb, "ebank"}, {"messenger (down)", ms, "messenger"}} {
			t.Run(tc.name, func(t *testing.T) {
				got := tc.rc.got()
				if len(got) != 1 {
					t.Fatalf("%d logout tokens", len(got))
				}
				jws, err := jose.ParseSigned(got[0], []jose.SignatureAlgorithm{jose.ES256})
				if err != nil {
					t.Fatal(err)
				}
				h := jws.Signatures[0].Header
				if h.KeyID != DefaultSigningKey || h.ExtraHeaders[jose.HeaderType] != "logout+jwt" {
					t.Fatalf("header kid %q typ %v", h.KeyID, h.ExtraHeaders[jose.HeaderType])
				}
				payload, err := jws.Verify(e.pub)
				if err != nil {
					t.Fatal(err)
				}
				var c map[string]any
				json.Unmarshal(payload, &c)
				aud, _ := c["aud"].([]any)
				events, _ := c["events"].(map[string]any)
				_, hasEvent := events[oidcop.BackchannelLogoutEvent]
				iat, _ := c["iat"].(float64)
				exp, _ := c["exp"].(float64)
				if c["iss"] != e.ts.URL || len(aud) != 1 || aud[0] != tc.aud || c["sub"] != e.pid || !hasEvent || c["nonce"] != nil || c["jti"] == "" ||
					exp <= iat || time.Unix(int64(iat), 0).Sub(e.clk.Now()).Abs() > 5*time.Second {
					t.Fatalf("claims %v", c)
				}
			})
		}
		// mall has no back-channel URI: nothing sent there; the audit says
		// what happened to each delivery.
		var outcomes []string
		rows, err := db.Query(t.Context(), `SELECT record FROM audit_log WHERE kind = 'logout.backchannel' ORDER BY seq`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var rec string
			rows.Scan(&rec)
			outcomes = append(outcomes, rec)
		}
		all := strings.Join(outcomes, "\n")
		if len(outcomes) != 2 || !strings.Contains(all, `"ok"`) || !strings.Contains(all, "refused_500") {
			t.Fatalf("audit: %s", all)
		}
	})
}
