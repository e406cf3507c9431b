package authsvc

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/egate-bank/egate/authsvc/apierr"
	"github.com/egate-bank/egate/authsvc/passport"
)

// apiChangePassword: POST /api/v1/password with a bearer access token and
// {"old_password": "...", "new_password": "..."}.
func (s *Server) apiChangePassword(w http.ResponseWriter, r *http.Request, claims *oidc.AccessTokenClaims) {
	ctx := r.Context()
	var body struct {
		Old string `json:"old_password"`
		New string `json:"new_password"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Old == "" || body.New == "" {
		apierr.WriteCode(w, r, apierr.InvalidRequest, `send JSON {"old_password": "…", "new_password": "…"}`)
		return
	}
	err := s.passport.ChangePassword(ctx, claims.Subject, body.Old, body.New, s.clientIP(r))
	var we *passport.WeakPasswordError
	switch {
	case err == nil:
		s.audit.Append(ctx, "password.change", map[string]string{"subject": "pid:" + claims.Subject, "ip": s.clientIP(r)})
		w.WriteHeader(http.StatusNoContent)
	case errors.As(err, &we):
		apierr.Write(w, r, s.now(), apierr.Wrap(apierr.WeakPassword, err))
	case errors.Is(err, passport.ErrBadCredentials):
		apierr.WriteCode(w, r, apierr.BadCredentials, "the current password is not correct")
	case errors.Is(err, passport.ErrIPLimited):
		apierr.Write(w, r, s.now(), apierr.Wrap(apierr.IPLimited, err))
	default:
		// A locked password (*authn.LockedError: 423 locked, with
		// Retry-After when the lock ends by itself), else the bank's own
		// fault (503 unavailable, nothing about internals).
		apierr.Write(w, r, s.now(), err)
	}
}
