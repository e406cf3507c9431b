package authsvc

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestChangePasswordAPI(t *testing.T) {
	e, b := loggedIn(t)
	a := newAuthz("ebank", ebankRedirect)
	tk := e.exchange(a, b.code(a))
	var last http.Header
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
		last = r.Header
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
	// Wrong current passwords lock the password: 423 locked (the one
	// table's status for a lock, as the OTP API answers it), with
	// Retry-After until the lock ends at midnight.
	locked := false
	for range e.srv.Passport().Config().MaxFailures + 1 {
		st, code := call(tk.access, `{"old_password":"Nope-Nope-12","new_password":"Green-Fox-94"}`)
		if code == "locked" {
			if ra, err := strconv.Atoi(last.Get("Retry-After")); st != http.StatusLocked || err != nil || ra < 1 || ra > 86400 {
				t.Fatalf("locked password: %d, Retry-After %q", st, last.Get("Retry-After"))
			}
			locked = true
			break
		}
		if st != 401 || code != "bad_credentials" {
			t.Fatalf("wrong current password: %d %q", st, code)
		}
	}
	if !locked {
		t.Fatal("the password never locked")
	}
	// The new password logs in (after the service desk unlocks it).
	if err := e.srv.Passport().Unlock(t.Context(), e.pid); err != nil {
		t.Fatal(err)
	}
	b2 := e.browser()
	a2 := newAuthz("ebank", ebankRedirect)
	a2.codeFrom(t, b2.passwordLogin(a2, "alice", "Green-Fox-93"))
	if st, _ := http.Get(e.ts.URL + "/api/v1/nothing"); st.StatusCode != 404 {
		t.Fatalf("unknown API: %d", st.StatusCode)
	}
}
