package authsvc

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/internal/httpx"
)

// Device faults (an HSM that cannot be reached, a module error) are the
// bank's, never the customer's: pages and APIs answer 503 "try again" with
// a stable code and nothing more, and the detail (module path, token label,
// PKCS#11 return value) goes to the log under the request id the answer
// carries in X-Request-Id.

// logFactorFault logs why fac could not check an answer.
func (s *Server) logFactorFault(r *http.Request, fac authn.Factor, err error) {
	s.log.LogAttrs(r.Context(), slog.LevelWarn, "factor check failed: tool unavailable",
		slog.Any("request_id", httpx.RequestID(r.Context())), slog.Any("factor", fac.Name()), slog.Any("err", err.Error()))
}

// faultWriter holds back a 5xx answer of the OIDC provider, whose body
// carries the error's text (for a signing failure: the HSM's module path,
// token label and return value), so that hideFaults can log it and
// answer in its own words. Other answers pass through.
type faultWriter struct {
	http.ResponseWriter
	status int
	held   bytes.Buffer
}

func (w *faultWriter) WriteHeader(status int) {
	if w.status != 0 {
		return
	}
	w.status = status
	if status < 500 {
		w.ResponseWriter.WriteHeader(status)
	}
}

func (w *faultWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.status >= 500 {
		return w.held.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

// finish answers a held 5xx: the provider's text goes to the log, the
// client gets 503 temporarily_unavailable (RFC 6749 §4.1.2.1's code; a
// client retries).
func (s *Server) finish(w *faultWriter, r *http.Request) {
	if w.status < 500 {
		return
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(w.held.Bytes(), &body) != nil || body.Description == "" {
		body.Description = w.held.String()
	}
	s.log.LogAttrs(r.Context(), slog.LevelError, "OIDC provider failed",
		slog.Any("request_id", httpx.RequestID(r.Context())), slog.Any("status", w.status),
		slog.Any("error", body.Error), slog.Any("err", body.Description))
	h := w.ResponseWriter.Header()
	h.Del("Content-Length")
	h.Set("Retry-After", "1")
	msg := "the passport cannot answer just now; try again in a moment"
	if id := httpx.RequestID(r.Context()); id != "" {
		msg += " (request id " + id + ")"
	}
	tokenError(w.ResponseWriter, http.StatusServiceUnavailable, "temporarily_unavailable", msg)
}

// hideFaults runs next (the OIDC provider) with its 5xx answers replaced
// by finish.
func (s *Server) hideFaults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fw := &faultWriter{ResponseWriter: w}
		next.ServeHTTP(fw, r)
		s.finish(fw, r)
	})
}
