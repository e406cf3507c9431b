package httpx

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkMiddleware: what the middleware adds to a request (request id,
// metrics, one access-log line in JSON) around a handler that writes a
// small body, as every egate server has it.
func BenchmarkMiddleware(b *testing.B) {
	h := Middleware(slog.New(slog.NewJSONHandler(io.Discard, nil)), NewMetrics(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"ok":true}`))
	}))
	req := httptest.NewRequest("POST", "/v1/tx/authorize", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}
