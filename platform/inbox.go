package platform

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/egate-bank/egate/internal/i18n"
	"github.com/egate-bank/egate/internal/money"
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
		// balance
		Account     string `json:"account"`
		Amount      int64  `json:"amount"`
		Balance     int64  `json:"balance"`
		Description string `json:"description"`
		// tx_risk
		Event   string `json:"event"`
		Text    string `json:"text"`
		Message string `json:"message"`
	} `json:"body"`
}

var inboxPage = template.Must(template.New("inbox").Parse(`<!doctype html>
<html lang="{{.P.HTMLLang}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{{.Title}}</title>
<style>body{font-family:system-ui,"Noto Sans CJK SC",sans-serif;max-width:44em;margin:2em auto;color:#1a1a1a}li{margin:.5em 0}:focus-visible{outline:3px solid #e08a00}</style></head>
<body><p><a id="lang" href="{{.LangURL}}" lang="{{.LangCode}}" hreflang="{{.LangCode}}">{{.LangName}}</a></p><h1>{{.Title}}</h1>
{{if .Rows}}<ul id="alerts">{{range .Rows}}<li class="alert" data-kind="{{.Kind}}">{{.Text}}</li>{{end}}</ul>
<p>{{.P.T "inbox.not_you"}}</p>{{else}}<p id="empty">{{.P.T "inbox.empty"}}</p>{{end}}
<p><a href="/">{{.P.T "inbox.back"}}</a></p></body></html>`))

type inboxRow struct {
	Kind string
	Text template.HTML
}

// InboxText is one alert as a sentence in p's language (the messenger's
// alert conversation shows them too).
func InboxText(p i18n.Printer, a InboxAlert) template.HTML { return inboxText(p, a) }

// inboxText is one alert as a sentence in p's language; the values are
// escaped, the catalogue's markup is kept.
func inboxText(p i18n.Printer, a InboxAlert) template.HTML {
	e := template.HTMLEscapeString
	at, b := e(p.Time(a.At)), a.Body
	where := e(b.IP)
	if b.Device != "" {
		where += " · " + e(b.Device)
	}
	switch a.Kind {
	case "login":
		how := p.T("inbox.how_pwd")
		if b.SSO {
			how = p.T("inbox.how_sso")
		} else if b.StepUp {
			how = p.T("inbox.how_stepup")
		}
		return template.HTML(p.T("inbox.login", e(b.Client), at, where, e(how), b.Level))
	case "login_failed":
		client := ""
		if b.Client != "" {
			client = p.T("inbox.to", e(b.Client))
		}
		return template.HTML(p.T("inbox.failed", client, at, where, e(b.Factor)))
	case "login_locked":
		until := p.T("inbox.desk_only")
		if !b.Until.IsZero() {
			until = p.T("inbox.unlocks_at", e(p.Time(b.Until)))
		}
		return template.HTML(p.T("inbox.locked", e(b.Factor), at, where, until))
	case "balance":
		key := "inbox.balance_in"
		if b.Amount < 0 {
			key = "inbox.balance_out"
		}
		return template.HTML(p.T(key, at, e(b.Account), e(money.Yuan(abs(b.Amount))), e(money.Yuan(b.Balance))))
	case "tx_risk":
		k := "inbox.risk." + b.Event
		if !i18n.Has(k) {
			k = "inbox.risk.other"
		}
		return template.HTML(p.T(k, at, e(money.Yuan(b.Amount)), e(b.Text)))
	}
	return template.HTML(e(a.Kind) + " " + at)
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// ErrAlertsLogin says the session's access token is missing or expired:
// send the customer through the passport again.
var ErrAlertsLogin = errors.New("log in again to read the alerts")

// Alerts reads the customer's latest alerts from the passport with the
// session's access token.
func (s *Site) Alerts(r *http.Request) ([]InboxAlert, error) {
	ss, ok := s.Session(r)
	if !ok || ss.AccessToken == "" {
		return nil, ErrAlertsLogin
	}
	req, _ := http.NewRequestWithContext(r.Context(), "GET", strings.TrimRight(s.cfg.Issuer, "/")+"/api/v1/alerts?limit=50", nil)
	req.Header.Set("Authorization", "Bearer "+ss.AccessToken)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the bank's alert service is unreachable: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, ErrAlertsLogin
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the bank's alert service answered %d", resp.StatusCode)
	}
	var body struct {
		Alerts []InboxAlert `json:"alerts"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return nil, fmt.Errorf("the bank's alert service answered nonsense: %w", err)
	}
	return body.Alerts, nil
}

// inbox shows the customer's alerts, read from the passport with the
// session's access token; an expired token sends the customer through the
// passport again (single sign-on makes that silent).
func (s *Site) inbox(w http.ResponseWriter, r *http.Request) {
	alerts, err := s.Alerts(r)
	if errors.Is(err, ErrAlertsLogin) {
		http.Redirect(w, r, "/login", http.StatusFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error()+"; try again", http.StatusBadGateway)
		return
	}
	i18n.Remember(w, r)
	p := i18n.For(r, nil)
	code, name := p.Other()
	title := p.T("inbox.title")
	var rows []inboxRow
	for _, a := range alerts {
		rows = append(rows, inboxRow{Kind: a.Kind, Text: inboxText(p, a)})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	inboxPage.Execute(w, map[string]any{"P": p, "Title": title, "Rows": rows, "LangCode": code, "LangName": name, "LangURL": r.URL.Path + "?lang=" + code})
}
