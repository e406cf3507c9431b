package authsvc

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestChangePasswordAPI(t *testing.T) {
	e, b := loggedIn(t)
	a := newAuthz("ebank", ebankRedirect)
	tk := e.exchange(a, b.code(a))
	call := func(tok, body string) (int, string) {
		req, _ := http.NewRequest("POST", e.ts.URL+"/api/v1/password", strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		req.Header.Set("Content-Type", "application/json")
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		if r.StatusCode == http.StatusNoContent {
			return r.StatusCode, ""
		}
		var m struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil || m.Error.Message == "" {
			t.Fatalf("not the JSON error shape: %v", err)
		}
		return r.StatusCode, m.Error.Code
	}
	for _, tc := range []struct {
		name   string
		tok    string
		body   string
		status int
		code   string
	}{
		{"no token", "", `{}`, 401, "unauthorized"},
		{"bad token", "x.y.z", `{"old_password":"a","new_password":"b"}`, 401, "invalid_token"},
		{"malformed body", tk.access, `{"old_password":`, 400, "invalid_request"},
		{"unknown field", tk.access, `{"old_password":"a","new_password":"b","x":1}`, 400, "invalid_request"},
		{"wrong old", tk.access, `{"old_password":"Nope-Nope-12","new_password":"Green-Fox-93"}`, 401, "bad_credentials"},
		{"weak new", tk.access, `{"old_password":"` + testPassword + `","new_password":"alice12345"}`, 422, "weak_password"},
		{"changed", tk.access, `{"old_password":"` + testPassword + `","new_password":"Green-Fox-93"}`, 204, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if st, code := call(tc.tok, tc.body); st != tc.status || code != tc.code {
				t.Fatalf("got %d %q, want %d %q", st, code, tc.status, tc.code)
			}
		})
	}
	// The new password logs in.
	b2 := e.browser()
	a2 := newAuthz("ebank", ebankRedirect)
	a2.codeFrom(t, b2.passwordLogin(a2, "alice", "Green-Fox-93"))
	if st, _ := http.Get(e.ts.URL + "/api/v1/nothing"); st.StatusCode != 404 {
		t.Fatalf("unknown API: %d", st.StatusCode)
	}
}
