package authsvc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"github.com/egate-bank/egate/internal/i18n"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/egate-bank/egate/authsvc/alerts"
	"github.com/egate-bank/egate/authsvc/apierr"
	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/oidcop"
	"github.com/egate-bank/egate/authsvc/passport"
)

// Cookies.
const (
	sessionCookie = "egate_passport" // the passport (SSO) session
	flowCookie    = "egate_login"    // binds a login in progress to this browser: one cookie per request, see flowCookieName
)

// flow is the login pages' state of one auth request, kept in the
// database with the request.
type flow struct {
	Browser    string   `json:"browser"` // SHA-256 of the flow cookie
	Step       string   `json:"step"`    // name, password, factor, done
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

func (s *Server) message(w http.ResponseWriter, status int, title, msg, code string) {
	s.render(w, status, "message", page{Title: title, Message: msg, ErrorCode: code})
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
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

func (s *Server) base64PNG(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

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
	f := flow{Browser: sha(tok), Step: "name"}
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
		f.Step, f.PassportID, f.SubjectKey = "factor", sess.PassportID, passport.SubjectFor(sess.PassportID).Key
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

func (s *Server) loginName(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, f, ok := s.loadFlow(w, r)
	if !ok {
		return
	}
	name := strings.TrimSpace(r.PostFormValue("login_name"))
	if name == "" || len(name) > 64 {
		s.render(w, http.StatusBadRequest, "name", page{ID: ar.ID, Client: ar.GetClientID(), Level: ar.RequiredLevel(), Error: "Enter your login name.", ErrorCode: "invalid_request"})
		return
	}
	sub, err := s.passport.Lookup(ctx, name)
	if err != nil {
		s.message(w, http.StatusServiceUnavailable, "Try again", "The service is busy. Try again in a moment.", "unavailable")
		return
	}
	f.Step, f.SubjectKey, f.PassportID, f.Reserved, f.LoginName = "password", sub.Key, sub.PassportID, sub.ReservedMessage, passport.NormalizeLoginName(name)
	f.Level, f.AMR, f.FromSSO = 0, nil, false
	if !s.saveFlow(ctx, w, ar.ID, f) {
		return
	}
	s.showPassword(w, r, ar, f, http.StatusOK, "", "")
}

func (s *Server) subject(f *flow) passport.Subject {
	return passport.Subject{Key: f.SubjectKey, PassportID: f.PassportID, ReservedMessage: f.Reserved}
}

func (s *Server) showPassword(w http.ResponseWriter, r *http.Request, ar *oidcop.AuthRequest, f *flow, status int, msg, code string) {
	p := page{ID: ar.ID, Client: ar.GetClientID(), Level: ar.RequiredLevel(), ReservedMessage: f.Reserved, Error: msg, ErrorCode: code}
	// The same counters run for unknown names, so this tells nothing.
	if n, err := s.passport.RemainingAttempts(r.Context(), s.subject(f)); err == nil {
		p.Remaining, p.ShowRemaining = n, true
	}
	need, err := s.passport.CaptchaRequired(r.Context(), s.subject(f), s.clientIP(r))
	if err == nil && need {
		ch, err := s.captchas.Issue(r.Context())
		if err == nil {
			p.CaptchaID, p.CaptchaPNG = ch.ID, s.base64PNG(ch.PNG)
		}
	}
	s.render(w, status, "password", p)
}

// auditLogin appends a login decision to the audit log before the decision
// takes effect. It fails closed: when the record cannot be written the
// customer gets "try again" (503) and the step goes no further, so no
// login succeeds unrecorded. The page never says why (the log's error
// stays on the server).
func (s *Server) auditLogin(ctx context.Context, w http.ResponseWriter, kind string, ar *oidcop.AuthRequest, f *flow, ip, outcome string, extra ...string) bool {
	fields := map[string]string{"client": ar.GetClientID(), "subject": f.SubjectKey, "ip": ip, "outcome": outcome, "auth_request": sha(ar.ID)[:16]}
	for i := 0; i+1 < len(extra); i += 2 {
		fields[extra[i]] = extra[i+1]
	}
	return s.auditOr503(ctx, w, kind, fields)
}

// auditOr503 appends a record, or answers 503 and reports false.
func (s *Server) auditOr503(ctx context.Context, w http.ResponseWriter, kind string, fields map[string]string) bool {
	if _, err := s.audit.Append(ctx, kind, fields); err != nil {
		s.message(w, http.StatusServiceUnavailable, "Try again", "The service is busy. Try again in a moment.", "unavailable")
		return false
	}
	return true
}

func (s *Server) loginPassword(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, f, ok := s.loadFlow(w, r)
	if !ok {
		return
	}
	if f.Step != "password" {
		s.message(w, http.StatusBadRequest, "Sign-in out of order", "Start the sign-in again from the platform.", "invalid_request")
		return
	}
	ip := s.clientIP(r)
	need, err := s.passport.CaptchaRequired(ctx, s.subject(f), ip)
	if err != nil {
		s.message(w, http.StatusServiceUnavailable, "Try again", "The service is busy. Try again in a moment.", "unavailable")
		return
	}
	if need {
		if err := s.captchas.Verify(ctx, r.PostFormValue("captcha_id"), r.PostFormValue("captcha_answer")); err != nil {
			if !s.auditLogin(ctx, w, "login.captcha", ar, f, ip, "refused") {
				return
			}
			code := "captcha_wrong"
			if r.PostFormValue("captcha_id") == "" {
				code = "captcha_required"
			}
			s.showPassword(w, r, ar, f, http.StatusBadRequest, captchaMessage(err, code), code)
			return
		}
	}
	pw := r.PostFormValue("password")
	c, err := s.passport.CheckPassword(ctx, s.subject(f), pw, ip)
	var le *authn.LockedError
	var be *passport.BadCredentialsError
	switch {
	case errors.As(err, &le):
		if !s.auditLogin(ctx, w, "login.password", ar, f, ip, "locked") {
			return
		}
		s.renderLocked(w, ar, le)
		return
	case errors.Is(err, passport.ErrIPLimited):
		if !s.auditLogin(ctx, w, "login.password", ar, f, ip, "ip_limited") {
			return
		}
		s.deadEnd(w, ar, http.StatusTooManyRequests, "Too many attempts", err.Error(), "ip_limited")
		return
	case errors.As(err, &be):
		if !s.auditLogin(ctx, w, "login.password", ar, f, ip, "wrong") {
			return
		}
		s.alertPasswordFailure(ctx, r, ar, f, ip, be)
		if be.Remaining == 0 { // this attempt locked the password: say both
			p := lockedFor(ar, &authn.LockedError{Factor: passport.FactorPassword, Until: be.Until})
			p.Error, p.ErrorCode = err.Error(), "bad_credentials"
			s.render(w, http.StatusForbidden, "locked", p)
			return
		}
		s.showPassword(w, r, ar, f, http.StatusUnauthorized, err.Error(), "bad_credentials")
		return
	case err != nil:
		s.message(w, http.StatusServiceUnavailable, "Try again", "The service is busy. Try again in a moment.", "unavailable")
		return
	}
	if !s.auditLogin(ctx, w, "login.password", ar, f, ip, "ok") {
		return
	}
	f.Level, f.AMR, f.AuthTime = 1, []string{"pwd"}, s.now().UnixMilli()
	if ar.RequiredLevel() <= 1 {
		s.complete(w, r, ar, c.PassportID, 1, f.AMR, time.UnixMilli(f.AuthTime), false, "")
		return
	}
	f.Step = "factor"
	if !s.saveFlow(ctx, w, ar.ID, f) {
		return
	}
	s.showFactors(w, r, ar, f, "")
}

// newCaptcha: POST /login/captcha, the password page's "New picture"
// button (a form of its own, so it works without JavaScript): the old
// picture is spent and the page is shown again with a fresh one.
func (s *Server) newCaptcha(w http.ResponseWriter, r *http.Request) {
	ar, f, ok := s.loadFlow(w, r)
	if !ok {
		return
	}
	if f.Step != "password" {
		s.message(w, http.StatusBadRequest, "Sign-in out of order", "Start the sign-in again from the platform.", "invalid_request")
		return
	}
	if err := s.captchas.Discard(r.Context(), r.PostFormValue("captcha_id")); err != nil {
		s.message(w, http.StatusServiceUnavailable, "Try again", "The service is busy. Try again in a moment.", "unavailable")
		return
	}
	s.showPassword(w, r, ar, f, http.StatusOK, "", "")
}

func captchaMessage(err error, code string) string {
	if code == "captcha_required" {
		return "After a failed attempt, also enter the digits in the picture."
	}
	return err.Error()
}

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

// alertPasswordFailure posts a real customer's failed-login alert
// (coalesced: one an hour) and, when this attempt locked the password, the
// lockout alert. Unknown names get none: nobody to tell, and the page must
// not differ. An alert that cannot be posted does not change the page.
func (s *Server) alertPasswordFailure(ctx context.Context, r *http.Request, ar *oidcop.AuthRequest, f *flow, ip string, be *passport.BadCredentialsError) {
	if f.PassportID == "" {
		return
	}
	now, dev := s.now().UTC(), trimUA(r.UserAgent())
	s.alerts.PostLoginFailed(ctx, f.PassportID, alerts.LoginFailed{Time: now, Client: ar.GetClientID(), Device: dev, IP: ip,
		Factor: passport.FactorPassword, Remaining: be.Remaining})
	if be.Remaining == 0 {
		s.alerts.PostLocked(ctx, f.PassportID, alerts.Locked{Time: now, Client: ar.GetClientID(), Device: dev, IP: ip,
			Factor: passport.FactorPassword, Until: be.Until.UTC()})
	}
}

// factorFailureAlerts posts a customer's failed-login alert (coalesced with
// the password's: one an hour) for a failed second-factor attempt and the
// lockout alert for the attempt that locked the tool; then calls next.
func factorFailureAlerts(o *alerts.Outbox, now func() time.Time, next func(context.Context, passport.FactorFailure)) func(context.Context, passport.FactorFailure) {
	return func(ctx context.Context, ff passport.FactorFailure) {
		t := now().UTC()
		o.PostLoginFailed(ctx, ff.PassportID, alerts.LoginFailed{Time: t, IP: ff.IP, Factor: ff.Factor, Remaining: ff.Remaining})
		if ff.Remaining == 0 {
			o.PostLocked(ctx, ff.PassportID, alerts.Locked{Time: t, IP: ff.IP, Factor: ff.Factor, Until: ff.Until.UTC()})
		}
		if next != nil {
			next(ctx, ff)
		}
	}
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

// renderLockedFactor is the locked page for a second-factor tool: the
// customer's other tools of the level are still offered.
func (s *Server) renderLockedFactor(w http.ResponseWriter, r *http.Request, ar *oidcop.AuthRequest, f *flow, fac authn.Factor, le *authn.LockedError) {
	p := lockedPage(le)
	p.ID, p.Client, p.Level, p.Factors = ar.ID, ar.GetClientID(), ar.RequiredLevel(), s.otherFactors(r, ar, f, fac)
	p.Back, p.BackTo = backURL(ar, "access_denied", "the customer's "+le.Factor+" is locked"), ar.GetClientID()
	s.render(w, http.StatusForbidden, "locked", p)
}

// otherFactors are the customer's tools of the level other than fac.
func (s *Server) otherFactors(r *http.Request, ar *oidcop.AuthRequest, f *flow, fac authn.Factor) []choice {
	return choicesOf(s.usableFactors(r.Context(), f.PassportID, ar.RequiredLevel()), fac)
}

// choicesOf are the buttons for fs, leaving out except (nil: none).
func choicesOf(fs []authn.Factor, except authn.Factor) []choice {
	var out []choice
	for _, f := range fs {
		if f != except {
			out = append(out, choice{Name: f.Name(), Label: factorLabel(f), Level: int(f.Level())})
		}
	}
	return out
}

// usableFactors are the customer's enrolled tools at or above the level.
func (s *Server) usableFactors(ctx context.Context, pid string, level int) []authn.Factor {
	var out []authn.Factor
	for _, f := range s.factors {
		if int(f.Level()) < level {
			continue
		}
		if ok, err := f.Enrolled(ctx, pid); err == nil && ok {
			out = append(out, f)
		}
	}
	return out
}

func (s *Server) showFactors(w http.ResponseWriter, r *http.Request, ar *oidcop.AuthRequest, f *flow, msg string) {
	fs := s.usableFactors(r.Context(), f.PassportID, ar.RequiredLevel())
	switch len(fs) {
	case 0:
		s.deadEnd(w, ar, http.StatusForbidden, "A stronger tool is needed",
			"This platform needs level "+strconv.Itoa(ar.RequiredLevel())+", and no authentication tool of that level is enrolled for you. Visit a branch or enroll one in the online bank.", "no_factor")
	case 1:
		s.beginFactor(w, r, ar, f, fs[0])
	default:
		cs := choicesOf(fs, nil)
		code := ""
		if msg != "" {
			code = "invalid_request"
		}
		s.render(w, http.StatusOK, "factor_choose", page{ID: ar.ID, Client: ar.GetClientID(), Level: ar.RequiredLevel(), Factors: cs, Error: msg, ErrorCode: code})
	}
}

func (s *Server) factorNamed(name string) authn.Factor {
	for _, f := range s.factors {
		if f.Name() == name {
			return f
		}
	}
	return nil
}

func (s *Server) beginFactor(w http.ResponseWriter, r *http.Request, ar *oidcop.AuthRequest, f *flow, fac authn.Factor) {
	s.beginFactorMsg(w, r, ar, f, fac, http.StatusOK, "", "")
}

// beginFactorMsg begins a challenge of fac and shows it, with an error
// from the previous answer when msg is set.
func (s *Server) beginFactorMsg(w http.ResponseWriter, r *http.Request, ar *oidcop.AuthRequest, f *flow, fac authn.Factor, status int, msg, code string) {
	ctx := r.Context()
	ch, err := fac.Begin(ctx, authn.BeginRequest{PassportID: f.PassportID, Purpose: authn.PurposeLogin, ClientIP: s.clientIP(r)})
	var le *authn.LockedError
	switch {
	case errors.As(err, &le):
		s.renderLockedFactor(w, r, ar, f, fac, le)
		return
	case err != nil:
		s.message(w, http.StatusServiceUnavailable, "Try again", "The "+fac.Name()+" could not start: "+safeFactorError(err), factorCode(err))
		return
	}
	f.Factor, f.Challenge, f.Prompt, f.Proof, f.Data, f.Order, f.Autostart = fac.Name(), ch.ID, ch.Prompt, answerIsProof(fac), "", "", ""
	if f.Proof {
		// A signature tool answers through a signing order.
		s.beginOrder(w, r, ar, f, fac, ch, status, msg, code)
		return
	}
	if !s.saveFlow(ctx, w, ar.ID, f) {
		return
	}
	s.renderFactor(w, r, status, ar, f, fac, msg, code)
}

// renderFactor shows fac's open challenge, and the customer's other tools
// of the level, any of which replaces it (POST /login/factor/begin): a
// customer whose token is at home uses the SMS code instead.
func (s *Server) renderFactor(w http.ResponseWriter, r *http.Request, status int, ar *oidcop.AuthRequest, f *flow, fac authn.Factor, msg, code string) {
	s.render(w, status, "factor", page{ID: ar.ID, Client: ar.GetClientID(), Level: ar.RequiredLevel(), Factor: fac.Name(), FactorLabel: factorLabel(fac),
		Prompt: f.Prompt, Data: f.Data, Proof: f.Proof, Error: msg, ErrorCode: code, Factors: s.otherFactors(r, ar, f, fac)})
}

// choice is a tool offered on the choice page.
type choice struct {
	Name, Label string
	Level       int
}

// Optional methods of an authn.Factor that the login pages use when a tool
// has them (authsvc/sms, gridcard, otp, ushield and pivauth do).
type (
	// labeled names the tool for customers ("Dynamic-password token").
	labeled interface{ Label() string }
	// proofAnswer: the answer is an EGP1 signature proof
	// (devices/pkcs11token) over Challenge.Data, made on the customer's
	// device: the page shows Data and follows a signing order
	// (orders_login.go) that the device answers.
	proofAnswer interface{ AnswerIsProof() bool }
	// oneTry: a wrong answer uses up the challenge, so the page begins a
	// new one at once.
	oneTry interface{ ChallengeUsedByFailure() bool }
)

func factorLabel(f authn.Factor) string {
	if l, ok := f.(labeled); ok {
		return l.Label()
	}
	return f.Name()
}

func answerIsProof(f authn.Factor) bool {
	p, ok := f.(proofAnswer)
	return ok && p.AnswerIsProof()
}

func challengeUsedByFailure(f authn.Factor) bool {
	o, ok := f.(oneTry)
	return ok && o.ChallengeUsedByFailure()
}

// formResponse is the answer as the factor takes it: a proof tool's base64
// (standard or URL alphabet, padding and white space optional) decoded;
// anything that does not decode goes as typed, and the tool calls it
// malformed.
func formResponse(v string, proof bool) []byte {
	if !proof {
		return []byte(strings.TrimSpace(v))
	}
	v = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, v)
	v = strings.TrimRight(v, "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(v); err == nil {
			return b
		}
	}
	return []byte(v)
}

func (s *Server) factorBegin(w http.ResponseWriter, r *http.Request) {
	ar, f, ok := s.loadFlow(w, r)
	if !ok {
		return
	}
	if f.Step != "factor" {
		s.message(w, http.StatusBadRequest, "Sign-in out of order", "Start the sign-in again from the platform.", "invalid_request")
		return
	}
	fac := s.factorNamed(r.PostFormValue("factor"))
	if fac == nil || !slices.ContainsFunc(s.usableFactors(r.Context(), f.PassportID, ar.RequiredLevel()), func(x authn.Factor) bool { return x == fac }) {
		s.showFactors(w, r, ar, f, "Choose one of the tools shown.")
		return
	}
	s.beginFactor(w, r, ar, f, fac)
}

func (s *Server) factorVerify(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, f, ok := s.loadFlow(w, r)
	if !ok {
		return
	}
	fac := s.factorNamed(f.Factor)
	if f.Step != "factor" || fac == nil || f.Challenge == "" {
		s.message(w, http.StatusBadRequest, "Sign-in out of order", "Start the sign-in again from the platform.", "invalid_request")
		return
	}
	if f.Proof {
		// Signature tools answer through their signing order only.
		s.beginFactorMsg(w, r, ar, f, fac, http.StatusBadRequest, "Confirm with your "+factorLabel(fac)+" as this page shows.", "use_order")
		return
	}
	ip := s.clientIP(r)
	// The answer is counted once, on the tool's one counter (authn.Counted:
	// the tool's own, or the passport's per-factor counter). An answer the
	// tool could not check (its HSM failed) is no failure: nothing is
	// counted against the customer or the address.
	res, err := authn.Counted(ctx, fac, s.passport, authn.VerifyRequest{PassportID: f.PassportID, ChallengeID: f.Challenge,
		Response: formResponse(r.PostFormValue("response"), f.Proof), ClientIP: ip, Purpose: authn.PurposeLogin})
	unchecked := errors.Is(err, authn.ErrUnavailable)
	var le *authn.LockedError
	if err != nil {
		if !s.auditLogin(ctx, w, "login.factor", ar, f, ip, factorCode(err), "factor", fac.Name()) {
			return
		}
		switch {
		case unchecked:
			// The internals go to the log with the request id; the page
			// keeps the same challenge for the same answer.
			s.logFactorFault(r, fac, err)
			w.Header().Set("Retry-After", "1")
			s.renderFactor(w, r, http.StatusServiceUnavailable, ar, f, fac, authn.ErrUnavailable.Error(), factorCode(err))
		case errors.As(err, &le):
			s.renderLockedFactor(w, r, ar, f, fac, le)
		case errors.Is(err, authn.ErrExpired), errors.Is(err, authn.ErrUsed), errors.Is(err, authn.ErrUnknown):
			s.beginFactorMsg(w, r, ar, f, fac, http.StatusUnauthorized, "That challenge had expired or was already used; answer this new one.", factorCode(err))
		case challengeUsedByFailure(fac):
			s.beginFactorMsg(w, r, ar, f, fac, http.StatusUnauthorized, safeFactorError(err), factorCode(err))
		default:
			s.renderFactor(w, r, http.StatusUnauthorized, ar, f, fac, safeFactorError(err), factorCode(err))
		}
		return
	}
	s.factorPassed(w, r, ar, f, fac, ip, res)
}

// factorPassed records a tool's success and finishes the login at the
// level reached.
func (s *Server) factorPassed(w http.ResponseWriter, r *http.Request, ar *oidcop.AuthRequest, f *flow, fac authn.Factor, ip string, res authn.Result, extra ...string) {
	ctx := r.Context()
	if !s.auditLogin(ctx, w, "login.factor", ar, f, ip, "ok", append([]string{"factor", fac.Name(), "level", strconv.Itoa(int(res.Level)),
		"confirmed_on_device", strconv.FormatBool(res.ConfirmedOnDevice)}, extra...)...) {
		return
	}
	level := max(f.Level, int(res.Level))
	amr := slices.Clone(f.AMR)
	if res.AMR != "" && !slices.Contains(amr, res.AMR) {
		amr = append(amr, res.AMR)
	}
	if len(amr) > 1 && !slices.Contains(amr, "mfa") {
		amr = append(amr, "mfa")
	}
	var sessTok string
	if f.FromSSO {
		_, sessTok, _ = s.session(r)
	}
	s.complete(w, r, ar, f.PassportID, level, amr, s.now(), false, sessTok)
}

// factorCode is the stable code of a tool's error, from the one table
// (authsvc/apierr), as the JSON APIs answer it.
func factorCode(err error) string { return apierr.Of(err).Name }

// safeFactorError is what the page says about a tool's error: the table's
// message for its code, never a wrapped detail that might carry device
// internals.
func safeFactorError(err error) string { return apierr.Of(err).Message }

// complete finishes the login: the passport session (new or upgraded),
// the auth request, the login alert and the audit record; then back to op.
func (s *Server) complete(w http.ResponseWriter, r *http.Request, ar *oidcop.AuthRequest, pid string, level int, amr []string, authTime time.Time, sso bool, sessTok string) {
	ctx := r.Context()
	ip := s.clientIP(r)
	// The decision is recorded before it takes effect (fails closed).
	kind := "login.success"
	if sso {
		kind = "login.sso"
	}
	if !s.auditOr503(ctx, w, kind, map[string]string{"client": ar.GetClientID(), "subject": "pid:" + pid, "ip": ip, "level": strconv.Itoa(level),
		"amr": strings.Join(amr, " "), "auth_request": sha(ar.ID)[:16]}) {
		return
	}
	if !sso {
		if sessTok != "" {
			if err := s.storage.UpgradeSession(ctx, sessTok, level, amr, authTime); err != nil {
				s.message(w, http.StatusServiceUnavailable, "Try again", "The service is busy. Try again in a moment.", "unavailable")
				return
			}
		} else {
			tok, _, err := s.storage.CreateSession(ctx, pid, level, amr, authTime, r.UserAgent())
			if err != nil {
				s.message(w, http.StatusServiceUnavailable, "Try again", "The service is busy. Try again in a moment.", "unavailable")
				return
			}
			http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: tok, Path: s.base + "/", HttpOnly: true, Secure: s.secure,
				SameSite: http.SameSiteLaxMode, MaxAge: int(s.cfg.OIDC.SessionTTL / time.Second)})
		}
	}
	if err := s.storage.Complete(ctx, ar.ID, pid, level, amr, authTime); err != nil {
		s.message(w, http.StatusBadRequest, "Sign-in already finished", "This sign-in was already completed. Go back to the platform.", "login_done")
		return
	}
	s.alerts.Post(ctx, pid, alerts.KindLogin, alerts.Login{Time: s.now().UTC(), Client: ar.GetClientID(), Device: trimUA(r.UserAgent()), IP: ip, Level: level, SSO: sso,
		StepUp: !sso && sessTok != ""})
	// The flow cookie stays: /authorize/callback checks it, then clears it.
	http.Redirect(w, r, oidcop.CallbackURL(s.cfg.Issuer, ar.ID), http.StatusSeeOther)
}

func trimUA(ua string) string {
	if len(ua) > 200 {
		return ua[:200]
	}
	return ua
}

// logoutPage asks before signing out (a GET never changes state).
func (s *Server) logoutPage(w http.ResponseWriter, r *http.Request) {
	_, tok, ok := s.session(r)
	if !ok {
		s.render(w, http.StatusOK, "message", page{Title: "Signed out", Message: "You are not signed in on this browser."})
		return
	}
	s.render(w, http.StatusOK, "logout", page{CSRF: logoutCSRF(tok)})
}

// logout ends every passport session of the customer and tells the
// platforms (back-channel logout), then goes on to the signed post-logout
// redirect of an RP-initiated logout, or to the signed-out page.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	next := s.nextFromForm(r)
	sess, tok, ok := s.session(r)
	if ok {
		if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(logoutCSRF(tok))) != 1 {
			s.message(w, http.StatusForbidden, "Not signed out", "The sign-out form is stale; open the sign-out page again.", "csrf")
			return
		}
		if !s.endCustomer(r.Context(), w, r, sess.PassportID, "") {
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: s.base + "/", MaxAge: -1, HttpOnly: true, Secure: s.secure})
	if next == "" {
		next = s.base + "/logged-out"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}
