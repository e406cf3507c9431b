// Package sms is the development SMS sink's web page: it lists the messages
// egate "sent" (stored in the database outbox by authsvc/sms.Sink), newest
// first, so a developer or a browser test can read the code. It is a
// simulator: the page shows live codes and must never face the internet.
package sms

import (
	"encoding/json"
	"html/template"
	"net/http"
	"strconv"

	authsms "github.com/egate-bank/egate/authsvc/sms"
)

var page = template.Must(template.New("p").Parse(`<!doctype html><html><head><meta charset="utf-8"><title>SMS sink</title>
<meta http-equiv="refresh" content="3"><style>body{font-family:sans-serif;max-width:40em;margin:2em auto}
.m{border:1px solid #ccc;border-radius:8px;padding:.6em;margin:.5em 0}.to{color:#666;font-size:.9em}</style></head>
<body><h1>SMS sink (development)</h1>
{{range .}}<div class="m"><div class="to">to {{.To}} at {{.SentAt.Format "15:04:05"}}</div><div class="body">{{.Body}}</div></div>
{{else}}<p>No messages yet.</p>{{end}}</body></html>`))

// Handler serves GET / (the page) and GET /messages.json (?to=PHONE&limit=N).
func Handler(sink *authsms.Sink) http.Handler {
	mux := http.NewServeMux()
	list := func(r *http.Request) ([]authsms.Sent, error) {
		limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
		if err != nil || limit <= 0 || limit > 500 {
			limit = 50
		}
		return sink.List(r.Context(), r.URL.Query().Get("to"), limit)
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		msgs, err := list(r)
		if err != nil {
			http.Error(w, "cannot read the outbox", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		page.Execute(w, msgs)
	})
	mux.HandleFunc("GET /messages.json", func(w http.ResponseWriter, r *http.Request) {
		msgs, err := list(r)
		if err != nil {
			http.Error(w, `{"error":"outbox_unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		if msgs == nil {
			msgs = []authsms.Sent{}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(msgs)
	})
	return mux
}
