// Package httpx holds what every egate HTTP server shares: the one JSON error
// shape, request ids, the access log, health and readiness endpoints and the
// Prometheus metrics handler. Handlers never log secrets; the access log
// records method, path (without query), status, duration and request id only.
package httpx

import (
	"encoding/json"
	"net/http"
)

// Error is the body of every error answer:
//
//	{"error": {"code": "locked", "message": "…", "request_id": "…"}}
//
// Code is stable (clients switch on it); Message is safe to show a person and
// says what to do.
type Error struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}

// WriteError answers with status and the JSON error shape.
func WriteError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Error Error `json:"error"`
	}{Error{Code: code, Message: message, RequestID: RequestID(r.Context())}})
}

// WriteJSON answers with status and v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
