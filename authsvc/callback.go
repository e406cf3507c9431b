package authsvc

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/egate-bank/egate/authsvc/oidcop"
)

// codeResponse is the authorization response: the code, the client's
// state and the issuer (RFC 9207), so that a client talking to several
// providers knows which one answered (mix-up defence).
type codeResponse struct {
	Code  string `schema:"code"`
	State string `schema:"state,omitempty"`
	Iss   string `schema:"iss"`
}

// authorizeCallback releases the code of a completed authorization request
// to the browser that completed it, and to no other: the login-flow cookie
// bound to the request must come with it, and the passport session cookie
// of the customer who logged in. Anyone else holding the request id (a
// phisher who started the login and had the customer open /login?id=…) gets
// an error page and nothing changes: the request stays answerable by its
// own browser.
func (s *Server) authorizeCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, err := s.storage.LoginRequest(ctx, r.URL.Query().Get("id"))
	if err != nil {
		s.message(w, http.StatusBadRequest, "Sign-in expired", "This sign-in has expired, was already answered or is unknown. Go back to the platform and start again.", "login_expired")
		return
	}
	if !ar.Done() {
		s.message(w, http.StatusBadRequest, "Sign-in not finished", "This sign-in is not finished. Go back to the platform and start again.", "login_unfinished")
		return
	}
	if !s.boundToBrowser(r, ar) {
		s.message(w, http.StatusForbidden, "Sign-in not finished here", "This sign-in was finished in another browser. Nothing was sent to the platform. If someone sent you a sign-in link, do not use it; go to the platform yourself.", "login_foreign")
		return
	}
	sess, _, ok := s.session(r)
	if !ok || subtle.ConstantTimeCompare([]byte(sess.PassportID), []byte(ar.Subject)) != 1 {
		s.message(w, http.StatusForbidden, "Sign-in not finished here", "This browser is not signed in as the customer who finished this sign-in. Go back to the platform and start again.", "login_foreign")
		return
	}
	s.clearFlowCookie(w, ar.ID)
	s.releaseCode(w, r, ar)
}

// boundToBrowser reports whether the request carries the login-flow cookie
// bound to ar.
func (s *Server) boundToBrowser(r *http.Request, ar *oidcop.AuthRequest) bool {
	var f flow
	if json.Unmarshal(ar.Flow, &f) != nil || f.Browser == "" {
		return false
	}
	c, err := r.Cookie(flowCookieName(ar.ID))
	return err == nil && subtle.ConstantTimeCompare([]byte(sha(c.Value)), []byte(f.Browser)) == 1
}

// flowCookieName is the login-flow cookie of one auth request: each request
// has its own, so that logins started in two tabs of one browser (ebank and
// the mall at once) do not unbind each other. The suffix is derived from
// the request id, which it does not reveal.
func flowCookieName(authRequestID string) string {
	return flowCookie + "_" + sha(authRequestID)[:16]
}

// setFlowCookie binds this browser to a login in progress with a fresh
// secret for each start. Its path is the passport's root, so that it also
// reaches /authorize/callback; it lives as long as an auth request.
func (s *Server) setFlowCookie(w http.ResponseWriter, authRequestID, tok string) {
	http.SetCookie(w, &http.Cookie{Name: flowCookieName(authRequestID), Value: tok, Path: s.base + "/", HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode,
		MaxAge: int(s.cfg.OIDC.AuthRequestTTL / time.Second)})
}

func (s *Server) clearFlowCookie(w http.ResponseWriter, authRequestID string) {
	http.SetCookie(w, &http.Cookie{Name: flowCookieName(authRequestID), Value: "", Path: s.base + "/", MaxAge: -1, HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
}

// releaseCode makes the code (once: a second call finds the request
// answered) and sends it to the client's redirect URI with the issuer.
func (s *Server) releaseCode(w http.ResponseWriter, r *http.Request, ar op.AuthRequest) {
	ctx := op.ContextWithIssuer(r.Context(), s.cfg.Issuer)
	code, err := op.CreateAuthRequestCode(ctx, ar, s.storage, s.provider.Crypto())
	if err != nil {
		s.message(w, http.StatusBadRequest, "Sign-in already answered", "This sign-in was already answered. Go back to the platform.", "login_expired")
		return
	}
	resp := codeResponse{Code: code, State: ar.GetState(), Iss: s.cfg.Issuer}
	u, err := op.AuthResponseURL(ar.GetRedirectURI(), ar.GetResponseType(), ar.GetResponseMode(), &resp, s.provider.Encoder())
	if err != nil {
		s.message(w, http.StatusInternalServerError, "Try again", "The answer to the platform could not be made. Go back to the platform and start again.", "unavailable")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u, http.StatusFound)
}

// authorize guards the provider's /authorize: a response mode other than
// query or fragment (form_post, whose page in the library carries neither
// iss nor errors) is refused with a page, and the error redirects the
// provider sends to clients get the issuer (RFC 9207).
func (s *Server) authorize(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err == nil {
			switch m := r.Form.Get("response_mode"); oidc.ResponseMode(m) {
			case "", oidc.ResponseModeQuery, oidc.ResponseModeFragment:
			default:
				s.message(w, http.StatusBadRequest, "Sign-in request refused", s.printer(r).T("pp.bad_response_mode", strconv.Quote(m)), "invalid_request")
				return
			}
		}
		h.ServeHTTP(&issWriter{ResponseWriter: w, iss: s.cfg.Issuer}, r)
	})
}

type issWriter struct {
	http.ResponseWriter
	iss   string
	wrote bool
}

func (w *issWriter) WriteHeader(status int) {
	if !w.wrote && status >= 300 && status < 400 {
		if loc := w.Header().Get("Location"); loc != "" {
			w.Header().Set("Location", withIss(loc, w.iss))
		}
	}
	w.wrote = true
	w.ResponseWriter.WriteHeader(status)
}

func (w *issWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// withIss adds iss to an error response in loc's query or fragment.
func withIss(loc, iss string) string {
	u, err := url.Parse(loc)
	if err != nil {
		return loc
	}
	if q := u.Query(); q.Has("error") && !q.Has("iss") {
		q.Set("iss", iss)
		u.RawQuery = q.Encode()
		return u.String()
	}
	if f, err := url.ParseQuery(u.EscapedFragment()); err == nil && f.Has("error") && !f.Has("iss") {
		f.Set("iss", iss)
		u.RawFragment = f.Encode()
		u.Fragment, _ = url.PathUnescape(u.RawFragment)
		return u.String()
	}
	return loc
}
