package authsvc

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/egate-bank/egate/authsvc/apierr"
	"github.com/egate-bank/egate/authsvc/oidcop"
)

// The provider library serves more than the passport offers and answers
// some malformed requests with a server error. These wrappers put the
// RFCs' answers in front of it; everything they let through is op's.

// discovery advertises exactly what the passport serves: the code flow
// (no implicit, no id_token response types, no jwt-bearer grant, no device
// endpoint), the levels as acr values, the iss authorization response
// parameter (RFC 9207) and back-channel logout.
func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	ctx := op.ContextWithIssuer(r.Context(), s.cfg.Issuer)
	d := op.CreateDiscoveryConfig(ctx, s.provider, s.storage)
	d.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	d.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
	d.DeviceAuthorizationEndpoint, d.CheckSessionIframe = "", ""
	// No client authenticates with a signed JWT.
	d.TokenEndpointAuthSigningAlgValuesSupported = nil
	d.IntrospectionEndpointAuthSigningAlgValuesSupported = nil
	d.RevocationEndpointAuthSigningAlgValuesSupported = nil
	d.RequestObjectSigningAlgValuesSupported = nil
	d.ACRValuesSupported = nil
	for l := 1; l <= oidcop.MaxLevel; l++ {
		d.ACRValuesSupported = append(d.ACRValuesSupported, oidcop.ACR(l))
	}
	d.BackChannelLogoutSupported, d.BackChannelLogoutSessionSupported = true, false
	b, err := json.Marshal(d)
	if err != nil {
		apierr.WriteCode(w, r, apierr.Internal, "discovery could not be made")
		return
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	m["authorization_response_iss_parameter_supported"] = true
	m["response_modes_supported"] = []string{"query", "fragment"}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(m)
}

// noEndpoint answers an endpoint the library has and the passport does not
// offer (device authorization).
func noEndpoint(w http.ResponseWriter, r *http.Request) {
	apierr.WriteCode(w, r, apierr.NotFound, "the passport does not offer this endpoint")
}

// clientAssertion reports whether the form authenticates the client with a
// signed JWT (RFC 7523 §2.2), which the passport does not support.
func clientAssertion(f map[string][]string) bool {
	_, a := f["client_assertion"]
	_, t := f["client_assertion_type"]
	return a || t
}

// oauthForm guards introspection and revocation: a body that is not a
// form is invalid_request, a client_assertion invalid_client, both 4xx
// with the RFC's JSON and no-store; the rest goes to op.
func (s *Server) oauthForm(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			tokenError(w, http.StatusBadRequest, "invalid_request", "the request is not a well-formed form")
			return
		}
		if clientAssertion(r.PostForm) {
			tokenError(w, http.StatusUnauthorized, "invalid_client", "client assertions are not supported: authenticate with client_secret_basic or client_secret_post")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// userinfo answers a missing, revoked, expired or forged access token with
// 401 and WWW-Authenticate (RFC 6750 §3), which op does not set.
func (s *Server) userinfo(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		w.Header().Set("Cache-Control", "no-store")
		if rec.status == http.StatusUnauthorized || rec.status == http.StatusForbidden {
			w.Header().Set("Content-Type", "application/json")
			if !hasBearer(r) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="passport"`)
				w.WriteHeader(http.StatusUnauthorized)
				json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request", "error_description": "send the access token as Authorization: Bearer"})
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="passport", error="invalid_token", error_description="the access token is expired, revoked or not the passport's"`)
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_token", "error_description": "the access token is expired, revoked or not the passport's"})
			return
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		w.WriteHeader(rec.status)
		w.Write(rec.body.Bytes())
	})
}

func hasBearer(r *http.Request) bool {
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return true
	}
	return r.FormValue("access_token") != ""
}

// recorder keeps a small response to rewrite it.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}
