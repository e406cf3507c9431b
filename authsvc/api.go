package authsvc

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/passport"
)

// apiChangePassword: POST /api/v1/password with a bearer access token and
// {"old_password": "...", "new_password": "..."}.
func (s *Server) apiChangePassword(w http.ResponseWriter, r *http.Request) {
	ctx := op.ContextWithIssuer(r.Context(), s.cfg.Issuer)
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || tok == "" {
		w.Header().Set("WWW-Authenticate", `Bearer`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "send an access token: Authorization: Bearer <token>")
		return
	}
	claims, err := op.VerifyAccessToken[*oidc.AccessTokenClaims](ctx, tok, s.provider.AccessTokenVerifier(ctx))
	if err != nil || s.storage.SetUserinfoFromToken(ctx, new(oidc.UserInfo), claims.JWTID, claims.Subject, "") != nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "invalid_token", "the access token is invalid, expired or revoked")
		return
	}
	var body struct {
		Old string `json:"old_password"`
		New string `json:"new_password"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Old == "" || body.New == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", `send JSON {"old_password": "…", "new_password": "…"}`)
		return
	}
	err = s.passport.ChangePassword(ctx, claims.Subject, body.Old, body.New, s.clientIP(r))
	var we *passport.WeakPasswordError
	var le *authn.LockedError
	switch {
	case err == nil:
		s.audit.Append(ctx, "password.change", map[string]string{"subject": "pid:" + claims.Subject, "ip": s.clientIP(r)})
		w.WriteHeader(http.StatusNoContent)
	case errors.As(err, &we):
		writeError(w, http.StatusUnprocessableEntity, "weak_password", we.Error())
	case errors.As(err, &le):
		writeError(w, http.StatusForbidden, "locked", le.Error())
	case errors.Is(err, passport.ErrBadCredentials):
		writeError(w, http.StatusUnauthorized, "bad_credentials", "the current password is not correct")
	case errors.Is(err, passport.ErrIPLimited):
		writeError(w, http.StatusTooManyRequests, "ip_limited", err.Error())
	default:
		writeError(w, http.StatusServiceUnavailable, "unavailable", "try again in a moment")
	}
}
