package web

import (
	"net/http"
	"net/url"
	"strings"
)

// The enrolment part of ebank's self-service: the customer enrols a
// U-shield or a PIV card by themselves. ebank only shows the way; the
// enrolment itself happens at the passport (its /account/enrol page, with
// the bank's security helper on the customer's computer: the key made on
// the token, a PIV card's attestation checked, the bank CA's certificate
// written back), which needs a passport session at level 2 and links back
// here when it is done. The enrolled token is then on the customer's tools
// list, where it can be reported lost.

// ClientID is ebank's client at the passport.
const ClientID = "ebank"

// enrolTool is one tool the page offers.
type enrolTool struct {
	Name  string // the passport's factor name
	Level int
	Link  string // the passport's enrolment page for it
}

// enrolTools are the tools a customer enrols through the helper, in level
// order.
var enrolTools = []enrolTool{{Name: "ushield", Level: 4}, {Name: "piv", Level: 4}, {Name: "ushield2", Level: 5}}

type enrolData struct {
	Tools []enrolTool
	Done  string // the tool just enrolled (the passport's way back)
}

// enrolPage: GET /enrol[?done=<tool>].
func (p *Pages) enrolPage(w http.ResponseWriter, r *http.Request, v *view) {
	d := enrolData{}
	if done := r.URL.Query().Get("done"); done != "" {
		for _, t := range enrolTools {
			if t.Name == done {
				d.Done = done
				v.Notice = v.P.T("enrol.done", v.P.T("tool."+done))
			}
		}
	}
	if p.PassportURL != "" {
		for _, t := range enrolTools {
			// The passport links back to this page on ebank's registered
			// origin (client and a local path: no open redirect).
			q := url.Values{"tool": {t.Name}, "client": {ClientID}, "return": {"/enrol?" + url.Values{"done": {t.Name}}.Encode()}}
			t.Link = strings.TrimRight(p.PassportURL, "/") + "/account/enrol?" + q.Encode()
			d.Tools = append(d.Tools, t)
		}
	}
	v.Title, v.Data = v.P.T("enrol.title"), d
	p.render(w, http.StatusOK, "enrol", v)
}
