package authsvc

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/egate-bank/egate/authsvc/oidcop"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// rawPost posts a form with optional basic auth and returns the response
// with its body read.
func rawPost(t *testing.T, u string, form url.Values, user, pass string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var m map[string]any
	json.NewDecoder(r.Body).Decode(&m)
	return r, m
}

// RFC 6749 §5.1: every token response, success or error, of every grant,
// carries Cache-Control: no-store.
func TestTokenResponsesAreNotStored(t *testing.T) {
	e, b := loggedIn(t)
	a := newAuthz("ebank", ebankRedirect)
	code := b.code(a)
	tokURL := e.ts.URL + "/oauth/token"
	codeForm := func(verifier string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {a.redirect}, "code_verifier": {verifier}}
	}
	var refresh string
	for _, tc := range []struct {
		name   string
		form   func() url.Values
		status int
	}{
		{"code, wrong verifier", func() url.Values { return codeForm("wrong-" + a.verifier) }, 400},
		{"code, success", func() url.Values { return codeForm(a.verifier) }, 200},
		{"refresh, success", func() url.Values { return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}} }, 200},
		{"code, replayed", func() url.Values { return codeForm(a.verifier) }, 400},
		{"refresh, unknown", func() url.Values { return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"rt.nope"}} }, 400},
		{"unsupported grant", func() url.Values { return url.Values{"grant_type": {"client_credentials"}} }, 400},
		{"no grant type", func() url.Values { return url.Values{} }, 400},
		{"client assertion", func() url.Values {
			return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {"x.y.z"}}
		}, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, body := rawPost(t, tokURL, tc.form(), "ebank", ebankSecret)
			if r.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %v", r.StatusCode, tc.status, body)
			}
			if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
				t.Fatalf("Cache-Control %q", cc)
			}
			if rt, ok := body["refresh_token"].(string); ok {
				refresh = rt
			}
		})
	}
}

// Malformed input is a 4xx with an OAuth error, never a 500.
func TestMalformedOAuthInput(t *testing.T) {
	e, _ := loggedIn(t)
	assertion := url.Values{"client_id": {"ebank"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {"eyJhbGciOiJub25lIn0.e30."}}
	for _, tc := range []struct {
		name   string
		do     func() (*http.Response, string)
		status int
		code   string
	}{
		{"end_session with a broken escape", func() (*http.Response, string) { return get(t, e.ts.URL+"/end_session?state=%zz") }, 400, "invalid_request"},
		{"token with a client assertion", func() (*http.Response, string) {
			f := url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}
			for k, v := range assertion {
				f[k] = v
			}
			return post(t, e.ts.URL+"/oauth/token", f)
		}, 401, "invalid_client"},
		{"introspect with a client assertion", func() (*http.Response, string) {
			f := url.Values{"token": {"x"}}
			for k, v := range assertion {
				f[k] = v
			}
			return post(t, e.ts.URL+"/oauth/introspect", f)
		}, 401, "invalid_client"},
		{"revoke with a client assertion", func() (*http.Response, string) {
			f := url.Values{"token": {"x"}}
			for k, v := range assertion {
				f[k] = v
			}
			return post(t, e.ts.URL+"/revoke", f)
		}, 401, "invalid_client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, body := tc.do()
			if r.StatusCode != tc.status || !strings.Contains(body, tc.code) {
				t.Fatalf("got %d %s, want %d %s", r.StatusCode, body, tc.status, tc.code)
			}
		})
	}
}

func get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	r, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r, string(b)
}

