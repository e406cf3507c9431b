package authsvc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/egate-bank/egate/internal/store/storetest"
)

// loggedIn returns an env, a browser with a passport session and a fresh
// code for ebank.
func loggedIn(t *testing.T) (*env, *browser) {
	e := newEnv(t, storetest.SQLite(t))
	b := e.browser()
	a := newAuthz("ebank", ebankRedirect)
	a.codeFrom(t, b.passwordLogin(a, "alice", testPassword))
	return e, b
}

func (b *browser) code(a *authz) string {
	return a.codeFrom(b.e.t, b.follow(b.get(a.url())))
}

func TestTokenEndpointErrors(t *testing.T) {
	e, b := loggedIn(t)
	oerr := func(tk tokens) string { s, _ := tk.body["error"].(string); return s }
	type tc struct {
		name   string
		form   func(a *authz, code string) url.Values
		user   string
		pass   string
		status int
		err    string
	}
	base := func(a *authz, code string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {a.redirect}, "code_verifier": {a.verifier}}
	}
	fixed := func(v url.Values) func(*authz, string) url.Values {
		return func(*authz, string) url.Values { return v }
	}
	with := func(k, v string) func(a *authz, code string) url.Values {
		return func(a *authz, code string) url.Values { f := base(a, code); f.Set(k, v); return f }
	}
	for _, c := range []tc{
		{"unknown client", base, "nobody", "secret-secret-secret", 401, "invalid_client"},
		{"wrong secret", base, "ebank", "not-the-secret-at-all", 401, "invalid_client"},
		{"other client's code", base, "messenger", messengerSecret, 400, "invalid_grant"},
		{"PKCE mismatch", with("code_verifier", strings.Repeat("x", 50)), "ebank", ebankSecret, 400, "invalid_grant"},
		{"PKCE missing", with("code_verifier", ""), "ebank", ebankSecret, 400, "invalid_request"},
		{"wrong redirect", with("redirect_uri", "https://evil.example/cb"), "ebank", ebankSecret, 400, "invalid_grant"},
		{"unknown code", with("code", "bm90LWEtY29kZQ"), "ebank", ebankSecret, 400, "invalid_grant"},
		{"no code", with("code", ""), "ebank", ebankSecret, 400, "invalid_request"},
		{"bad grant type", with("grant_type", "password"), "ebank", ebankSecret, 400, "unsupported_grant_type"},
		{"JWT bearer grant not offered", fixed(url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {"a..c"}}), "ebank", ebankSecret, 400, "unsupported_grant_type"},
		{"client credentials grant not offered", fixed(url.Values{"grant_type": {"client_credentials"}}), "ebank", ebankSecret, 400, "unsupported_grant_type"},
		{"no grant type", with("grant_type", ""), "ebank", ebankSecret, 400, "invalid_request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newAuthz("ebank", ebankRedirect)
			code := b.code(a)
			tk := e.token(c.form(a, code), c.user, c.pass)
			if tk.status != c.status || oerr(tk) != c.err {
				t.Fatalf("got %d %v, want %d %s", tk.status, tk.body, c.status, c.err)
			}
			// Nothing changed: the code still works once.
			if tk := e.exchange(a, code); tk.status != 200 {
				t.Fatalf("code spent by a refused request: %v", tk.body)
			}
		})
	}

	t.Run("reused code revokes its tokens", func(t *testing.T) {
		a := newAuthz("ebank", ebankRedirect)
		code := b.code(a)
		first := e.exchange(a, code)
		if first.status != 200 {
			t.Fatal(first.body)
		}
		if tk := e.exchange(a, code); tk.status != 400 || oerr(tk) != "invalid_grant" {
			t.Fatalf("reuse: %d %v", tk.status, tk.body)
		}
		if active(t, e, first.access) {
			t.Fatal("access token from a replayed code still active")
		}
		r := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.refresh}}, "ebank", ebankSecret)
		if r.status != 400 || oerr(r) != "invalid_grant" {
			t.Fatalf("refresh from replayed code: %v", r.body)
		}
	})

	t.Run("expired code", func(t *testing.T) {
		a := newAuthz("ebank", ebankRedirect)
		code := b.code(a)
		e.clk.Add(2 * time.Minute)
		if tk := e.exchange(a, code); tk.status != 400 || oerr(tk) != "invalid_grant" {
			t.Fatalf("expired: %v", tk.body)
		}
	})

	t.Run("public client needs PKCE verifier, no secret", func(t *testing.T) {
		a := newAuthz("mall", mallRedirect)
		code := b.code(a)
		tk := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {a.redirect}, "client_id": {"mall"}}, "", "")
		if tk.status != 400 || oerr(tk) != "invalid_request" {
			t.Fatalf("no verifier: %v", tk.body)
		}
		if tk := e.exchange(a, code); tk.status != 200 {
			t.Fatalf("with verifier: %v", tk.body)
		}
	})
}

