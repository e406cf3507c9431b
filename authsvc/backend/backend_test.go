package backend

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	coreSecret = "core-banking-secret-0123456789abcdef"
	deskSecret = "call-centre-desk-secret-0123456789abcdef"
)

// registry has "core" (secret from a file, both OTP scopes) and "desk"
// (secret by its SHA-256, verify only).
func registry(t *testing.T) *Registry {
	t.Helper()
	f := filepath.Join(t.TempDir(), "core-secret")
	if err := os.WriteFile(f, []byte(coreSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := New([]ClientConfig{
		{ID: "core", SecretSource: "file:" + f, Scopes: []string{ScopeOTPVerify, ScopeOTPResync}},
		{ID: "desk", SecretSHA256: HashSecret([]byte(deskSecret)), Scopes: []string{ScopeOTPVerify}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

func TestRequire(t *testing.T) {
	t.Parallel()
	r := registry(t)
	var reached string
	next := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		c, _ := ClientFrom(req.Context())
		reached = c.ID
		w.WriteHeader(http.StatusNoContent)
	})
	cases := []struct {
		name   string
		scope  string
		auth   string
		status int
		code   string
		msg    string // a substring of the message
	}{
		{"anonymous", ScopeOTPVerify, "", 401, "unauthorized", "HTTP Basic"},
		{"bearer token", ScopeOTPVerify, "Bearer eyJhbGciOi.x.y", 401, "unauthorized", "not Bearer credentials"},
		{"basic not base64", ScopeOTPVerify, "Basic %%%", 401, "invalid_client", "wrong secret"},
		{"basic without colon", ScopeOTPVerify, "Basic " + base64.StdEncoding.EncodeToString([]byte("core")), 401, "invalid_client", ""},
		{"unknown client", ScopeOTPVerify, basic("nobody", coreSecret), 401, "invalid_client", ""},
		{"wrong secret", ScopeOTPVerify, basic("core", deskSecret), 401, "invalid_client", ""},
		{"empty secret", ScopeOTPVerify, basic("core", ""), 401, "invalid_client", ""},
		{"secret with newline", ScopeOTPVerify, basic("core", coreSecret+"\n"), 401, "invalid_client", ""},
		{"client without the scope", ScopeOTPResync, basic("desk", deskSecret), 403, "insufficient_scope", `"desk"`},
		{"client from file", ScopeOTPResync, basic("core", coreSecret), 204, "", ""},
		{"client by hash", ScopeOTPVerify, basic("desk", deskSecret), 204, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reached = ""
			req := httptest.NewRequest("POST", "/v1/otp/verify", strings.NewReader("{}"))
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			r.Require(tc.scope, next).ServeHTTP(w, req)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.status == 204 {
				if reached == "" {
					t.Fatal("the handler was not reached")
				}
				return
			}
			if reached != "" {
				t.Fatalf("the handler was reached by %q", reached)
			}
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
				t.Fatalf("not the JSON error shape: %q", w.Body)
			}
			if e.Error.Code != tc.code || !strings.Contains(e.Error.Message, tc.msg) {
				t.Fatalf("error %+v, want code %s with %q", e.Error, tc.code, tc.msg)
			}
			wa := w.Header().Get("WWW-Authenticate")
			if (tc.status == 401) != strings.HasPrefix(wa, `Basic realm="egate back-end API"`) {
				t.Fatalf("WWW-Authenticate %q with status %d", wa, tc.status)
			}
			for _, s := range []string{coreSecret, deskSecret, "eyJhbGciOi"} {
				if strings.Contains(w.Body.String(), s) {
					t.Fatalf("the answer repeats a credential: %s", w.Body)
				}
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("tooshort\n"), 0o600)
	open := filepath.Join(dir, "open")
	os.WriteFile(open, []byte(coreSecret+"\n"), 0o644)
	h := HashSecret([]byte(coreSecret))
	v := []string{ScopeOTPVerify}
	cases := []struct {
		name    string
		clients []ClientConfig
		want    []string
	}{
		{"no id", []ClientConfig{{SecretSHA256: h, Scopes: v}}, []string{"backend-clients[0]", "id must be"}},
		{"id with colon", []ClientConfig{{ID: "a:b", SecretSHA256: h, Scopes: v}}, []string{"id must be"}},
		{"duplicate id", []ClientConfig{{ID: "a", SecretSHA256: h, Scopes: v}, {ID: "a", SecretSHA256: h, Scopes: v}}, []string{"backend-clients[1] (a)", "duplicate"}},
		{"no secret", []ClientConfig{{ID: "a", Scopes: v}}, []string{"exactly one of secret-sha256", "secret-source"}},
		{"both secrets", []ClientConfig{{ID: "a", SecretSHA256: h, SecretSource: "env:X", Scopes: v}}, []string{"exactly one of"}},
		{"hash not hex", []ClientConfig{{ID: "a", SecretSHA256: strings.Repeat("z", 64), Scopes: v}}, []string{"secret-sha256 must be 64 hex digits"}},
		{"hash too short", []ClientConfig{{ID: "a", SecretSHA256: h[:40], Scopes: v}}, []string{"64 hex digits"}},
		{"inline secret", []ClientConfig{{ID: "a", SecretSource: coreSecret, Scopes: v}}, []string{"secret-source", "unknown kind"}},
		{"no scopes", []ClientConfig{{ID: "a", SecretSHA256: h}}, []string{"no scopes", "otp:verify"}},
		{"unknown scope", []ClientConfig{{ID: "a", SecretSHA256: h, Scopes: []string{"otp:*"}}}, []string{`unknown scope "otp:*"`}},
		{"scope twice", []ClientConfig{{ID: "a", SecretSHA256: h, Scopes: []string{ScopeOTPVerify, ScopeOTPVerify}}}, []string{"twice"}},
		{"secret file missing", []ClientConfig{{ID: "a", SecretSource: "file:" + filepath.Join(dir, "none"), Scopes: v}}, []string{"backend-clients[0] (a)", "cannot open"}},
		{"secret file readable by others", []ClientConfig{{ID: "a", SecretSource: "file:" + open, Scopes: v}}, []string{"backend-clients[0] (a)", open}},
		{"secret variable unset", []ClientConfig{{ID: "a", SecretSource: "env:EGATE_TEST_NO_SUCH_BACKEND_SECRET", Scopes: v}}, []string{"EGATE_TEST_NO_SUCH_BACKEND_SECRET"}},
		{"secret too short", []ClientConfig{{ID: "a", SecretSource: "file:" + short, Scopes: v}}, []string{"shorter than 32", "openssl rand"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(tc.clients)
			if err == nil {
				t.Fatalf("accepted: %v", r.IDs())
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("%v is not ErrConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not say %q", err, w)
				}
			}
			for _, s := range []string{coreSecret, "tooshort"} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error %q holds the secret", err)
				}
			}
		})
	}
}

func TestEmptyRegistryRefusesEverybody(t *testing.T) {
	t.Parallel()
	r, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	// A client with an all-zero hash must not be made up for an unknown id.
	req := httptest.NewRequest("POST", "/", nil)
	req.Header.Set("Authorization", basic("core", ""))
	if _, err := r.Authenticate(req); !errors.Is(err, ErrInvalidClient) {
		t.Fatalf("Authenticate: %v", err)
	}
}
