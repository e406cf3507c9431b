package apierr_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/apierr"
	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/internal/httpx"
)

// TestWrite: each typed error is answered with its row's status and code,
// a message that never shows a fault's internals, and Retry-After where a
// retry can succeed.
func TestWrite(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		err        error
		status     int
		code       string
		message    string
		retryAfter string
	}{
		{"wrong answer, wrapped", fmt.Errorf("token H1: %w", authn.ErrWrongAnswer), 401, "wrong_answer", "the answer is not correct", ""},
		{"lock that ends", &authn.LockedError{Factor: "otp", Until: now.Add(90*time.Second + time.Millisecond)}, 423, "locked",
			"otp is locked after too many failures until 2026-05-01T10:01:30Z", "91"},
		{"lock for the desk", fmt.Errorf("x: %w", &authn.LockedError{Factor: "sms"}), 423, "locked",
			"sms is locked after too many failures; ask the bank to unlock it", ""},
		{"locked sentinel", authn.ErrLocked, 423, "locked", authn.ErrLocked.Error(), ""},
		{"unavailable hides the HSM", fmt.Errorf("%w: C_Sign: CKR_DEVICE_REMOVED", authn.ErrUnavailable), 503, "unavailable", apierr.Unavailable.Message, "1"},
		{"unknown fault hides itself", errors.New("pq: relation otp_tokens does not exist"), 503, "unavailable", apierr.Unavailable.Message, "1"},
		{"replay", authn.ErrReplay, 409, "replay", "this code was already used; wait for the next one", ""},
		{"expired", authn.ErrExpired, 410, "expired", authn.ErrExpired.Error(), ""},
		{"used", authn.ErrUsed, 409, "used", authn.ErrUsed.Error(), ""},
		{"unknown challenge", authn.ErrUnknown, 404, "unknown_challenge", authn.ErrUnknown.Error(), ""},
		{"not enrolled", authn.ErrNotEnrolled, 400, "not_enrolled", authn.ErrNotEnrolled.Error(), ""},
		{"revoked shows which", fmt.Errorf("token H1 is lost: %w", authn.ErrRevoked), 403, "revoked", "token H1 is lost: " + authn.ErrRevoked.Error(), ""},
		{"rate limited", authn.ErrRateLimited, 429, "rate_limited", authn.ErrRateLimited.Error(), ""},
		{"bad response shows what", fmt.Errorf("%w: the code must be 6 digits", authn.ErrBadResponse), 400, "bad_response",
			authn.ErrBadResponse.Error() + ": the code must be 6 digits", ""},
		{"unavailable beats locked", fmt.Errorf("%w: %w", authn.ErrUnavailable, authn.ErrLocked), 503, "unavailable", apierr.Unavailable.Message, "1"},
		{"a package's own row", apierr.Wrap(apierr.UnknownToken, errors.New("no such token H9")), 404, "unknown_token", "no such token", ""},
		{"a package's row with detail", apierr.Wrap(apierr.Ambiguous, errors.New("the customer has 2 tokens")), 400, "ambiguous", "the customer has 2 tokens", ""},
		{"wrapped row wins over authn", fmt.Errorf("x: %w", apierr.Wrap(apierr.WeakPassword, authn.ErrBadResponse)), 422, "weak_password", "x: " + authn.ErrBadResponse.Error(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			r := httptest.NewRequest("POST", "/v1/x", nil)
			r = r.WithContext(httpx.WithRequestID(r.Context(), "req-12345678"))
			apierr.Write(w, r, now, tc.err)
			var body struct{ Error httpx.Error }
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("not the JSON error shape: %v %q", err, w.Body)
			}
			if w.Code != tc.status || body.Error.Code != tc.code || body.Error.Message != tc.message || body.Error.RequestID != "req-12345678" {
				t.Errorf("got %d %+v, want %d %q %q", w.Code, body.Error, tc.status, tc.code, tc.message)
			}
			if got := w.Header().Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tc.retryAfter)
			}
			if c := apierr.Of(tc.err); c.Status != tc.status || c.Name != tc.code {
				t.Errorf("Of: %+v", c)
			}
		})
	}
}

// TestWriteCode: a handler's own refusal takes its row's status and code;
// an empty message is the row's.
func TestWriteCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		code       apierr.Code
		msg        string
		want       string
		retryAfter string
	}{
		{"row's message", apierr.NotFound, "", "no such API", ""},
		{"handler's message", apierr.InvalidRequest, "limit must be 1 to 100", "limit must be 1 to 100", ""},
		{"unavailable says when", apierr.Unavailable, "the CRL cannot be produced now; try again", "the CRL cannot be produced now; try again", "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			apierr.WriteCode(w, httptest.NewRequest("GET", "/", nil), tc.code, tc.msg)
			var body struct{ Error httpx.Error }
			json.Unmarshal(w.Body.Bytes(), &body)
			if w.Code != tc.code.Status || body.Error.Code != tc.code.Name || body.Error.Message != tc.want || w.Header().Get("Retry-After") != tc.retryAfter {
				t.Errorf("got %d %+v %q", w.Code, body.Error, w.Header().Get("Retry-After"))
			}
			if w.Header().Get("Content-Type") != "application/json; charset=utf-8" || w.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("headers %v", w.Header())
			}
		})
	}
}

// TestCodesAreUnique: a name means one status and one row.
func TestCodesAreUnique(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, c := range apierr.Codes() {
		if seen[c.Name] || c.Name == "" || c.Message == "" || http.StatusText(c.Status) == "" {
			t.Errorf("row %+v: duplicate or incomplete", c)
		}
		seen[c.Name] = true
	}
}
