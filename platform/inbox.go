package platform

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// InboxAlert is one entry of the messenger's alert inbox.
type InboxAlert struct {
	ID   string    `json:"id"`
	Kind string    `json:"kind"`
	At   time.Time `json:"at"`
	Body struct {
		Client string `json:"client"`
		Device string `json:"device"`
		IP     string `json:"ip"`
		Level  int    `json:"level"`
		SSO    bool   `json:"sso"`
		StepUp bool   `json:"step_up"`
		// login_failed and login_locked
		Factor string    `json:"factor"`
		Until  time.Time `json:"until"`
	} `json:"body"`
}

var inboxPage = template.Must(template.New("inbox").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Messenger — alerts</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}li{margin:.5em 0}</style></head>
<body><h1>Alerts from your bank</h1>
{{if .}}<ul id="alerts">{{range .}}<li class="alert" data-kind="{{.Kind}}">{{if eq .Kind "login"}}Login to <b>{{.Body.Client}}</b> at {{.At.Format "2006-01-02 15:04:05"}} from {{.Body.IP}}
({{if .Body.SSO}}single sign-on{{else if .Body.StepUp}}a stronger tool in your signed-in session{{else}}password{{end}}, level {{.Body.Level}}){{else if eq .Kind "login_failed"}}<b>Failed sign-in</b>{{with .Body.Client}} to <b>{{.}}</b>{{end}} at {{.At.Format "2006-01-02 15:04:05"}} from {{.Body.IP}}: wrong {{.Body.Factor}}
(further failures within the hour are not listed again){{else if eq .Kind "login_locked"}}<b>Your {{.Body.Factor}} is locked</b> after too many failed sign-ins (last at {{.At.Format "2006-01-02 15:04:05"}} from {{.Body.IP}});
{{if .Body.Until.IsZero}}only the bank's service desk can unlock it{{else}}it unlocks at {{.Body.Until.Format "2006-01-02 15:04"}} UTC{{end}}{{else}}{{.Kind}} at {{.At.Format "2006-01-02 15:04:05"}}{{end}}</li>{{end}}</ul>
<p>Not you? Call the bank at once.</p>{{else}}<p id="empty">No alerts.</p>{{end}}
<p><a href="/">Back</a></p></body></html>`))

// inbox shows the customer's alerts, read from the passport with the
// session's access token; an expired token sends the customer through the
// passport again (single sign-on makes that silent).
func (s *Site) inbox(w http.ResponseWriter, r *http.Request) {
	ss, ok := s.Session(r)
	if !ok || ss.AccessToken == "" {
		http.Redirect(w, r, "/login", http.StatusFound)
		return
	}
	req, _ := http.NewRequestWithContext(r.Context(), "GET", strings.TrimRight(s.cfg.Issuer, "/")+"/api/v1/alerts?limit=50", nil)
	req.Header.Set("Authorization", "Bearer "+ss.AccessToken)
	resp, err := s.client.Do(req)
	if err != nil {
		http.Error(w, "the bank's alert service is unreachable; try again", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		http.Redirect(w, r, "/login", http.StatusFound)
		return
	}
	if resp.StatusCode != http.StatusOK {
		http.Error(w, fmt.Sprintf("the bank's alert service answered %d", resp.StatusCode), http.StatusBadGateway)
		return
	}
	var body struct {
		Alerts []InboxAlert `json:"alerts"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, resp.Body, 1<<20)).Decode(&body); err != nil {
		http.Error(w, "the bank's alert service answered nonsense", http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	inboxPage.Execute(w, body.Alerts)
}
