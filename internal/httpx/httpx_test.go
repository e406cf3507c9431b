package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMiddlewareRequestIDAndErrorShape(t *testing.T) {
	var logged strings.Builder
	log := slog.New(slog.NewJSONHandler(&logged, nil))
	h := Middleware(log, NewMetrics(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/panic":
			panic("boom")
		default:
			WriteError(w, r, http.StatusLocked, "locked", "locked until tomorrow")
		}
	}))
	tests := []struct {
		name, path, inID string
		status           int
		code             string
		keepID           bool
	}{
		{"fresh id", "/x", "", http.StatusLocked, "locked", false},
		{"kept id", "/x", "abcdef123456", http.StatusLocked, "locked", true},
		{"malformed id replaced", "/x", "bad id\nwith newline", http.StatusLocked, "locked", false},
		{"id of dots, dashes and underscores kept", "/x", "a.b_c-D9", http.StatusLocked, "locked", true},
		{"id of 64 kept", "/x", strings.Repeat("a", 64), http.StatusLocked, "locked", true},
		{"id of 65 replaced", "/x", strings.Repeat("a", 65), http.StatusLocked, "locked", false},
		{"id of 7 replaced", "/x", "abcdef1", http.StatusLocked, "locked", false},
		{"id with a letter beyond ASCII replaced", "/x", "abcdefgé", http.StatusLocked, "locked", false},
		{"id with a slash replaced", "/x", "abcd/efgh", http.StatusLocked, "locked", false},
		{"panic recovered", "/panic", "", http.StatusInternalServerError, "internal", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tc.path+"?password=hunter2", nil)
			if tc.inID != "" {
				req.Header.Set("X-Request-Id", tc.inID)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			var body struct{ Error Error }
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			id := rec.Header().Get("X-Request-Id")
			if body.Error.Code != tc.code || body.Error.RequestID != id || id == "" {
				t.Fatalf("body %+v, header id %q", body.Error, id)
			}
			if tc.keepID != (id == tc.inID) {
				t.Fatalf("id %q (incoming %q), keep=%v", id, tc.inID, tc.keepID)
			}
		})
	}
	if strings.Contains(logged.String(), "hunter2") {
		t.Fatal("the access log carries the query string")
	}
}

func TestReadiness(t *testing.T) {
	h := NewHealth()
	h.Add("db", func(context.Context) error { return nil })
	rec := httptest.NewRecorder()
	h.Ready(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 200 {
		t.Fatalf("ready with passing checks: %d", rec.Code)
	}
	var logged strings.Builder
	h.Log = slog.New(slog.NewJSONHandler(&logged, nil))
	h.Add("hsm", func(context.Context) error {
		return errors.New(`token "egate" of module "/usr/lib/softhsm/libsofthsm2.so": pkcs11: 0x32: CKR_DEVICE_REMOVED`)
	})
	rec = httptest.NewRecorder()
	h.Ready(rec, httptest.NewRequest("GET", "/readyz", nil).WithContext(WithRequestID(context.Background(), "req-12345678")))
	b, _ := io.ReadAll(rec.Body)
	var got struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	if err := json.Unmarshal(b, &got); err != nil || rec.Code != http.StatusServiceUnavailable || got.Status != "not ready" ||
		got.Checks["hsm"] != "fail" || got.Checks["db"] != "ok" || len(got.Checks) != 2 {
		t.Fatalf("ready with a failing check: %d %s", rec.Code, b)
	}
	// Which check failed, not why: the why goes to the log.
	for _, s := range []string{"libsofthsm2", "CKR_", "egate"} {
		if strings.Contains(string(b), s) {
			t.Fatalf("/readyz shows %q: %s", s, b)
		}
	}
	if !strings.Contains(logged.String(), "CKR_DEVICE_REMOVED") || !strings.Contains(logged.String(), `"request_id":"req-12345678"`) || !strings.Contains(logged.String(), `"check":"hsm"`) {
		t.Fatalf("log: %s", logged.String())
	}
}
