package authsvc

import (
	"net/http"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/egate-bank/egate/authsvc/apierr"
)

// bearerHandler is a customer API behind bearer: it gets the request (its
// context carrying the issuer) and the verified access token's claims.
type bearerHandler func(w http.ResponseWriter, r *http.Request, claims *oidc.AccessTokenClaims)

// bearer is the one guard of the customer APIs (RFC 6750): the access token
// from Authorization: Bearer, verified (signature, expiry, issuer) and
// looked up in the OIDC storage, so a revoked token is refused like a
// forged one. No token: 401 unauthorized with WWW-Authenticate: Bearer; a
// bad one: 401 invalid_token with Bearer error="invalid_token"; a token of
// another client than client (when client is set): 403 wrong_client with
// msg (Bearer error="insufficient_scope"). Nothing of the request is read
// before the token passes.
func (s *Server) bearer(client, msg string, next bearerHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := op.ContextWithIssuer(r.Context(), s.cfg.Issuer)
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			w.Header().Set("WWW-Authenticate", `Bearer`)
			apierr.WriteCode(w, r, apierr.Unauthorized, "")
			return
		}
		claims, err := op.VerifyAccessToken[*oidc.AccessTokenClaims](ctx, tok, s.provider.AccessTokenVerifier(ctx))
		if err != nil || s.storage.SetUserinfoFromToken(ctx, new(oidc.UserInfo), claims.JWTID, claims.Subject, "") != nil {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			apierr.WriteCode(w, r, apierr.InvalidToken, "")
			return
		}
		if client != "" && claims.ClientID != client {
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope"`)
			apierr.WriteCode(w, r, apierr.WrongClient, msg)
			return
		}
		next(w, r.WithContext(ctx), claims)
	}
}
