package authsvc

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/egate-bank/egate/authsvc/oidcop"
	"github.com/egate-bank/egate/authsvc/passport"
)

// Cookies.
const (
	sessionCookie = "egate_passport" // the passport (SSO) session
	flowCookie    = "egate_login"    // binds a login in progress to this browser: one cookie per request, see flowCookieName
)

// The steps of a login, in the order a customer meets them (flow.Step).
const (
	stepName     = "name"     // the login name
	stepPassword = "password" // the reserved message shown; the password (and captcha)
	stepFactor   = "factor"   // a second tool of the level the platform asked
)

// flow is the login pages' state of one auth request, kept in the
// database with the request.
type flow struct {
	Browser    string   `json:"browser"` // SHA-256 of the flow cookie
	Step       string   `json:"step"`    // stepName, stepPassword, stepFactor
	SubjectKey string   `json:"subject_key,omitempty"`
	PassportID string   `json:"pid,omitempty"` // empty for unknown names
	Reserved   string   `json:"reserved,omitempty"`
	LoginName  string   `json:"login_name,omitempty"`
	Level      int      `json:"level,omitempty"` // reached so far
	AMR        []string `json:"amr,omitempty"`
	AuthTime   int64    `json:"auth_time,omitempty"`
	Factor     string   `json:"factor,omitempty"`
	Challenge  string   `json:"challenge,omitempty"`
	Prompt     string   `json:"prompt,omitempty"`
	Data       string   `json:"data,omitempty"`     // what a signature tool signs, shown on the page
	Proof      bool     `json:"proof,omitempty"`    // the answer is a base64 EGP1 proof
	FromSSO    bool     `json:"from_sso,omitempty"` // password skipped: session
	Order      string   `json:"order,omitempty"`    // a proof tool's signing order (orders_login.go)
	Autostart  string   `json:"autostart,omitempty"`
}

// loadFlow returns the auth request named by the form's id and its flow,
// checking that this browser started it.
func (s *Server) loadFlow(w http.ResponseWriter, r *http.Request) (*oidcop.AuthRequest, *flow, bool) {
	id := r.FormValue("id")
	ar, err := s.storage.LoginRequest(r.Context(), id)
	if err != nil {
		s.message(w, http.StatusBadRequest, "Sign-in expired", "This sign-in has expired or is unknown. Go back to the platform and start again.", "login_expired")
		return nil, nil, false
	}
	var f flow
	json.Unmarshal(ar.Flow, &f)
	if !s.boundToBrowser(r, ar) {
		s.message(w, http.StatusForbidden, "Sign-in not started here", "This sign-in was started in another browser tab or window. Go back to the platform and start again.", "login_foreign")
		return nil, nil, false
	}
	if ar.Done() {
		http.Redirect(w, r, oidcop.CallbackURL(s.cfg.Issuer, ar.ID), http.StatusSeeOther)
		return nil, nil, false
	}
	return ar, &f, true
}

func (s *Server) saveFlow(ctx context.Context, w http.ResponseWriter, id string, f *flow) bool {
	if err := s.storage.SetFlow(ctx, id, f); err != nil {
		s.message(w, http.StatusBadRequest, "Sign-in expired", "This sign-in has expired. Go back to the platform and start again.", "login_expired")
		return false
	}
	return true
}

// loginStart is the LoginURL of every client: single sign-on from the
// passport session when it is good enough, else the first step.
func (s *Server) loginStart(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, err := s.storage.LoginRequest(ctx, r.URL.Query().Get("id"))
	if err != nil {
		s.message(w, http.StatusBadRequest, "Sign-in expired", "This sign-in has expired or is unknown. Go back to the platform and start again.", "login_expired")
		return
	}
	if ar.Done() {
		// Only the browser that finished the request goes on to its code.
		if !s.boundToBrowser(r, ar) {
			s.message(w, http.StatusForbidden, "Sign-in not finished here", "This sign-in was finished in another browser. If someone sent you a sign-in link, do not use it; go to the platform yourself.", "login_foreign")
			return
		}
		http.Redirect(w, r, oidcop.CallbackURL(s.cfg.Issuer, ar.ID), http.StatusSeeOther)
		return
	}
	// A fresh browser binding for every start (a restart resets the steps).
	tok := oidcop.RandomToken()
	f := flow{Browser: sha(tok), Step: stepName}
	s.setFlowCookie(w, ar.ID, tok)

	forceLogin := slices.Contains(ar.Prompts(), "login")
	if sess, tokS, ok := s.session(r); ok && !forceLogin && s.fresh(sess, ar) {
		if sess.Level >= ar.RequiredLevel() {
			// The code goes to this browser only: bind the request first.
			if !s.saveFlow(ctx, w, ar.ID, &f) {
				return
			}
			s.complete(w, r, ar, sess.PassportID, sess.Level, sess.AMR, sess.AuthTime, true, tokS)
			return
		}
		// Known customer, level too low: the higher tool, no password.
		f.Step, f.PassportID, f.SubjectKey = stepFactor, sess.PassportID, passport.SubjectFor(sess.PassportID).Key
		f.Level, f.AMR, f.AuthTime, f.FromSSO = sess.Level, sess.AMR, sess.AuthTime.UnixMilli(), true
		if !s.saveFlow(ctx, w, ar.ID, &f) {
			return
		}
		s.showFactors(w, r, ar, &f, "")
		return
	}
	if slices.Contains(ar.Prompts(), "none") {
		s.redirectError(w, r, ar, "login_required", "the customer must sign in")
		return
	}
	if !s.saveFlow(ctx, w, ar.ID, &f) {
		return
	}
	s.render(w, http.StatusOK, "name", page{ID: ar.ID, Client: ar.GetClientID(), Level: ar.RequiredLevel(), LoginName: ar.LoginHint()})
}

// fresh reports whether a session satisfies the request's max_age.
func (s *Server) fresh(sess oidcop.Session, ar *oidcop.AuthRequest) bool {
	if ma := ar.MaxAge(); ma != nil {
		return s.now().Sub(sess.AuthTime) <= time.Duration(*ma)*time.Second
	}
	return true
}

func (s *Server) session(r *http.Request) (oidcop.Session, string, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return oidcop.Session{}, "", false
	}
	sess, err := s.storage.SessionByToken(r.Context(), c.Value)
	if err != nil {
		return oidcop.Session{}, "", false
	}
	return sess, c.Value, true
}

// redirectError answers the client with an OAuth error (prompt=none).
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, ar *oidcop.AuthRequest, code, desc string) {
	u, err := url.Parse(ar.GetRedirectURI())
	if err != nil {
		s.message(w, http.StatusBadRequest, "Sign-in failed", desc, code)
		return
	}
	p := url.Values{"error": {code}, "error_description": {desc}, "iss": {s.cfg.Issuer}} // iss: RFC 9207
	if st := ar.GetState(); st != "" {
		p.Set("state", st)
	}
	if ar.GetResponseMode() == oidc.ResponseModeFragment {
		u.RawFragment = p.Encode()
		u.Fragment, _ = url.PathUnescape(u.RawFragment)
	} else {
		q := u.Query()
		for k, v := range p {
			q[k] = v
		}
		u.RawQuery = q.Encode()
	}
	http.Redirect(w, r, u.String(), http.StatusFound)
}
