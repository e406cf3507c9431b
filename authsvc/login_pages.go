package authsvc

// The login pages' rendering: the page model, the one renderer with its
// security headers, the message and dead-end pages and their way back to
// the platform.

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"

	"github.com/egate-bank/egate/internal/i18n"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/oidcop"
)

// page is what the templates see.
type page struct {
	Base, ID, Client string
	Level            int
	Error, ErrorCode string
	LoginName        string
	ReservedMessage  string
	CaptchaID        string
	CaptchaPNG       string
	Remaining        int  // password attempts left today (the password page)
	ShowRemaining    bool // Remaining is known
	Factors          []choice
	Factor, Prompt   string
	FactorLabel      string
	Data             string // the exact text a signature tool signs
	Proof            bool   // the answer is a base64 EGP1 signature proof
	Message, Title   string
	Until            string
	Back, BackTo     string // a dead end's way back: the client's redirect URI with an OAuth error, and the client's name
	CSRF             string
	Next, NextSig    string     // the logout page: where to go after, signed
	Order            *orderView // a proof tool's signing order (orders_login.go)
	Nonce            string     // the page's script nonce (CSP); no script without it
	// The page's language (internal/i18n) and the link to the other one
	// (GET pages only), set by render from the request.
	P                  i18n.Printer
	LangCode, LangName string
	LangURL            string
}

func (s *Server) render(w http.ResponseWriter, status int, name string, p page) {
	p.Base = s.base
	p.P = i18n.In(i18n.EN, nil)
	if lw, ok := w.(*langWriter); ok {
		p.P = i18n.In(i18n.PickOr(lw.r, i18n.EN), nil)
		p.LangCode, p.LangName = p.P.Other()
		if lw.r.Method == http.MethodGet {
			q := lw.r.URL.Query()
			q.Set("lang", p.LangCode)
			p.LangURL = lw.r.URL.Path + "?" + q.Encode()
		}
	}
	// The tools speak English: their names and prompts are said again in
	// the page's language (internal/i18n).
	if p.Factor != "" {
		p.FactorLabel = p.P.Tool(p.Factor, p.FactorLabel)
	}
	p.Prompt = p.P.Page(p.P.Prompt(p.Prompt))
	p.Title, p.Message = p.P.Page(p.Title), p.P.Page(p.Message)
	if len(p.Factors) > 0 {
		fs := make([]choice, len(p.Factors))
		for i, c := range p.Factors {
			c.Label = p.P.Tool(c.Name, c.Label)
			fs[i] = c
		}
		p.Factors = fs
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	csp := "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'"
	if p.Nonce != "" {
		csp += "; script-src 'nonce-" + p.Nonce + "'; connect-src 'self'"
	}
	w.Header().Set("Content-Security-Policy", csp)
	w.WriteHeader(status)
	s.pages.ExecuteTemplate(w, name, p)
}

// printer is the language of r's page (English for a client that states
// none), as render picks it.
func (s *Server) printer(r *http.Request) i18n.Printer {
	return i18n.In(i18n.PickOr(r, i18n.EN), nil)
}

// busy is the "try again" page of a fault of the bank's (the database, the
// audit log): 503, nothing counted against the customer.
func (s *Server) busy(w http.ResponseWriter) {
	s.message(w, http.StatusServiceUnavailable, "Try again", "The service is busy. Try again in a moment.", "unavailable")
}

func (s *Server) message(w http.ResponseWriter, status int, title, msg, code string) {
	s.render(w, status, "message", page{Title: title, Message: msg, ErrorCode: code})
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func (s *Server) base64PNG(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func (s *Server) renderLocked(w http.ResponseWriter, ar *oidcop.AuthRequest, le *authn.LockedError) {
	s.render(w, http.StatusForbidden, "locked", lockedFor(ar, le))
}

// lockedFor is the locked page of the password, with the way back to the
// platform.
func lockedFor(ar *oidcop.AuthRequest, le *authn.LockedError) page {
	p := lockedPage(le)
	p.Client = ar.GetClientID()
	p.Back, p.BackTo = backURL(ar, "access_denied", "the customer's "+le.Factor+" is locked"), ar.GetClientID()
	return p
}

// backURL is a dead end's way back to the platform: the client's redirect
// URI with an OAuth error (RFC 6749 §4.1.2.1) and the request's state, which
// the platform answers with its own page. The auth request is left to
// expire.
func backURL(ar *oidcop.AuthRequest, code, desc string) string {
	u, err := url.Parse(ar.GetRedirectURI())
	if err != nil || ar.GetRedirectURI() == "" {
		return ""
	}
	q := u.Query()
	q.Set("error", code)
	q.Set("error_description", desc)
	if st := ar.GetState(); st != "" {
		q.Set("state", st)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// deadEnd is a message page with a way back to the platform (OAuth error
// access_denied).
func (s *Server) deadEnd(w http.ResponseWriter, ar *oidcop.AuthRequest, status int, title, msg, code string) {
	s.render(w, status, "message", page{Title: title, Message: msg, ErrorCode: code,
		Back: backURL(ar, "access_denied", msg), BackTo: ar.GetClientID()})
}

func lockedPage(le *authn.LockedError) page {
	p := page{Message: "Your " + le.Factor + " is locked after too many failed attempts.", ErrorCode: "locked"}
	if !le.Until.IsZero() {
		p.Until = le.Until.Format("2006-01-02 15:04 MST")
	}
	return p
}
