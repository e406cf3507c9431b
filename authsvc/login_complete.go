package authsvc

// The end of a login (session, audit, alert, the code to the platform) and
// the passport's own logout page.

import (
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/egate-bank/egate/authsvc/alerts"
	"github.com/egate-bank/egate/authsvc/oidcop"
)

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
				s.busy(w)
				return
			}
		} else {
			tok, _, err := s.storage.CreateSession(ctx, pid, level, amr, authTime, r.UserAgent())
			if err != nil {
				s.busy(w)
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