func post(t *testing.T, u string, f url.Values) (*http.Response, string) {
	t.Helper()
	r, err := http.PostForm(u, f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r, string(b)
}

// Discovery advertises what is served and nothing else.
func TestDiscoveryAdvertisesWhatIsServed(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	_, body := get(t, e.ts.URL+"/.well-known/openid-configuration")
	var d struct {
		Issuer        string   `json:"issuer"`
		Grants        []string `json:"grant_types_supported"`
		ResponseTypes []string `json:"response_types_supported"`
		Device        string   `json:"device_authorization_endpoint"`
		ACR           []string `json:"acr_values_supported"`
		Iss           bool     `json:"authorization_response_iss_parameter_supported"`
		Backchannel   bool     `json:"backchannel_logout_supported"`
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	if d.Issuer != e.ts.URL {
		t.Fatalf("issuer %q", d.Issuer)
	}
	if !slices.Equal(d.Grants, []string{"authorization_code", "refresh_token"}) {
		t.Errorf("grant_types_supported %v", d.Grants)
	}
	if !slices.Equal(d.ResponseTypes, []string{"code"}) {
		t.Errorf("response_types_supported %v", d.ResponseTypes)
	}
	if d.Device != "" {
		t.Errorf("device endpoint %q advertised", d.Device)
	}
	want := []string{oidcop.ACR(1), oidcop.ACR(2), oidcop.ACR(3), oidcop.ACR(4), oidcop.ACR(5)}
	if !slices.Equal(d.ACR, want) {
		t.Errorf("acr_values_supported %v", d.ACR)
	}
	if !d.Iss || !d.Backchannel {
		t.Errorf("iss parameter %v, back-channel logout %v", d.Iss, d.Backchannel)
	}
	if r, _ := post(t, e.ts.URL+"/device_authorization", url.Values{"client_id": {"ebank"}}); r.StatusCode != 404 {
		t.Errorf("device endpoint answers %d", r.StatusCode)
	}
}

// Userinfo with a token that is not (or no longer) good answers 401 with
// WWW-Authenticate (RFC 6750 §3).
func TestUserinfoBearerErrors(t *testing.T) {
	e, b := loggedIn(t)
	a := newAuthz("ebank", ebankRedirect)
	tk := e.exchange(a, b.code(a))
	// Revoke tk's family.
	if r, _ := rawPost(t, e.ts.URL+"/revoke", url.Values{"token": {tk.refresh}}, "ebank", ebankSecret); r.StatusCode != 200 {
		t.Fatalf("revoke: %d", r.StatusCode)
	}
	parts := strings.Split(tk.access, ".")
	for _, tc := range []struct {
		name, auth string
		wantErr    string
	}{
		{"revoked", "Bearer " + tk.access, `error="invalid_token"`},
		{"forged", "Bearer " + parts[0] + "." + parts[1] + "x." + parts[2], `error="invalid_token"`},
		{"garbage", "Bearer abc", `error="invalid_token"`},
		{"none", "", `Bearer`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.ts.URL+"/userinfo", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			r, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if wa := r.Header.Get("WWW-Authenticate"); r.StatusCode != 401 || !strings.HasPrefix(wa, "Bearer") || !strings.Contains(wa, tc.wantErr) {
				t.Fatalf("status %d, WWW-Authenticate %q", r.StatusCode, wa)
			}
		})
	}
}

// Error responses to the client carry iss too (RFC 9207 §2).
func TestAuthorizationErrorsCarryIss(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	b := e.browser()
	for _, tc := range []struct {
		name     string
		set      func(q url.Values)
		fragment bool
	}{
		{"prompt none without session", func(q url.Values) { q.Set("prompt", "none") }, false},
		{"plain PKCE", func(q url.Values) { q.Set("code_challenge_method", "plain") }, false},
		{"prompt none, fragment mode", func(q url.Values) { q.Set("prompt", "none"); q.Set("response_mode", "fragment") }, true},
		{"plain PKCE, fragment mode", func(q url.Values) { q.Set("code_challenge_method", "plain"); q.Set("response_mode", "fragment") }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAuthz("ebank", ebankRedirect)
			u, _ := url.Parse(a.url())
			q := u.Query()
			tc.set(q)
			r := b.follow(b.get("/authorize?" + q.Encode()))
			lu, err := url.Parse(r.loc)
			if err != nil {
				t.Fatal(err)
			}
			got := lu.Query()
			if tc.fragment {
				got, _ = url.ParseQuery(lu.EscapedFragment())
			}
			if got.Get("error") == "" || got.Get("iss") != e.ts.URL {
				t.Fatalf("redirect %q", r.loc)
			}
		})
	}
	// form_post is not offered (and not advertised): refused on a page.
	a := newAuthz("ebank", ebankRedirect)
	a.extra.Set("response_mode", "form_post")
	if r := b.get(a.url()); r.status != 400 || r.loc != "" || errorCode(r.body) != "invalid_request" {
		t.Fatalf("form_post: %d %q %s", r.status, r.loc, r.body)
	}
}

// A code in the fragment (response_mode=fragment) carries iss too.
func TestFragmentResponseCarriesIss(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	b := e.browser()
	a := newAuthz("ebank", ebankRedirect)
	a.extra.Set("response_mode", "fragment")
	r := b.passwordLogin(a, "alice", testPassword)
	lu, err := url.Parse(r.loc)
	if err != nil || !strings.HasPrefix(r.loc, ebankRedirect+"#") {
		t.Fatalf("redirect %q", r.loc)
	}
	f, _ := url.ParseQuery(lu.EscapedFragment())
	if f.Get("code") == "" || f.Get("state") != a.state || f.Get("iss") != e.ts.URL {
		t.Fatalf("fragment %v", f)
	}
}
