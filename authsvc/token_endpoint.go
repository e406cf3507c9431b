package authsvc

import (
	"encoding/json"
	"net/http"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// tokenEndpoint passes the grants the passport offers (authorization_code
// and refresh_token) to the OIDC provider and answers every other grant
// type with unsupported_grant_type (RFC 6749 §5.2). The provider library
// would otherwise run its JWT-bearer grant, which the passport does not
// offer, and answer a malformed assertion with a server error. A failure
// of the provider (signing with the HSM, the database) is answered 503
// temporarily_unavailable without the provider's text (faults.go).
func (s *Server) tokenEndpoint(w http.ResponseWriter, r *http.Request) {
	// RFC 6749 §5.1: no token response, success or error, is cached.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "the request body is not a form")
		return
	}
	if clientAssertion(r.PostForm) {
		tokenError(w, http.StatusUnauthorized, "invalid_client", "client assertions are not supported: authenticate with client_secret_basic or client_secret_post")
		return
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case string(oidc.GrantTypeCode), string(oidc.GrantTypeRefreshToken):
		s.hideFaults(http.StripPrefix(s.base, s.provider)).ServeHTTP(w, r)
	case "":
		tokenError(w, http.StatusBadRequest, "invalid_request", "grant_type missing")
	default:
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "the passport offers authorization_code and refresh_token only")
	}
}

func tokenError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}
