package authsvc

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/egate-bank/egate/internal/store/storetest"
)

// One server per fuzzing process: the targets only parse and refuse.
var fuzzEnv struct {
	once sync.Once
	e    *env
}

func fuzzServer(f *testing.F) *env {
	fuzzEnv.once.Do(func() { fuzzEnv.e = newEnv(f, storetest.SQLite(f)) })
	return fuzzEnv.e
}

// The OAuth errors RFC 6749 §5.2 (and RFC 7636) allow at the token endpoint.
var tokenErrors = map[string]bool{
	"invalid_request": true, "invalid_client": true, "invalid_grant": true, "unauthorized_client": true,
	"unsupported_grant_type": true, "invalid_scope": true,
}

// FuzzTokenRequest posts arbitrary bodies and credentials to the token
// endpoint: every answer is a 4xx with an RFC error code, never a token,
// never a 5xx.
func FuzzTokenRequest(f *testing.F) {
	e := fuzzServer(f)
	for _, s := range []string{
		"grant_type=authorization_code&code=abc&redirect_uri=https%3A%2F%2Febank.example%2Fcb&code_verifier=xyz",
		"grant_type=refresh_token&refresh_token=rt.abc",
		"grant_type=client_credentials&scope=openid",
		"grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=a.b.c",
		"grant_type=authorization_code&code=%ff%fe&redirect_uri=%zz",
		"", "&&&", "grant_type=password&username=alice&password=x",
	} {
		f.Add(s, "ebank", ebankSecret)
		f.Add(s, "", "")
	}
	f.Fuzz(func(t *testing.T, body, user, pass string) {
		req := httptest.NewRequest("POST", "/oauth/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		var m map[string]any
		json.Unmarshal(rec.Body.Bytes(), &m)
		code, _ := m["error"].(string)
		if rec.Code < 400 || rec.Code >= 500 || !tokenErrors[code] || m["access_token"] != nil {
			t.Fatalf("body %q: status %d, %s", body, rec.Code, rec.Body.String())
		}
	})
}

// FuzzLoginForms posts arbitrary forms to every login step: each is refused
// with a 4xx page and a stable error code, never a 5xx or a redirect to a
// platform.
func FuzzLoginForms(f *testing.F) {
	e := fuzzServer(f)
	for _, s := range []string{
		"id=abc&login_name=alice", "id=&password=x", "login_name=" + strings.Repeat("a", 100),
		"id=abc&response=246810", "id=abc&factor=token", "captcha_id=x&captcha_answer=1", "%zz", "",
	} {
		for _, p := range []string{"/login/name", "/login/password", "/login/factor", "/login/factor/begin", "/logout"} {
			f.Add(p, s)
		}
	}
	f.Fuzz(func(t *testing.T, path, body string) {
		if _, err := url.ParseRequestURI(path); err != nil || !strings.HasPrefix(path, "/login") || strings.ContainsFunc(path, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
			return
		}
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		// A redirect may only be the mux's own path cleaning, never to a
		// platform.
		loc := rec.Header().Get("Location")
		if rec.Code >= 500 || (rec.Code >= 300 && rec.Code < 400 && (!strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//"))) {
			t.Fatalf("%s %q: status %d %s", path, body, rec.Code, rec.Header().Get("Location"))
		}
		if rec.Code == http.StatusOK && strings.HasPrefix(path, "/login/") && rec.Header().Get("Location") == "" {
			t.Fatalf("%s %q accepted without a login in progress", path, body)
		}
	})
}
