package authsvc

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/egate-bank/egate/authsvc/oidcop"
)

// Logout. A customer's passport sessions end in three ways, all ending
// every session of the customer and then telling every platform with a
// registered back-channel logout URI (OpenID Connect Back-Channel Logout
// 1.0), so that no platform still shows the customer logged in:
//
//   - RP-initiated logout with an id_token_hint (/end_session): the platform
//     vouches for the customer; no question asked.
//   - RP-initiated logout without one: the passport asks the customer
//     (the logout page), then goes on to the validated
//     post_logout_redirect_uri.
//   - The passport's own logout page.

// backchannelTimeout bounds the delivery of logout tokens to all clients.
const backchannelTimeout = 5 * time.Second

// endSession is the end_session_endpoint.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.message(w, http.StatusBadRequest, "Sign-out request not understood", "The sign-out request is malformed. Go back to the platform and sign out there again.", "invalid_request")
		return
	}
	req := new(oidc.EndSessionRequest)
	if err := s.provider.Decoder().Decode(req, r.Form); err != nil {
		s.message(w, http.StatusBadRequest, "Sign-out request not understood", "The sign-out request is malformed. Go back to the platform and sign out there again.", "invalid_request")
		return
	}
	ctx := op.ContextWithIssuer(r.Context(), s.cfg.Issuer)
	es, err := op.ValidateEndSessionRequest(ctx, req, s.provider)
	if err != nil {
		code, desc := "invalid_request", "The sign-out request is not valid. Go back to the platform and sign out there again."
		var oe *oidc.Error
		if errors.As(err, &oe) && oe.ErrorType != oidc.ServerError {
			code = string(oe.ErrorType)
			if oe.Description != "" {
				desc = "The sign-out request is not valid (" + oe.Description + "). Go back to the platform and sign out there again."
			}
		}
		s.message(w, http.StatusBadRequest, "Sign-out request refused", desc, code)
		return
	}
	if es.UserID != "" {
		if !s.endCustomer(ctx, w, r, es.UserID, es.ClientID) {
			return
		}
		http.Redirect(w, r, es.RedirectURI, http.StatusFound)
		return
	}
	// No id_token_hint: anyone could have sent the browser here. Ask.
	_, tok, ok := s.session(r)
	if !ok {
		http.Redirect(w, r, es.RedirectURI, http.StatusFound)
		return
	}
	s.render(w, http.StatusOK, "logout", page{CSRF: logoutCSRF(tok), Next: es.RedirectURI, NextSig: s.signNext(es.RedirectURI)})
}

// endCustomer ends every passport session of the customer, revokes every
// token issued to them (all clients: no platform refreshes its way back
// in), records it and tells the platforms. It answers 503 and reports false
// when the sessions could not be ended.
func (s *Server) endCustomer(ctx context.Context, w http.ResponseWriter, r *http.Request, pid, clientID string) bool {
	if !s.auditOr503(ctx, w, "logout", map[string]string{"subject": "pid:" + pid, "client": clientID, "ip": s.clientIP(r)}) {
		return false
	}
	if err := s.storage.LogoutCustomer(ctx, pid); err != nil {
		s.busy(w)
		return false
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: s.base + "/", MaxAge: -1, HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
	s.backchannelLogout(ctx, pid)
	return true
}

// backchannelLogout posts a logout token for the customer to every client
// with a back-channel logout URI, in parallel, and waits (bounded by
// backchannelTimeout) so that the platforms have dropped their sessions
// when the customer's browser arrives there. Each delivery is audited.
func (s *Server) backchannelLogout(ctx context.Context, pid string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), backchannelTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range s.storage.BackchannelClients() {
		wg.Go(func() {
			outcome := s.sendLogoutToken(ctx, c, pid)
			s.audit.Append(ctx, "logout.backchannel", map[string]string{"subject": "pid:" + pid, "client": c.ID, "outcome": outcome})
		})
	}
	wg.Wait()
}

// sendLogoutToken delivers one logout token and names the outcome.
func (s *Server) sendLogoutToken(ctx context.Context, c oidcop.ClientConfig, pid string) string {
	tok, err := s.storage.LogoutToken(ctx, s.cfg.Issuer, c.ID, pid)
	if err != nil {
		return "not_signed"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BackchannelLogoutURI, strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
	if err != nil {
		return "bad_uri"
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.backchannel.Do(req)
	if err != nil {
		return "unreachable"
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return "refused_" + strconv.Itoa(resp.StatusCode)
	}
	return "ok"
}

func logoutCSRF(tok string) string { return sha("logout\x00" + tok)[:32] }

// signNext authenticates a post-logout redirect that op validated, so the
// logout form can carry it without becoming an open redirect.
func (s *Server) signNext(next string) string {
	m := hmac.New(sha256.New, s.logoutKey)
	m.Write([]byte("egate post-logout redirect\x00" + next))
	return hex.EncodeToString(m.Sum(nil))
}

// nextFromForm returns the form's signed post-logout redirect, or "".
func (s *Server) nextFromForm(r *http.Request) string {
	next, sig := r.PostFormValue("next"), r.PostFormValue("next_sig")
	if next == "" || !hmac.Equal([]byte(sig), []byte(s.signNext(next))) {
		return ""
	}
	return next
}