func TestRefreshRotationAndReuse(t *testing.T) {
	e, b := loggedIn(t)
	a := newAuthz("ebank", ebankRedirect)
	tk := e.exchange(a, b.code(a))
	refresh := func(rt string) tokens {
		return e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "ebank", ebankSecret)
	}
	r1 := refresh(tk.refresh)
	if r1.status != 200 || r1.refresh == "" || r1.refresh == tk.refresh {
		t.Fatalf("rotation: %v", r1.body)
	}
	c, err := e.claims(r1.id)
	if err != nil || c["sub"] != e.pid || c["acr"] != "urn:egate:loa:1" || !slices.Equal(amrOf(c), []string{"pwd"}) {
		t.Fatalf("refreshed ID token: %v %v", c, err)
	}
	// Other client presenting it: refused, family untouched.
	if r := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r1.refresh}}, "messenger", messengerSecret); r.status != 400 || r.body["error"] != "invalid_grant" {
		t.Fatalf("foreign client: %v", r.body)
	}
	// Reusing the spent one revokes the family: r1's tokens die too.
	if r := refresh(tk.refresh); r.status != 400 || r.body["error"] != "invalid_grant" {
		t.Fatalf("reuse: %v", r.body)
	}
	if r := refresh(r1.refresh); r.status != 400 {
		t.Fatalf("family not revoked: %v", r.body)
	}
}

// active asks the introspection endpoint.
func active(t *testing.T, e *env, tok string) bool {
	t.Helper()
	req, _ := http.NewRequest("POST", e.ts.URL+"/oauth/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("ebank", ebankSecret)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var m map[string]any
	json.NewDecoder(r.Body).Decode(&m)
	if m["active"] == true && (m["acr"] != "urn:egate:loa:1" || m["sub"] != e.pid) {
		t.Fatalf("introspection: %v", m)
	}
	return m["active"] == true
}

func userinfo(e *env, tok string) (int, map[string]any) {
	req, _ := http.NewRequest("GET", e.ts.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Body.Close()
	var m map[string]any
	json.NewDecoder(r.Body).Decode(&m)
	return r.StatusCode, m
}

func TestIntrospectUserinfoRevokeForeign(t *testing.T) {
	e, b := loggedIn(t)
	a := newAuthz("ebank", ebankRedirect)
	tk := e.exchange(a, b.code(a))
	if !active(t, e, tk.access) {
		t.Fatal("fresh token inactive")
	}
	st, ui := userinfo(e, tk.access)
	if st != 200 || ui["sub"] != e.pid || ui["preferred_username"] != "alice" || ui["phone_number"] != "138****5678" {
		t.Fatalf("userinfo: %d %v", st, ui)
	}
	// Tampered: flip the payload; foreign: the same claims signed by
	// another key.
	parts := strings.Split(tk.access, ".")
	tampered := parts[0] + "." + parts[1] + "x." + parts[2]
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sg, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: other, KeyID: DefaultSigningKey}}, nil)
	c, _ := e.claims(tk.access)
	payload, _ := json.Marshal(c)
	jws, _ := sg.Sign(payload)
	foreign, _ := jws.CompactSerialize()
	for _, tc := range []struct{ name, tok string }{{"tampered", tampered}, {"foreign", foreign}, {"garbage", "abc"}} {
		t.Run(tc.name, func(t *testing.T) {
			if active(t, e, tc.tok) {
				t.Fatal("active")
			}
			if st, _ := userinfo(e, tc.tok); st != 401 && st != 403 {
				t.Fatalf("userinfo status %d", st)
			}
		})
	}
	// Revocation by another client is refused and changes nothing.
	rv := func(user, pass, tok string) int {
		req, _ := http.NewRequest("POST", e.ts.URL+"/revoke", strings.NewReader(url.Values{"token": {tok}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(user, pass)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	if st := rv("messenger", messengerSecret, tk.refresh); st == 200 {
		t.Fatal("messenger revoked ebank's token")
	}
	if r := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.refresh}}, "ebank", ebankSecret); r.status != 200 {
		t.Fatalf("refused revocation changed something: %v", r.body)
	} else {
		tk.refresh, tk.access = r.refresh, r.access
	}
	if st := rv("ebank", ebankSecret, tk.refresh); st != 200 {
		t.Fatalf("revoke: %d", st)
	}
	if active(t, e, tk.access) {
		t.Fatal("access token of a revoked family still active")
	}
}

