package authsvc

// The login name and password steps: the reserved message, the captcha,
// the password check with its counters, and the alerts a failure sends.

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/egate-bank/egate/authsvc/alerts"
	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/oidcop"
	"github.com/egate-bank/egate/authsvc/passport"
)

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
		s.busy(w)
		return
	}
	f.Step, f.SubjectKey, f.PassportID, f.Reserved, f.LoginName = stepPassword, sub.Key, sub.PassportID, sub.ReservedMessage, passport.NormalizeLoginName(name)
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
		s.busy(w)
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
	if f.Step != stepPassword {
		s.message(w, http.StatusBadRequest, "Sign-in out of order", "Start the sign-in again from the platform.", "invalid_request")
		return
	}
	ip := s.clientIP(r)
	need, err := s.passport.CaptchaRequired(ctx, s.subject(f), ip)
	if err != nil {
		s.busy(w)
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
		s.busy(w)
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
	f.Step = stepFactor
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
	if f.Step != stepPassword {
		s.message(w, http.StatusBadRequest, "Sign-in out of order", "Start the sign-in again from the platform.", "invalid_request")
		return
	}
	if err := s.captchas.Discard(r.Context(), r.PostFormValue("captcha_id")); err != nil {
		s.busy(w)
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
