package platform

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"strings"

	"github.com/egate-bank/egate/internal/i18n"
)

// SelfServiceLevel is the level ebank's self-service asks for: a session
// below it is sent through the passport again (step-up) first.
const SelfServiceLevel = 2

var settingsPage = template.Must(template.New("settings").Parse(`<!doctype html>
<html lang="{{.P.HTMLLang}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{{.P.T "self.title"}}</title>
<style>body{font-family:system-ui,"Noto Sans CJK SC",sans-serif;max-width:40em;margin:2em auto;color:#1a1a1a}label{display:block;margin:.7rem 0 .2rem;font-weight:600}
input{padding:.45rem;min-width:16rem}.err{color:#8a0000;background:#fde8e8;padding:.6rem}.note{background:#e8f4e8;padding:.6rem}:focus-visible{outline:3px solid #e08a00}</style></head>
<body><p><a id="lang" href="/settings?lang={{.LangCode}}" lang="{{.LangCode}}" hreflang="{{.LangCode}}">{{.LangName}}</a> · <a href="/">{{.P.T "nav.home"}}</a></p>
<h1>{{.P.T "self.title"}}</h1>
{{if .Error}}<p class="err" id="error" role="alert" data-code="{{.Code}}">{{.Error}}</p>{{end}}
{{if .Notice}}<p class="note" id="notice" role="status">{{.Notice}}</p>{{end}}
{{if .StepUp}}<p id="stepup">{{.P.T "self.stepup" .Need}} <a id="raise" href="/login?level={{.Need}}">{{.P.T "home.raise" .Need}}</a></p>
{{else}}<h2>{{.P.T "self.password"}}</h2>
<form method="post" action="/settings/password">
<label for="old_password">{{.P.T "self.old"}}</label><input type="password" id="old_password" name="old_password" autocomplete="current-password" required maxlength="256">
<label for="new_password">{{.P.T "self.new"}}</label><input type="password" id="new_password" name="new_password" autocomplete="new-password" required maxlength="256">
<p><button id="change">{{.P.T "self.change"}}</button></p>
</form>
<h2>{{.P.T "self.more"}}</h2><p>{{.P.T "self.more_text"}}</p>{{end}}
</body></html>`))

// settings: GET /settings, ebank's self-service, at SelfServiceLevel.
func (s *Site) settings(w http.ResponseWriter, r *http.Request) {
	s.showSettings(w, r, http.StatusOK, "", "", "")
}

func (s *Site) showSettings(w http.ResponseWriter, r *http.Request, status int, errKey, code, notice string) {
	ss, ok := s.Session(r)
	if !ok {
		http.Redirect(w, r, "/login", http.StatusFound)
		return
	}
	i18n.Remember(w, r)
	p := i18n.For(r, nil)
	lc, ln := p.Other()
	d := map[string]any{"P": p, "LangCode": lc, "LangName": ln, "Need": SelfServiceLevel, "Code": code}
	if ss.Level < SelfServiceLevel || ss.AccessToken == "" {
		d["StepUp"] = true
		if r.Method == http.MethodPost {
			status = http.StatusForbidden
		}
	}
	if errKey != "" {
		d["Error"] = p.T(errKey)
	}
	if notice != "" {
		d["Notice"] = p.T(notice)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	settingsPage.Execute(w, d)
}

// changePassword: POST /settings/password, through the passport's
// POST /api/v1/password with the session's access token.
func (s *Site) changePassword(w http.ResponseWriter, r *http.Request) {
	ss, ok := s.Session(r)
	if !ok {
		http.Redirect(w, r, "/login", http.StatusFound)
		return
	}
	if ss.Level < SelfServiceLevel || ss.AccessToken == "" {
		s.showSettings(w, r, http.StatusForbidden, "self.need_level", "step_up_required", "")
		return
	}
	b, _ := json.Marshal(map[string]string{"old_password": r.PostFormValue("old_password"), "new_password": r.PostFormValue("new_password")})
	req, _ := http.NewRequestWithContext(r.Context(), "POST", strings.TrimRight(s.cfg.Issuer, "/")+"/api/v1/password", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+ss.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		s.showSettings(w, r, http.StatusBadGateway, "err.generic", "unavailable", "")
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		s.showSettings(w, r, http.StatusOK, "", "", "self.changed")
		return
	}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	json.NewDecoder(http.MaxBytesReader(w, resp.Body, 1<<16)).Decode(&e)
	key := map[string]string{"bad_credentials": "self.bad_old", "weak_password": "self.weak", "locked": "self.locked",
		"ip_limited": "self.ip_limited", "invalid_request": "self.invalid", "invalid_token": "self.expired"}[e.Error.Code]
	if key == "" {
		key = "err.generic"
	}
	status := resp.StatusCode
	if status == http.StatusUnauthorized && e.Error.Code == "bad_credentials" {
		status = http.StatusUnprocessableEntity
	}
	s.showSettings(w, r, status, key, e.Error.Code, "")
}