func TestAuthorizeErrors(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	b := e.browser()
	for _, tc := range []struct {
		name     string
		mutate   func(q url.Values)
		redirect bool // error goes back to the client (else shown, never redirected)
		err      string
	}{
		{"unknown client", func(q url.Values) { q.Set("client_id", "evil") }, false, ""},
		{"wrong redirect", func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") }, false, ""},
		{"no PKCE", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, true, "invalid_request"},
		{"plain PKCE", func(q url.Values) { q.Set("code_challenge_method", "plain") }, true, "invalid_request"},
		{"token response type", func(q url.Values) { q.Set("response_type", "token") }, true, "unauthorized_client"},
		{"unknown scope only", func(q url.Values) { q.Set("scope", "admin") }, true, "invalid_scope"},
		{"prompt none without session", func(q url.Values) { q.Set("prompt", "none") }, true, "login_required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAuthz("ebank", ebankRedirect)
			u, _ := url.Parse(a.url())
			q := u.Query()
			tc.mutate(q)
			r := b.follow(b.get("/authorize?" + q.Encode()))
			if !tc.redirect {
				if r.loc != "" || r.status < 400 {
					t.Fatalf("want an error page, got %d %q", r.status, r.loc)
				}
				return
			}
			lu, err := url.Parse(r.loc)
			if err != nil || !strings.HasPrefix(r.loc, ebankRedirect) || lu.Query().Get("error") != tc.err {
				t.Fatalf("want redirect with %s, got %d %q %s", tc.err, r.status, r.loc, r.body)
			}
		})
	}
}

func TestEndSessionLogsOutEverywhere(t *testing.T) {
	e, b := loggedIn(t)
	a := newAuthz("ebank", ebankRedirect)
	tk := e.exchange(a, b.code(a))
	r := b.follow(b.get("/end_session?" + url.Values{"id_token_hint": {tk.id}, "post_logout_redirect_uri": {"https://ebank.example/bye"}, "state": {"s1"}}.Encode()))
	if !strings.HasPrefix(r.loc, "https://ebank.example/bye") {
		t.Fatalf("end_session: %d %q %s", r.status, r.loc, r.body)
	}
	// No more SSO: mall asks for the login name.
	m := newAuthz("mall", mallRedirect)
	if r := b.follow(b.get(m.url())); !strings.Contains(r.body, `name="login_name"`) {
		t.Fatalf("still signed in: %d %q", r.status, r.loc)
	}
	if active(t, e, tk.access) {
		t.Fatal("ebank token active after logout")
	}
}
