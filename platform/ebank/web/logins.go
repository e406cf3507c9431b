package web

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/egate-bank/egate/internal/i18n"
	"github.com/egate-bank/egate/internal/money"
)

// alertBody is what the pages read of an alert's body (authsvc/alerts:
// Login, LoginFailed, Locked, Balance, TxRisk, Tool).
type alertBody struct {
	Time    time.Time `json:"time"`
	Client  string    `json:"client"`
	Device  string    `json:"device"`
	IP      string    `json:"ip"`
	Level   int       `json:"level"`
	SSO     bool      `json:"sso"`
	StepUp  bool      `json:"step_up"`
	Factor  string    `json:"factor"`
	Until   time.Time `json:"until"`
	Account string    `json:"account"`
	Amount  int64     `json:"amount"`
	Balance int64     `json:"balance"`
	Event   string    `json:"event"`
	Tool    string    `json:"tool"`
	Ref     string    `json:"ref"`
	Text    string    `json:"text"`
}

// loginRow is one line of the login history.
type loginRow struct {
	Kind, When, Platform, How, Device, Place string
	Level                                    int
	Failed                                   bool
}

// alertRow is one line of the alerts page.
type alertRow struct {
	Kind, When, Text string
	Money            bool // a balance change
	Out              bool // money out
}

// deviceName says which browser on which system a User-Agent is: "Chrome
// on Windows"; the raw string when it says neither.
func deviceName(p i18n.Printer, ua string) string {
	if ua == "" {
		return p.T("dev.unknown")
	}
	browser := ""
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"HeadlessChrome/", "Headless Chrome"}, {"Chrome/", "Chrome"}, {"Firefox/", "Firefox"},
		{"Safari/", "Safari"}, {"curl/", "curl"}, {"Go-http-client/", "Go"}, {"egate", "egate"},
	} {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	system := ""
	for _, s := range []struct{ token, name string }{
		{"Windows", "Windows"}, {"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Android", "Android"}, {"Mac OS X", "macOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, s.token) {
			system = s.name
			break
		}
	}
	switch {
	case browser != "" && system != "":
		return p.T("dev.on", browser, system)
	case browser != "":
		return browser
	case system != "":
		return system
	}
	if len(ua) > 60 {
		ua = ua[:60] + "…"
	}
	return ua
}

// place says where an address is, as far as the bank can tell without a
// location database: this computer, a private network, or the address.
func place(p i18n.Printer, ip string) string {
	a := net.ParseIP(ip)
	switch {
	case a == nil:
		return p.T("dev.unknown")
	case a.IsLoopback():
		return p.T("place.local", ip)
	case a.IsPrivate() || a.IsLinkLocalUnicast():
		return p.T("place.private", ip)
	}
	return ip
}

func (p *Pages) alertsOf(w http.ResponseWriter, r *http.Request, v *view) ([]Alert, bool) {
	if p.Passport == nil || v.C.Token == "" {
		http.Redirect(w, r, "/login", http.StatusFound)
		return nil, false
	}
	list, err := p.Passport.Alerts(r.Context(), v.C.Token, 100)
	if pe, ok := err.(*PassportError); ok && pe.Status == http.StatusUnauthorized {
		http.Redirect(w, r, "/login", http.StatusFound) // the access token expired: single sign-on renews it
		return nil, false
	}
	if err != nil {
		p.fail(w, r, v, err)
		return nil, false
	}
	return list, true
}

// logins: GET /logins, the login history: each login to any of the bank's
// platforms, failed sign-ins and locks, with the device and the place.
func (p *Pages) logins(w http.ResponseWriter, r *http.Request, v *view) {
	list, ok := p.alertsOf(w, r, v)
	if !ok {
		return
	}
	rows := []loginRow{}
	for _, a := range list {
		if !strings.HasPrefix(a.Kind, "login") {
			continue
		}
		var b alertBody
		json.Unmarshal(a.Body, &b)
		row := loginRow{Kind: a.Kind, When: v.P.Time(a.At), Platform: v.P.T("platform." + b.Client), Level: b.Level,
			Device: deviceName(v.P, b.Device), Place: place(v.P, b.IP)}
		if b.Client == "" || !strings.Contains("ebank mall messenger", b.Client) {
			row.Platform = b.Client
		}
		switch a.Kind {
		case "login":
			row.How = v.P.T("inbox.how_pwd")
			if b.SSO {
				row.How = v.P.T("inbox.how_sso")
			} else if b.StepUp {
				row.How = v.P.T("inbox.how_stepup")
			}
		case "login_failed":
			row.Failed, row.How = true, v.P.T("logins.failed", toolName(v.P, b.Factor))
		case "login_locked":
			row.Failed, row.How = true, v.P.T("logins.locked", toolName(v.P, b.Factor))
		}
		rows = append(rows, row)
	}
	v.Title, v.Data = v.P.T("inbox.logins"), rows
	p.render(w, http.StatusOK, "logins", v)
}

// alerts: GET /alerts, the customer's alerts: balance changes, tools
// bound or reported lost, payments stopped or stepped up, logins.
func (p *Pages) alerts(w http.ResponseWriter, r *http.Request, v *view) {
	list, ok := p.alertsOf(w, r, v)
	if !ok {
		return
	}
	rows := []alertRow{}
	for _, a := range list {
		var b alertBody
		json.Unmarshal(a.Body, &b)
		row := alertRow{Kind: a.Kind, When: v.P.Time(a.At)}
		switch a.Kind {
		case "balance":
			row.Money, row.Out = true, b.Amount < 0
			key := "alert.in"
			if row.Out {
				key = "alert.out"
			}
			row.Text = v.P.T(key, b.Account, money.Yuan(abs(b.Amount)), money.Yuan(b.Balance))
		case "tool":
			row.Text = v.P.T("alert.tool_"+b.Event, toolName(v.P, b.Tool), b.Ref)
		case "tx_risk":
			row.Text = v.P.T("alert.tx_"+b.Event, v.P.TxText(b.Text))
		case "login":
			row.Text = v.P.T("alert.login", v.P.T("platform."+b.Client), deviceName(v.P, b.Device), place(v.P, b.IP))
		case "login_failed", "login_locked":
			row.Text = v.P.T("alert."+a.Kind, toolName(v.P, b.Factor), place(v.P, b.IP))
		default:
			continue
		}
		rows = append(rows, row)
	}
	v.Title, v.Data = v.P.T("alert.title"), rows
	p.render(w, http.StatusOK, "alerts", v)
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// toolName names a tool (or the password) in p's language; a tool the
// catalogue does not know by its own name.
func toolName(p i18n.Printer, name string) string {
	if i18n.Has("tool." + name) {
		return p.T("tool." + name)
	}
	return name
}
